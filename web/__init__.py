"""HTTP adapter: the Falcon app, its middleware, resources and gunicorn wiring."""
