"""acme.analytics."""
