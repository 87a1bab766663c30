"""acme.mcp."""
