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


# -- labels (SPEC §8, §10) --------------------------------------------------------------

MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY = "incidentfox-orchestrator"
ORG_KEY = "incidentfox.io/org-id"
TEAM_KEY = "incidentfox.io/team-node-id"
SCHEDULE_TYPE_KEY = "incidentfox.io/schedule-type"
LABEL_VALUE_MAX = 63

# The selector of everything the orchestrator owns; objects without it are never touched.
MANAGED_SELECTOR = f"{MANAGED_BY_KEY}={MANAGED_BY}"

_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_LABEL_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(value: str) -> str:
    """`value` as a valid label value; when it is not one already (too long, or starting
    or ending with `.`, `_`, `-`), a shortened form with a stable hash of the original.
    The full value always travels in an annotation of the same key."""
    if len(value) <= LABEL_VALUE_MAX and _LABEL_VALUE.match(value):
        return value
    suffix = _digest("label", value)
    head = _LABEL_INVALID.sub("-", value)[: LABEL_VALUE_MAX - len(suffix) - 1]
    head = head.strip("-_.")
    return f"{head}-{suffix}" if head else suffix


def team_labels(org_id: str, team_node_id: str) -> dict[str, str]:
    return {
        MANAGED_BY_KEY: MANAGED_BY,
        ORG_KEY: label_value(org_id),
        TEAM_KEY: label_value(team_node_id),
    }


def team_annotations(org_id: str, team_node_id: str) -> dict[str, str]:
    """The exact ids, which labels may only carry shortened."""
    return {ORG_KEY: org_id, TEAM_KEY: team_node_id}


def team_selector(org_id: str, team_node_id: str) -> str:
    """Label selector of one team's managed objects."""
    return ",".join(f"{k}={v}" for k, v in team_labels(org_id, team_node_id).items())


def cronjob_name(org_id: str, team_node_id: str, schedule_type: str) -> str:
    # Schedule types are a closed set (`gap_analysis` → `gap-analysis` cannot collide),
    # so only the ids decide whether the name needs its hash.
    return dns_name(
        "pipeline",
        org_id,
        team_node_id,
        schedule_type.replace("_", "-"),
        max_length=CRONJOB_NAME_MAX,
    )
