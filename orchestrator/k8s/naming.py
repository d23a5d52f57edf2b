"""Names of managed Kubernetes objects (SPEC §8, §10).

Names are DNS-1123 labels. Whenever turning ids into a name loses information —
lowercasing, replacing characters, truncating — a stable hash of the original ids is
appended, so two teams never share a name (`TeamA` and `teama` included) and the same
team always gets the same one.
"""

from __future__ import annotations

import hashlib
import re

_INVALID = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")

SERVICE_NAME_MAX = 63
CRONJOB_NAME_MAX = 52
AGENT_SERVICE_PORT = 8080


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:10]


def dns_name(prefix: str, *ids: str, max_length: int) -> str:
    """`prefix-id1-id2…` as a DNS-1123 label of at most `max_length` characters."""
    raw = "-".join((prefix, *ids))
    clean = _DASHES.sub("-", _INVALID.sub("-", raw.lower())).strip("-")
    if clean == raw and len(clean) <= max_length:
        return clean
    suffix = _digest(prefix, *ids)
    head = clean[: max_length - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}" if head else suffix


def dedicated_agent_service(org_id: str, team_node_id: str) -> str:
    return dns_name("agent", org_id, team_node_id, max_length=SERVICE_NAME_MAX)


def dedicated_agent_url(org_id: str, team_node_id: str, namespace: str) -> str:
    """The only URL a team's agent runs may go to besides `AGENT_API_URL`."""
    service = dedicated_agent_service(org_id, team_node_id)
    return f"http://{service}.{namespace}.svc.cluster.local:{AGENT_SERVICE_PORT}"
