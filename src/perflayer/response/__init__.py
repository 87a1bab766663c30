"""perflayer.response."""
