"""acme.personas."""
