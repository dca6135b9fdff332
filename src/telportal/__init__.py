"""Telportal: an open-source, distributed, multi-tenant contact-center platform."""

from pathlib import Path

from telportal.compiled import choose

__version__ = "0.1.0"

# Before any protocol module is imported: compiled, or interpreted when no build is
# here, it is asked for, or a source changed since the build (compiled.py).
CORE: str = choose(Path(__file__).parent)
