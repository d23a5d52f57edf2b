"""Falcon resources: each a thin class whose responders parse, call the domain, answer."""
