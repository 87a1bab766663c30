"""acme: an assistant platform (sample codebase for perflayer analyze)."""

__version__ = "3.2.0"
