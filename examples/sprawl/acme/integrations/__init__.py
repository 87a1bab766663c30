"""acme.integrations."""
