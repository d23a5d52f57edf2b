"""One HTTP client per peer service (PEERS.md), each raising `TransientError` or
`PermanentError` so that callers decide about retries in one way."""
