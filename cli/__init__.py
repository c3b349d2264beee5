"""log-group-governor's command line (``log-group-governor ...`` or ``python -m cli ...``)."""

#: The release; pyproject.toml reads it from here (one place).
__version__ = "0.9.0"
