"""clinie: clinicians' notes to structured, queryable FHIR."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clinie")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
