"""Queue adapter: the Dramatiq broker, its middleware, and the actors."""
