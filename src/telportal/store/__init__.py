"""Persistence: SQLAlchemy models, the database seam, the unit of work, migrations."""
