"""acme.context."""
