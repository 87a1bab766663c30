"""perflayer.cache."""
