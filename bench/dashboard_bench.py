"""The job dashboard at size: how long the overview and every list page take to render
with 100,000 webhook events, 10,000 runs (5,000 provisioning + 5,000 agent runs) and
1,000 dead letters stored. The target is at most 200 ms per page on this machine.

    .venv/bin/python bench/dashboard_bench.py [--requests 30] [--recent-events 5000]

Starts embedded PostgreSQL and Redis (unless `DATABASE_URL` / `REDIS_URL` are set), a
Config Service stand-in in this process (one super-admin and one org-admin token), and
seeds, with set-based SQL and pipelined Redis writes:

- 100,000 webhook events over 30 days, `--recent-events` of them (default 5,000, a busy
  hour) in the last hour — what the overview aggregates — across 6 sources, 50 orgs of
  10 teams and every status (3 % failed, 8 % unroutable without an org, …), each with a
  ~700-byte payload;
- 5,000 provisioning runs (7 steps each) and 5,000 agent runs over 30 days, a few
  hundred in the last day, 10 % failed; 1,500 schedules, 2 % in sync error;
- 1,000 dead letters in Dramatiq's Redis layout (sorted set + payload hash per queue)
  with their failure records (traceback) in Postgres, and an hour of job counts;

then `VACUUM ANALYZE` (what autovacuum does to a table this size) and starts the real
`orchestrator web` (2 gunicorn workers, 8 threads each). It signs in through the login form
like a browser and requests each page `--requests` times, one at a time over one
keep-alive connection, after 6 warm-up requests (templates compile once per gunicorn
worker). Latency is measured at the client from sending the request to reading the
whole body — an upper bound of the server's render time on a quiet loopback. Pages
include filtered lists, a second page (the "older" link), a deep dead-letter page, the
detail pages and the overview of an org admin.

Prints a table and writes it as JSON to `bench/results/dashboard_<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dramatiq
import psycopg
import redis

from bench._stack import (
    HOST,
    RESULTS_DIR,
    Machine,
    dependencies,
    git_revision,
    install_signal_handlers,
    percentile,
    say,
    web,
)
from orchestrator.dashboard import throughput
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.queues import QUEUES, dead_key

TARGET_MS = 200.0
NAMESPACE = "orchestrator"  # the web tier's default ORCHESTRATOR_REDIS_NAMESPACE
EVENTS = 100_000
PROVISIONING_RUNS = 5_000
AGENT_RUNS = 5_000
DEAD_LETTERS = 1_000
SCHEDULES = 1_500
WARMUP = 6

_EVENTS_SQL = """
INSERT INTO orchestrator_webhook_events (id, source, delivery_key, event_type, status,
    status_history, headers, payload, routing_identifiers, org_id, team_node_id,
    matched_by, attempts, last_error, received_at, updated_at)
SELECT gen_random_uuid(),
       (ARRAY['slack','github','pagerduty','incidentio','coralogix','generic'])[1 + i %% 6],
       'bench-' || i, 'bench.event', s.status,
       jsonb_build_array(jsonb_build_object('status', 'received', 'at', t.at),
                         jsonb_build_object('status', s.status, 'at', t.at)),
       '{"content-type": "application/json"}'::jsonb,
       jsonb_build_object('text', repeat('payload ', 80), 'n', i, 'token', '***'),
       jsonb_build_object('service', 'svc-' || (i %% 40)),
       CASE WHEN s.status = 'unroutable' THEN NULL ELSE 'org-' || (i %% 50) END,
       CASE WHEN s.status = 'unroutable' THEN NULL ELSE 'team-' || ((i / 50) %% 10) END,
       CASE WHEN s.status = 'unroutable' THEN NULL ELSE 'service' END,
       1,
       CASE WHEN s.status = 'failed' THEN 'agent_failed: HTTP 500 from agent' END,
       t.at, t.at
FROM generate_series(1, %(n)s) AS i
CROSS JOIN LATERAL (SELECT CASE
        WHEN i %% 100 < 70 THEN 'dispatched' WHEN i %% 100 < 85 THEN 'ignored'
        WHEN i %% 100 < 93 THEN 'unroutable' WHEN i %% 100 < 96 THEN 'failed'
        WHEN i %% 100 < 98 THEN 'throttled' ELSE 'queued' END AS status) s
CROSS JOIN LATERAL (SELECT CASE
        WHEN i <= %(recent)s THEN now() - random() * interval '59 minutes'
        ELSE now() - interval '1 hour' - random() * interval '30 days' END AS at) t
