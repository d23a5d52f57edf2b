"""The orchestrator's domain: settings, database, peers, auth, audit and the dev stack.

Nothing in this package imports the adapters (`web`, `workers`, `scheduler`, `cli`);
they import it.
"""
