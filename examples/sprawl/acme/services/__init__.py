"""acme.services."""
