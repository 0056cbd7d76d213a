"""The version of jqc (one place; the package metadata and `jqc --version` read it)."""

__version__ = "0.1.0"
