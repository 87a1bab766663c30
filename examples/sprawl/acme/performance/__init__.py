"""acme.performance."""
