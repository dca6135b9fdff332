"""Telportal: an open-source, distributed, multi-tenant contact-center platform."""

__version__ = "0.1.0"
