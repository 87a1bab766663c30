"""perflayer.analyze."""
