"""The local stack of `orchestrator dev` and the tests: embedded PostgreSQL and Redis,
and stand-ins of the peer services that speak PEERS.md over real HTTP."""
