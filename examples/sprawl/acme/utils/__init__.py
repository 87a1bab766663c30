"""acme.utils."""
