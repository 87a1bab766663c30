"""acme.core."""
