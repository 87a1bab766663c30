"""perflayer.monitor."""
