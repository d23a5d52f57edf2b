"""The orchestrator's own Dramatiq middleware, one concern per module."""
