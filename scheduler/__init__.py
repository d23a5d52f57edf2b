"""Timer adapter: the APScheduler process that runs the scheduler's periodic work."""
