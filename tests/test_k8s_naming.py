"""Names of managed objects: valid DNS-1123 labels within their length limits, stable,
and distinct for distinct teams — also when ids differ only in case or punctuation, or
share a long prefix."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.k8s.naming import (
    CRONJOB_NAME_MAX,
    dedicated_agent_service,
    dedicated_agent_url,
    dns_name,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
IDS = st.text(alphabet="ABCXYZabcxyz0189._-", min_size=1, max_size=64)


def test_plain_ids_keep_readable_names() -> None:
    assert dedicated_agent_service("acme", "payments") == "agent-acme-payments"
    assert (
        dedicated_agent_url("acme", "payments", "incidentfox")
        == "http://agent-acme-payments.incidentfox.svc.cluster.local:8080"
    )


def test_lossy_mappings_get_a_hash_and_never_collide() -> None:
    names = {dedicated_agent_service("acme", t) for t in ("TeamA", "teama", "team.a", "team_a")}
    assert len(names) == 4
    assert "agent-acme-teama" in names  # the exact one stays readable
    long_a, long_b = "x" * 63 + "a", "x" * 63 + "b"
    a, b = dedicated_agent_service("o", long_a), dedicated_agent_service("o", long_b)
    assert a != b and len(a) <= 63 and len(b) <= 63


@given(org=IDS, team=IDS)
def test_every_name_is_a_valid_label_within_limits(org: str, team: str) -> None:
    name = dedicated_agent_service(org, team)
    assert DNS_LABEL.match(name) and len(name) <= 63
    assert name == dedicated_agent_service(org, team)
    cron = dns_name("pipeline-ingestion", org, team, max_length=CRONJOB_NAME_MAX)
    assert DNS_LABEL.match(cron) and len(cron) <= CRONJOB_NAME_MAX


@given(a=st.tuples(IDS, IDS), b=st.tuples(IDS, IDS))
def test_distinct_teams_get_distinct_names(a: tuple[str, str], b: tuple[str, str]) -> None:
    if a != b:
        assert dedicated_agent_service(*a) != dedicated_agent_service(*b)
