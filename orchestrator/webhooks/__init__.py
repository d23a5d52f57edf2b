"""Inbound webhooks: one module per source (verify the signature on the raw bytes,
parse into a `ParsedEvent`, classify triggers), and the registry that names them."""
