"""Command-line adapter: the `orchestrator` console script."""