"""

_PROVISIONING_SQL = """
INSERT INTO orchestrator_provisioning_runs (id, kind, org_id, team_node_id, status,
    request, request_hash, steps, error, attempts, created_at, updated_at, started_at,
    finished_at)
SELECT gen_random_uuid(), CASE WHEN i %% 10 = 0 THEN 'deprovision' ELSE 'provision' END,
       'org-' || (i %% 50), 'team-' || ((i / 50) %% 10),
       CASE WHEN i %% 10 = 3 THEN 'failed' WHEN i %% 50 = 7 THEN 'running' ELSE 'succeeded' END,
       jsonb_build_object('routing', jsonb_build_object('slack_channel_ids',
                          jsonb_build_array('C' || i))),
       md5(i::text),
       (SELECT jsonb_agg(jsonb_build_object('name', n, 'status', 'succeeded', 'attempts', 1,
                'started_at', t.at, 'finished_at', t.at + interval '1 second',
                'error', NULL, 'detail', '{}'::jsonb))
          FROM unnest(ARRAY['team_node','routing','team_token','pipeline_schedule',
                            'dedicated_agent','bootstrap','record']) AS n),
       CASE WHEN i %% 10 = 3 THEN 'peer_unavailable' END, 1, t.at, t.at, t.at,
       t.at + interval '7 seconds'
FROM generate_series(1, %(n)s) AS i
CROSS JOIN LATERAL (SELECT CASE WHEN i <= 200 THEN now() - random() * interval '23 hours'
        ELSE now() - interval '1 day' - random() * interval '29 days' END AS at) t
"""

_AGENT_RUNS_SQL = """
INSERT INTO orchestrator_agent_runs (id, org_id, team_node_id, agent_name, trigger_source,
    status, request, result, error, attempts, created_at, updated_at, started_at,
    finished_at)
SELECT gen_random_uuid(), 'org-' || (i %% 50), 'team-' || ((i / 50) %% 10), 'planner',
       (ARRAY['slack','github','pagerduty','incidentio','coralogix','generic','api'])[1 + i %% 7],
       CASE WHEN i %% 10 = 4 THEN 'failed' WHEN i %% 50 = 9 THEN 'running' ELSE 'succeeded' END,
       jsonb_build_object('message', 'investigate', 'timeout', 300, 'max_turns', 50),
       jsonb_build_object('success', true, 'output', repeat('answer ', 40)),
       CASE WHEN i %% 10 = 4 THEN 'agent_error: success=false' END,
       1, t.at, t.at, t.at, t.at + interval '40 seconds'
FROM generate_series(1, %(n)s) AS i
CROSS JOIN LATERAL (SELECT CASE WHEN i <= 300 THEN now() - random() * interval '23 hours'
        ELSE now() - interval '1 day' - random() * interval '29 days' END AS at) t
"""

_SCHEDULES_SQL = """
INSERT INTO orchestrator_pipeline_schedules (id, org_id, team_node_id, schedule_type,
    cron_expression, k8s_cronjob_name, sync_status, sync_error, last_synced_at, created_at,
    updated_at)
SELECT gen_random_uuid(), 'org-' || (i / 30), 'team-' || ((i / 3) %% 10),
       (ARRAY['ingestion','gap_analysis','eval'])[1 + i %% 3], '0 2 * * *',
       'pipeline-' || i, CASE WHEN i %% 50 = 0 THEN 'error' ELSE 'synced' END,
       CASE WHEN i %% 50 = 0 THEN 'k8s_forbidden: cronjobs.batch is forbidden' END,
       now(), now() - i * interval '1 minute', now()
