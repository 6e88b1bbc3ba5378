"""The ``--workers`` supervisor, its worker processes and ``--reload``."""
