"""The scheduler's relay of runs (SPEC §7): provisioning runs and admin agent runs left
`queued` longer than the relay age are enqueued again — once per period, not once per
tick — while an agent run that belongs to a webhook event is left to its event's relay,
and a refused enqueue leaves the rows due for the next tick."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from orchestrator.events.relay import relay_runs


def provisioning_run(db: Any, *, age_seconds: int, status: str = "queued") -> str:
    run_id = uuid.uuid4()
    db.execute(
        "INSERT INTO orchestrator_provisioning_runs (id, org_id, team_node_id, status,"
        " updated_at) VALUES (%s, 'acme', %s, %s, now() - make_interval(secs => %s))",
        (run_id, f"team-{run_id.hex[:6]}", status, age_seconds),
    )
    return str(run_id)


def agent_run(db: Any, *, age_seconds: int, with_event: bool = False) -> str:
    run_id = uuid.uuid4()
    event_id = None
    if with_event:
        event_id = uuid.uuid4()
        db.execute(
            "INSERT INTO orchestrator_webhook_events (id, source, delivery_key, status)"
            " VALUES (%s, 'generic', %s, 'queued')",
            (event_id, str(event_id)),
        )
    db.execute(
        "INSERT INTO orchestrator_agent_runs (id, org_id, team_node_id, agent_name,"
        " trigger_source, event_id, status, updated_at) VALUES (%s, 'acme', 't', 'a',"
        " 'api', %s, 'queued', now() - make_interval(secs => %s))",
        (run_id, event_id, age_seconds),
    )
    return str(run_id)


def test_stuck_runs_are_relayed_once_per_period(db: Any) -> None:
    stuck_provisioning = provisioning_run(db, age_seconds=300)
    provisioning_run(db, age_seconds=5)  # recent: its message may still be on its way
    provisioning_run(db, age_seconds=300, status="running")  # redelivery's business
    stuck_agent = agent_run(db, age_seconds=300)
    agent_run(db, age_seconds=300, with_event=True)  # relayed through its event
    sent: dict[str, list[str]] = {"provisioning": [], "agent": []}

    with db.transaction():
        counts = relay_runs(
            db,
            provisioning=sent["provisioning"].append,
            agent=sent["agent"].append,
            older_than_seconds=60,
        )
    assert sent == {"provisioning": [stuck_provisioning], "agent": [stuck_agent]}
    assert counts == {"provisioning_runs_relayed": 1, "agent_runs_relayed": 1}

    with db.transaction():
        again = relay_runs(
            db, provisioning=sent["provisioning"].append, agent=sent["agent"].append,
            older_than_seconds=60,
        )  # fmt: skip
    assert again == {"provisioning_runs_relayed": 0, "agent_runs_relayed": 0}


def test_a_refused_enqueue_keeps_the_run_due(db: Any) -> None:
    stuck = provisioning_run(db, age_seconds=300)

    def redis_down(_run_id: str) -> None:
        raise ConnectionError("redis down")

    with pytest.raises(ConnectionError), db.transaction():
        relay_runs(db, provisioning=redis_down, agent=lambda _i: None, older_than_seconds=60)
    sent: list[str] = []
    with db.transaction():
        relay_runs(db, provisioning=sent.append, agent=lambda _i: None, older_than_seconds=60)
    assert sent == [stuck]
