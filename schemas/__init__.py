"""envreel."""