FROM generate_series(0, %(n)s - 1) AS i
"""


def seed(database_url: str, redis_url: str, *, recent_events: int) -> dict[str, Any]:
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        say(f"seeding {EVENTS:,} events ({recent_events:,} in the last hour) ...")
        conn.execute(_EVENTS_SQL, {"n": EVENTS, "recent": recent_events})
        say(f"seeding {PROVISIONING_RUNS:,} provisioning and {AGENT_RUNS:,} agent runs ...")
        conn.execute(_PROVISIONING_SQL, {"n": PROVISIONING_RUNS})
        conn.execute(_AGENT_RUNS_SQL, {"n": AGENT_RUNS})
        conn.execute(
            "UPDATE orchestrator_agent_runs r SET event_id = e.id FROM ("
            " SELECT id, row_number() OVER () AS k FROM orchestrator_webhook_events"
            " WHERE status = 'dispatched' LIMIT 2000) e,"
            " (SELECT id, row_number() OVER () AS k FROM orchestrator_agent_runs LIMIT 2000) a"
            " WHERE r.id = a.id AND a.k = e.k"
        )
        conn.execute(_SCHEDULES_SQL, {"n": SCHEDULES})
        say(f"seeding {DEAD_LETTERS:,} dead letters ...")
        ids = _seed_dead_letters(conn, redis_url)
        say("VACUUM ANALYZE ...")
        for table in (
            "orchestrator_webhook_events",
            "orchestrator_agent_runs",
            "orchestrator_provisioning_runs",
            "orchestrator_pipeline_schedules",
            "orchestrator_job_failures",
        ):
            conn.execute(f"VACUUM ANALYZE {table}")
        sizes = {
            r["relname"]: r["size"]
            for r in conn.cursor(row_factory=psycopg.rows.dict_row)
            .execute(
                "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) AS size"
                " FROM pg_class WHERE relname LIKE 'orchestrator_%' AND relkind = 'r'"
            )
            .fetchall()
        }
    return {"seconds": round(time.perf_counter() - started, 1), "table_sizes": sizes, **ids}


def _seed_dead_letters(conn: psycopg.Connection[Any], redis_url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    now = time.time()
    failures = []
    for i in range(DEAD_LETTERS):
        queue = QUEUES[i % len(QUEUES)]
        redis_id = str(uuid.uuid4())
        message = dramatiq.Message(
            queue_name=queue,
            actor_name=f"bench_actor_{i % 7}",
            args=(f"org-{i % 50}", f"team-{i % 10}"),
            kwargs={"event_id": str(uuid.uuid4()), "token": "secret-token-value"},
            options={"redis_message_id": redis_id, "retries": 5},
        )
        pipe.zadd(dead_key(NAMESPACE, queue), {redis_id: int((now - i * 30) * 1000)})
        pipe.hset(dead_key(NAMESPACE, queue) + ".msgs", redis_id, message.encode())
        failures.append(
            (
                message.message_id,
                message.actor_name,
                queue,
                5,
                "PeerUnavailable: config service answered 503",
                "Traceback (most recent call last):\n"
                + '  File "workers/actors/x.py", line 10, in run\n' * 12
                + "orchestrator.errors.PeerUnavailable: config service answered 503",
            )
        )
    pipe.execute()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO orchestrator_job_failures (message_id, actor, queue, retries, error,"
            " traceback) VALUES (%s, %s, %s, %s, %s, %s)",
            failures,
        )
    minute = int(now) // 60
    counts = {}
    for m in range(60):
        counts[(minute - m, "webhooks", "ok")] = 4000 + (m * 37) % 900
        counts[(minute - m, "agents", "ok")] = 300 + (m * 11) % 50
        counts[(minute - m, "agents", "failed")] = (m * 7) % 13
    throughput.record(client, NAMESPACE, counts)
    client.close()
    return {}


class Browser:
    """One keep-alive connection with the session cookie, like a browser tab."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)
        self.cookie = ""

    def get(self, path: str) -> tuple[int, bytes, http.client.HTTPResponse]:
        self.conn.request("GET", path, headers={"Cookie": self.cookie})
        resp = self.conn.getresponse()
        return resp.status, resp.read(), resp

    def sign_in(self, token: str) -> None:
        _, body, resp = self.get("/dashboard/login")
        nonce = _cookie(resp, "orch_dashboard_login")
        csrf = re.search(rb'name="csrf_token" value="([^"]+)"', body)
        assert csrf, "no CSRF token on the login page"
        form = urlencode({"token": token, "csrf_token": csrf.group(1).decode(), "next": ""})
        self.conn.request(
            "POST",
            "/dashboard/login",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"orch_dashboard_login={nonce}",
            },
        )
        resp = self.conn.getresponse()
        resp.read()
        assert resp.status == 303, f"sign-in failed: {resp.status}"
        self.cookie = f"orch_dashboard={_cookie(resp, 'orch_dashboard')}"

    def time(self, path: str, n: int) -> dict[str, Any]:
        for _ in range(WARMUP):
            status, body, _ = self.get(path)
            assert status == 200, f"{path}: {status} {body[:300]!r}"
        samples = []
        size = 0
        for _ in range(n):
            started = time.perf_counter()
            status, body, _ = self.get(path)
            samples.append(time.perf_counter() - started)
            assert status == 200, f"{path}: {status}"
            size = len(body)
        samples.sort()
        p50, p95 = percentile(samples, 50), percentile(samples, 95)
        return {
            "path": path,
            "p50_ms": p50,
            "p95_ms": p95,
            "max_ms": round(samples[-1] * 1000, 3),
            "bytes": size,
            "within_target": p95 is not None and p95 <= TARGET_MS,
        }


