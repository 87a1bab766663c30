"""perflayer.integrations."""
