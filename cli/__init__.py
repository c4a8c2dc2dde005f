"""The click command groups behind the ``eventkit`` console script (installed as ``eventkit.cli``)."""
