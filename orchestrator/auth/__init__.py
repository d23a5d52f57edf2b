"""Admin and internal authentication (SPEC §4.3, §4.4)."""