def _cookie(resp: http.client.HTTPResponse, name: str) -> str:
    for header in resp.headers.get_all("Set-Cookie") or []:
        if header.startswith(name + "="):
            return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie set")


def _older_link(body: bytes) -> str:
    found = re.search(rb'rel="next" href="([^"]+)"', body)
    assert found, "no next-page link"
    return found.group(1).decode().replace("&amp;", "&")


def pages(browser: Browser, database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        run_id = conn.execute(
            "SELECT id FROM orchestrator_provisioning_runs ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
        event_id = conn.execute(
            "SELECT event_id FROM orchestrator_agent_runs WHERE event_id IS NOT NULL LIMIT 1"
        ).fetchone()
        agent_run_id = conn.execute(
            "SELECT id FROM orchestrator_agent_runs ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    assert run_id and event_id and agent_run_id
    listed = [
        "/dashboard",
        "/dashboard/api/overview",
        "/dashboard/dead",
        "/dashboard/dead?cursor=900",
        "/dashboard/events",
        "/dashboard/events?status=failed",
        "/dashboard/events?source=github&status=failed",
        "/dashboard/events?org_id=org-7&team_node_id=team-3",
        "/dashboard/agent-runs",
        "/dashboard/agent-runs?status=failed",
        "/dashboard/runs",
        "/dashboard/runs?status=failed",
        "/dashboard/schedules",
        "/dashboard/schedules?sync_status=error",
        "/dashboard/teams/org-7/team-3",
        f"/dashboard/runs/{run_id[0]}",
        f"/dashboard/agent-runs/{agent_run_id[0]}",
        f"/dashboard/events/{event_id[0]}",
    ]
    for first in ("/dashboard/events", "/dashboard/agent-runs", "/dashboard/runs"):
        _, body, _ = browser.get(first)
        listed.append(_older_link(body))
    return listed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--recent-events", type=int, default=5_000)
    args = parser.parse_args()
    install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="orch-dashboard-bench-"))
    config = ConfigServiceStandIn().start()
    super_admin = config.add_super_admin()
    org_admin = config.add_org_admin("org-7")
    results: list[dict[str, Any]] = []
    try:
        with dependencies(workdir, config_service=False) as deps:
            seeded = seed(
                deps.env["DATABASE_URL"], deps.env["REDIS_URL"], recent_events=args.recent_events
            )
            say(f"seeded in {seeded['seconds']} s: {seeded['table_sizes']}")
            with web(deps, workdir, 2, 8, extra_env={"CONFIG_SERVICE_URL": config.url}) as tier:
                browser = Browser(tier.port)
                browser.sign_in(super_admin)
                for path in pages(browser, deps.env["DATABASE_URL"]):
                    results.append({"viewer": "super-admin", **browser.time(path, args.requests)})
                    _print(results[-1])
                org = Browser(tier.port)
                org.sign_in(org_admin)
                for path in ("/dashboard", "/dashboard/events", "/dashboard/agent-runs"):
                    results.append({"viewer": "org-admin", **org.time(path, args.requests)})
                    _print(results[-1])
    finally:
        config.stop()
    worst = max(r["p95_ms"] for r in results)
    say(f"worst p95 {worst:.1f} ms (target {TARGET_MS:.0f} ms)")
    summary = {
        "machine": Machine.detect().__dict__,
        "revision": git_revision(),
        "seeded": seeded,
        "requests_per_page": args.requests,
        "target_ms": TARGET_MS,
        "results": results,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"dashboard_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2, default=str))
    say(f"wrote {out}")
    return 0 if all(r["within_target"] for r in results) else 1


def _print(r: dict[str, Any]) -> None:
    mark = "ok " if r["within_target"] else "SLOW"
    print(
        f"{mark} {r['viewer']:<11} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms"
        f"  max {r['max_ms']:7.1f} ms  {r['bytes']:>7,} B  {r['path']}",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
