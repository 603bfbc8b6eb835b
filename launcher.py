"""Placeholder replaced by the launcher work."""
