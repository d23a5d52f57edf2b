"""The real processes: gunicorn with two workers (metrics summed across them, route
templates as labels), the Dramatiq worker process (metrics port, heartbeat, SIGTERM),
the scheduler process (advisory lock, metrics, SIGTERM) and `orchestrator dev` (ready
within 20 s, stops everything it started)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import redis

from orchestrator.dead_letters import queue_depths
from orchestrator.exclusive import run_exclusively
from tests.conftest import (
    ORCHESTRATOR_BIN,
    free_port,
    metric_total,
    port_is_open,
    process_env,
    start_web,
    stop,
    wait_http,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def gunicorn(base_env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    port = free_port()
    metrics_dir = Path(tempfile.mkdtemp(prefix="orch-web-metrics-"))
    env = {**base_env, "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    proc, url = start_web(env, workers=2, threads=4, stderr=subprocess.PIPE)
    yield url, metrics_dir
    assert stop(proc) == 0
    assert not port_is_open(port)


def test_gunicorn_metrics_sum_across_workers_with_route_templates(
    gunicorn: tuple[str, Path],
    admin_token: str,
) -> None:
    url, metrics_dir = gunicorn
    # New connections each time so both workers take requests.
    for _ in range(120):
        assert httpx.get(url + "/health", headers={"Connection": "close"}).status_code == 200
    for i in range(7):
        r = httpx.delete(
            f"{url}/api/v1/admin/jobs/dead/msg-{i}",
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert r.status_code == 404
    pids = {
        int(m.group(1))
        for f in metrics_dir.iterdir()
        if (m := re.match(r"counter_(\d+)\.db", f.name))
    }
    assert len(pids) >= 2, "both gunicorn workers should have served requests"
    text = httpx.get(url + "/metrics").text
    assert (
        metric_total(text, "orchestrator_http_requests_total", route="/health", status="200") == 120
    )
    assert (
        metric_total(
            text,
            "orchestrator_http_requests_total",
            route="/api/v1/admin/jobs/dead/{message_id}",
            status="404",
        )
        == 7
    )
    assert "msg-3" not in text
    assert (
        metric_total(text, "orchestrator_http_request_duration_seconds_count", route="/health")
        == 120
    )
    assert admin_token not in text


def test_gunicorn_rejects_bad_framing_with_4xx(gunicorn: tuple[str, Path]) -> None:
    url, _ = gunicorn
    host, port = url.removeprefix("http://").split(":")
    raw_requests = [
        b"POST /api/v1/admin/jobs/dead/requeue HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"POST /api/v1/admin/jobs/dead/requeue HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ]
    for raw in raw_requests:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(raw)
            status_line = s.recv(4096).split(b"\r\n", 1)[0]
        code = int(status_line.split()[1])
        assert 400 <= code < 500, (raw[:60], status_line)


def raw_answer(url: str, raw: bytes) -> httpx.Response:
    """Send bytes no HTTP client would, and parse what comes back."""
    host, port = url.removeprefix("http://").split(":")
    data = b""
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(raw)
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


REFUSED_BY_GUNICORN = [
    # (raw request, status, words the description must hold)
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "8190 bytes"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "8190 bytes"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, "header name"),
    (b"\x16\x03\x01 not http at all\r\n\r\n", 400, "Invalid"),
]


def test_what_gunicorn_refuses_itself_is_a_json_error_with_a_request_id(
    gunicorn: tuple[str, Path],
) -> None:
    """SPEC §4: every answer carries X-Request-ID, every error is JSON — including the
    ones gunicorn gives before the app sees the request."""
    url, _ = gunicorn
    for raw, status, words in REFUSED_BY_GUNICORN:
        answer = raw_answer(url, raw)
        assert answer.status_code == status, (raw[:40], answer.text)
        assert answer.headers["Content-Type"] == "application/json"
        body = answer.json()
        assert set(body) == {"title", "description", "request_id"}
        assert body["request_id"] == answer.headers["X-Request-ID"]
        assert words.lower() in body["description"].lower(), body
    # Once gunicorn has read the headers, the client's request id is echoed.
    answer = raw_answer(
        url,
        b"POST /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: trace-42\r\n"
        b"Content-Length: ten\r\n\r\n",
    )
    assert answer.status_code == 400
    assert answer.headers["X-Request-ID"] == answer.json()["request_id"] == "trace-42"
    assert "CONTENT-LENGTH" in answer.json()["description"]


def keepalive_request(sock: socket.socket) -> bytes:
    """One GET /health on an open connection, the whole answer (head and body); b""
    when the server had closed it."""
    data = b""
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1]) if head else 0
        while len(body) < length and (chunk := sock.recv(65536)):
            body += chunk
        return head + b"\r\n\r\n" + body if head else b""
    except (BrokenPipeError, ConnectionResetError):
        return b""


def test_gunicorn_keeps_idle_connections_for_the_configured_keepalive(
    base_env: dict[str, str],
) -> None:
    """An ingress reuses idle upstream connections for up to its own idle timeout
    (60 s for ingress-nginx and ALB); gunicorn must keep them at least that long, or
    a request sent on a connection it has just closed fails (a 502 at the ingress).
    The soak saw exactly that as ReadError/RemoteProtocolError with both sides at 5 s."""
    from web import gunicorn_conf

    assert gunicorn_conf.keepalive == 75 > 60
    port = free_port()
    env = {**base_env, "PORT": str(port), "ORCHESTRATOR_WEB_KEEPALIVE_SECONDS": "3"}
    proc, _ = start_web(env, workers=1, threads=2)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert keepalive_request(sock).startswith(b"HTTP/1.1 200")
            time.sleep(1.5)  # idle for half the keepalive: still open
            assert keepalive_request(sock).startswith(b"HTTP/1.1 200")
            time.sleep(6)  # idle past it: gunicorn closed it (its sweep runs each second)
            assert keepalive_request(sock) == b""
    finally:
        assert stop(proc) == 0


def test_worker_process_serves_metrics_heartbeats_and_stops_on_sigterm(
    base_env: dict[str, str],
    redis_url: str,
    namespace: str,
) -> None:
    port = free_port()
    env = {**base_env, "ORCHESTRATOR_WORKER_METRICS_PORT": str(port)}
    proc = subprocess.Popen(
        [
            ORCHESTRATOR_BIN,
            "worker",
            "--processes",
            "1",
            "--threads",
            "2",
            "--queues",
            "default,webhooks",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", proc=proc, timeout=30)
        client = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and queue_depths(client, namespace)[1] < 1:
            time.sleep(0.2)
        assert queue_depths(client, namespace)[1] == 1
    finally:
        code = stop(proc)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0, stderr[-3000:]
    assert not port_is_open(port)


def test_only_one_replica_runs_a_tick(services: Any) -> None:
    entered = threading.Event()
    release = threading.Event()
    results: list[tuple[bool, Any]] = []

    def slow(conn: Any) -> str:
        entered.set()
        release.wait(5)
        return "done"

    first = threading.Thread(
        target=lambda: results.append(run_exclusively(services.pool, "test:lock", slow))
    )
    first.start()
    assert entered.wait(5)
    second = run_exclusively(services.pool, "test:lock", lambda conn: "should not run")
    release.set()
    first.join()
    assert second == (False, None)
    assert results == [(True, "done")]
    # Released at commit: the next caller gets it.
    assert run_exclusively(services.pool, "test:lock", lambda conn: 1) == (True, 1)


def test_scheduler_process_ticks_under_the_lock_and_stops_on_sigterm(
    base_env: dict[str, str],
) -> None:
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [ORCHESTRATOR_BIN, "scheduler"],
            env={**base_env, "ORCHESTRATOR_SCHEDULER_METRICS_PORT": str(p)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for p in ports
    ]
    try:
        for p, proc in zip(ports, procs, strict=True):
            wait_http(f"http://127.0.0.1:{p}/metrics", proc=proc)
        time.sleep(3.5)  # a few 1-second ticks
        texts = [httpx.get(f"http://127.0.0.1:{p}/metrics").text for p in ports]
        ran = [metric_total(t, "orchestrator_scheduler_ticks_total", outcome="ran") for t in texts]
        assert sum(ran) >= 3
        assert all("orchestrator_scheduler_last_success_timestamp_seconds" in t for t in texts)
    finally:
        started = time.monotonic()
        codes = [stop(p) for p in procs]
    assert codes == [0, 0]
    assert time.monotonic() - started < 15
    logs = procs[0].stderr.read().decode() if procs[0].stderr else ""
    assert '"msg": "scheduler stopped"' in logs


def test_dev_is_ready_within_20s_and_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    dev_dir = Path(tempfile.mkdtemp(prefix="orch-dev-"))
    env = process_env()
    for name in ("CONFIG_SERVICE_URL", "AGENT_API_URL", "AI_PIPELINE_API_URL", "KUBECONFIG"):
        env.pop(name, None)
    started = time.monotonic()
    proc = subprocess.Popen(
        [ORCHESTRATOR_BIN, "dev", "--dir", str(dev_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", proc=proc, timeout=20)
        assert time.monotonic() - started < 20
        banner = []
        assert proc.stdout is not None
        while not banner or "Ctrl-C stops everything" not in banner[-1]:
            banner.append(proc.stdout.readline())
        deadline = time.monotonic() + 10
        while not (dev_dir / "state.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        state = json.loads((dev_dir / "state.json").read_text())
        token = json.loads((dev_dir / "secrets.json").read_text())["admin_token"]
        queues = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/admin/jobs/queues",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert queues.status_code == 200
        # The banner's sample command goes all the way to the agent stand-in (demo team).
        [command] = [line.strip() for line in banner if "webhook send slack" in line]
        sent = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=60, env=env
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        event_id = sent.stdout.split("event ", 1)[1].split()[0]
        auth = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and status != "dispatched":
            status = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/admin/webhooks/events/{event_id}", headers=auth
            ).json()["status"]
            time.sleep(0.2)
        assert status == "dispatched"
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        ports = [
            port,
            state["ports"]["worker_metrics"],
            state["ports"]["scheduler_metrics"],
            state["ports"]["redis"],
            *state["ports"]["standins"].values(),
        ]
        wait_http(f"http://127.0.0.1:{state['ports']['worker_metrics']}/metrics", timeout=20)
        wait_http(f"http://127.0.0.1:{state['ports']['scheduler_metrics']}/metrics", timeout=20)
        assert all(port_is_open(p) for p in ports)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=40)
        output = "".join(banner) + rest
    finally:
        if proc.poll() is None:  # the test failed: leave nothing behind all the same
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output
    assert "admin token:" in output and token in output and "curl" in output
    time.sleep(0.5)
    alive = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [p.cmdline() for p in alive]
    assert [p for p in ports if port_is_open(p)] == []
    postgres = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(dev_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert postgres == []


def test_scheduler_relays_events_left_received(
    base_env: dict[str, str], db: Any, redis_url: str, namespace: str
) -> None:
    db.execute(
        "INSERT INTO orchestrator_webhook_events (id, source, delivery_key, status, updated_at)"
        " VALUES (gen_random_uuid(), 'generic', 'stuck-1', 'received', now() - interval '5 min')"
    )
    port = free_port()
    env = {**base_env, "ORCHESTRATOR_SCHEDULER_METRICS_PORT": str(port)}
    proc = subprocess.Popen(
        [ORCHESTRATOR_BIN, "scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline:
            status = db.execute(
                "SELECT status FROM orchestrator_webhook_events WHERE delivery_key = 'stuck-1'"
            ).fetchone()["status"]
            if status == "queued":
                break
            time.sleep(0.2)
        assert status == "queued"
        assert redis.Redis.from_url(redis_url).llen(f"{namespace}:webhooks") == 1
    finally:
        assert stop(proc) == 0
