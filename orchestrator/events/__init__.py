"""The durable webhook event log and the pipeline that routes and dispatches events."""
