"""perflayer.memory."""
