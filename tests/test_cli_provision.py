"""`orchestrator provision` / `orchestrator deprovision`, run as the real command against
the app served over real HTTP with a real in-process worker and the peer stand-ins:
success prints the issued team token exactly once, a failed run names the failed step
and the reason, API refusals and usage errors are one line with exit 2, an unreachable
instance exit 3, and the admin token is never printed. On a terminal the steps are
redrawn in place. Plus the pure formatting functions."""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from cli.provision import (
    ROUTING_FLAGS,
    SYMBOLS,
    api_error_line,
    format_duration,
    provision_body,
    render_step,
    step_symbol,
    summary,
)
from cli.webhook_send import UsageError
from orchestrator.devstack.embedded import free_port
from orchestrator.provisioning.request import ROUTING_KEYS
from orchestrator.provisioning.runs import PROVISION_STEPS
from tests.conftest import ORCHESTRATOR_BIN, process_env
from tests.provisioning_support import Prov
from tests.provisioning_support import prov as prov

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(prov: Prov) -> Iterator[str]:
    """The app of the `prov` fixture on a real port."""
    server = make_server(
        "127.0.0.1", 0, prov.client.app, _ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _env(url: str | None, token: str | None) -> dict[str, str]:
    extra = {"PYTHONUTF8": "1", "COLUMNS": "120"}
    if url is not None:
        extra["ORCHESTRATOR_URL"] = url
    if token is not None:
        extra["ORCHESTRATOR_ADMIN_TOKEN"] = token
    return process_env(**extra)


def cli(*args: str, url: str | None, token: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORCHESTRATOR_BIN, *args],
        env=_env(url, token),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_id_of(output: str) -> str:
    found = re.search(r"run ([0-9a-f-]{36})", output)
    assert found, output
    return found.group(1)


# -- against the served app ----------------------------------------------------------------


def test_provision_prints_the_issued_token_once_then_reports_an_active_one(
    prov: Prov,
    served: str,
) -> None:
    done = cli(
        "provision", "--org", "acme", "--team", "payments", "--name", "Payments",
        "--slack-channel", "C0PAY", "--github-repo", "acme/payments", "--service", "checkout",
        "--default-schedule",
        url=served, token=prov.token,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    tokens = prov.team_tokens("acme", "payments")
    assert len(tokens) == 1
    assert out.count(tokens[0]["token"]) == 1
    assert "shown only this once" in done.stdout
    assert prov.token not in out
    # A progress display, not a dump: each step's final state is printed once.
    for name in PROVISION_STEPS:
        finished = [
            line
            for line in done.stdout.splitlines()
            if re.match(rf"  \S {name} +(succ|skip)", line)
        ]
        assert len(finished) == 1, (name, done.stdout)
    assert "✓ provisioned acme/payments" in done.stdout
    routing = (prov.config.config_of("acme", "payments") or {})["routing"]
    assert routing["slack_channel_ids"] == ["C0PAY"] and routing["services"] == ["checkout"]

    # The same command again: a fresh idempotency key, a new run, the token kept.
    again = cli(
        "provision", "--org", "acme", "--team", "payments", url=served, token=prov.token
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert run_id_of(again.stdout) != run_id_of(done.stdout)
    assert "an active one exists" in again.stdout
    assert tokens[0]["token"] not in again.stdout + again.stderr
    assert len(prov.team_tokens("acme", "payments")) == 1


def test_json_output_carries_the_token_and_deprovision_revokes_it(
    prov: Prov,
    served: str,
) -> None:
    done = cli(
        "provision", "--org", "acme", "--team", "search", "--json", url=served, token=prov.token
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "succeeded" and run["kind"] == "provision"
    [token] = prov.team_tokens("acme", "search")
    assert run["team_token"] == token["token"]
    assert [s["name"] for s in run["steps"]] == list(PROVISION_STEPS)

    gone = cli("deprovision", "--org", "acme", "--team", "search", url=served, token=prov.token)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "✓ deprovisioned acme/search" in gone.stdout
    assert "team_tokens" in gone.stdout
    assert all(t["revoked_at"] is not None for t in prov.team_tokens("acme", "search"))


def test_a_failed_run_names_the_step_and_the_reason(prov: Prov, served: str) -> None:
    prov.config.seed_team("acme", "owner", routing={"slack_channel_ids": ["C1"]})
    conflict = cli(
        "provision", "--org", "acme", "--team", "newcomer", "--slack-channel", "C1",
        url=served, token=prov.token,
    )  # fmt: skip
    assert conflict.returncode == 1, conflict.stdout + conflict.stderr
    assert "  failed step: routing\n" in conflict.stderr
    assert "reason: routing_conflict" in conflict.stderr
    assert re.search(r"  ✗ routing +failed", conflict.stdout), conflict.stdout

    prov.pipeline.set_faults(status=503)  # bootstrap: retries exhausted, then undone
    exhausted = cli(
        "provision", "--org", "acme", "--team", "flaky", "--default-schedule",
        url=served, token=prov.token,
    )  # fmt: skip
    assert exhausted.returncode == 1, exhausted.stdout + exhausted.stderr
    assert "  failed step: bootstrap after 3 attempts\n" in exhausted.stderr
    assert "reason: peer_unavailable" in exhausted.stderr
    assert "undone: " in exhausted.stderr and "pipeline_schedule" in exhausted.stderr
    assert re.search(r"  ↺ pipeline_schedule +compensated", exhausted.stdout), exhausted.stdout
    assert re.search(r"  ✗ bootstrap +failed .* 3 attempts  error: ", exhausted.stdout)
    token = prov.team_tokens("acme", "flaky")[0]["token"]  # issued, then revoked
    assert token not in exhausted.stdout + exhausted.stderr


def test_api_refusals_are_one_line_with_exit_2(prov: Prov, served: str) -> None:
    secret = "not-a-valid-admin-token-7Q2"
    bad = cli("provision", "--org", "acme", "--team", "t1", url=served, token=secret)
    assert bad.returncode == 2
    assert bad.stdout == "" and len(bad.stderr.splitlines()) == 1, bad.stderr
    assert "401" in bad.stderr and "ORCHESTRATOR_ADMIN_TOKEN" in bad.stderr
    assert secret not in bad.stderr
    flag = cli(
        "provision", "--org", "acme", "--team", "t1", "--token", secret, url=served, token=None
    )
    assert flag.returncode == 2 and secret not in flag.stderr + flag.stdout

    invalid = cli(
        "provision", "--org", "acme", "--team", "bad team!", "--schedule", "not a cron",
        url=served, token=prov.token,
    )  # fmt: skip
    assert invalid.returncode == 2 and len(invalid.stderr.splitlines()) == 1, invalid.stderr
    assert "422" in invalid.stderr and "team_node_id" in invalid.stderr
    assert "pipeline_schedule" in invalid.stderr

    key = ["--idempotency-key", "k-reused"]
    first = cli(
        "provision",
        "--org",
        "acme",
        "--team",
        "t2",
        *key,
        "--no-wait",
        url=served,
        token=prov.token,
    )
    assert first.returncode == 0, first.stderr
    run_id = run_id_of(first.stdout)
    assert f"/api/v1/admin/provision/runs/{run_id}" in first.stdout
    assert prov.wait(run_id)["status"] == "succeeded"
    other = cli(
        "provision",
        "--org",
        "acme",
        "--team",
        "t2",
        "--rotate-token",
        *key,
        url=served,
        token=prov.token,
    )
    assert other.returncode == 2 and "409" in other.stderr and "different request" in other.stderr
    assert prov.token not in first.stdout + other.stderr  # fmt: skip


def test_waiting_past_the_timeout_or_interrupted_says_the_run_continues(
    prov: Prov,
    served: str,
) -> None:
    prov.pipeline.set_faults(latency=1.5)  # the bootstrap step takes a while
    late = cli(
        "provision", "--org", "acme", "--team", "slow", "--timeout", "0.5",
        url=served, token=prov.token,
    )  # fmt: skip
    assert late.returncode == 4, late.stdout + late.stderr
    run_id = run_id_of(late.stdout)
    assert "continues server-side" in late.stderr
    assert f"/api/v1/admin/provision/runs/{run_id}" in late.stderr
    assert "$ORCHESTRATOR_ADMIN_TOKEN" in late.stderr and prov.token not in late.stderr

    proc = subprocess.Popen(
        [ORCHESTRATOR_BIN, "provision", "--org", "acme", "--team", "slow2"],
        env=_env(served, prov.token),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
        c.path.endswith("/bootstrap") and "slow2" in c.path for c in prov.pipeline.calls
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    assert "continues server-side" in err and "curl" in err
    assert prov.wait(run_id)["status"] == "succeeded"
    assert prov.wait(run_id_of(out))["status"] == "succeeded"


def test_a_terminal_gets_the_steps_redrawn_in_place(prov: Prov, served: str) -> None:
    prov.pipeline.set_faults(latency=0.5)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [ORCHESTRATOR_BIN, "provision", "--org", "acme", "--team", "tty"],
        env={**_env(served, prov.token), "TERM": "xterm"},
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=30) == 0
    output = b"".join(chunks).decode()
    lines = 1 + len(PROVISION_STEPS)
    assert output.count(f"\x1b[{lines}F") >= 2, output  # redrawn in place, several times
    assert "\x1b[?25l" in output and "\x1b[?25h" in output  # cursor hidden, then restored
    assert re.search(r"  \S bootstrap +running ", ANSI.sub("", output)), output  # seen live
    final = ANSI.sub("", output.rsplit(f"\x1b[{lines}F", 1)[1])
    assert re.search(r"run [0-9a-f-]{36}  succeeded", final), final
    for name in PROVISION_STEPS:
        assert re.search(rf"  [{SYMBOLS['succeeded']}{SYMBOLS['skipped']}] {name} ", final), (
            name,
            final,
        )
    [token] = prov.team_tokens("acme", "tty")
    assert output.count(token["token"]) == 1


# -- without an instance -------------------------------------------------------------------


def test_missing_url_or_token_is_one_line_with_exit_2() -> None:
    no_url = cli("provision", "--org", "acme", "--team", "t", url=None, token="x")
    assert no_url.returncode == 2 and no_url.stdout == ""
    assert no_url.stderr.strip() == (
        "orchestrator provision: no instance URL: pass --url or set ORCHESTRATOR_URL"
    )
    no_token = cli("deprovision", "--org", "acme", "--team", "t", url="http://x.test", token=None)
    assert no_token.returncode == 2 and len(no_token.stderr.splitlines()) == 1
    assert "ORCHESTRATOR_ADMIN_TOKEN" in no_token.stderr
    sizing = cli(
        "provision", "--org", "a", "--team", "t", "--replicas", "2", url="http://x.test", token="x"
    )
    assert sizing.returncode == 2 and "--dedicated" in sizing.stderr


def test_an_unreachable_instance_is_one_line_with_exit_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = cli("provision", "--org", "acme", "--team", "t", url=url, token="secret-admin-token")
    assert done.returncode == 3, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(
        f"orchestrator provision: cannot reach {url}"
    )
    assert "secret-admin-token" not in done.stderr


# -- pure formatting -----------------------------------------------------------------------


def step(**fields: Any) -> dict[str, Any]:
    return {"name": "routing", "status": "pending", "attempts": 0, "error": None, **fields}


@pytest.mark.parametrize(
    ("status", "symbol"),
    [
        ("pending", "·"),
        ("succeeded", "✓"),
        ("skipped", "\N{EN DASH}"),
        ("failed", "✗"),
        ("compensated", "↺"),
    ],
)
def test_each_status_has_its_symbol(status: str, symbol: str) -> None:
    assert step_symbol(status) == symbol
    assert render_step(step(status=status)).startswith(f"  {symbol} routing ")
    assert step_symbol(status, unicode=False).isascii()


def test_a_running_step_spins() -> None:
    frames = {step_symbol("running", tick) for tick in range(10)}
    assert len(frames) == 10 and not frames & set(SYMBOLS.values())
    assert step_symbol("running", None) not in frames  # static in a log
    assert render_step(step(status="running"), tick=3).startswith(f"  {step_symbol('running', 3)} ")


def test_attempts_duration_error_and_notes() -> None:
    once = render_step(step(status="succeeded", attempts=1), elapsed=0.123)
    assert "0.12s" in once and "attempt" not in once
    retrying = render_step(
        step(status="running", attempts=2, error="attempt 1 failed, will retry: peer_unavailable"),
        elapsed=1.5,
    )
    assert "attempt 2" in retrying and "error: attempt 1 failed, will retry" in retrying
    failed = render_step(step(status="failed", attempts=3, error="peer_unavailable: 503"))
    assert "3 attempts" in failed and failed.endswith("error: peer_unavailable: 503")
    skipped = render_step(step(status="skipped", detail={"note": "an active team token exists"}))
    assert skipped.endswith("an active team token exists")
    long = render_step(step(status="failed", error="x" * 500), width=80)
    assert len(long) <= 80 and long.endswith("…")
    colored = render_step(step(status="failed"), color=True)
    assert "\x1b[31m✗\x1b[0m" in colored
    assert [format_duration(s) for s in (0.05, 12.34, 75)] == ["0.05s", "12.3s", "1m15s"]


def test_api_errors_are_one_line() -> None:
    body = {
        "title": "Unprocessable Entity",
        "description": "invalid body: team_node_id",
        "errors": [{"field": "team_node_id", "message": "String should match pattern"}],
    }
    line = api_error_line(422, body)
    assert line == (
        "422 Unprocessable Entity: invalid body: team_node_id "
        "(team_node_id: String should match pattern)"
    )
    assert "ORCHESTRATOR_ADMIN_TOKEN" in api_error_line(401, {"title": "Unauthorized"})
    assert (
        api_error_line(502, None, "<html>\n bad gateway </html>")
        == "502 <html> bad gateway </html>"
    )


def test_summary_shows_the_token_once_or_why_there_is_none() -> None:
    run: dict[str, Any] = {
        "provisioning_run_id": "r1", "kind": "provision", "org_id": "acme",
        "team_node_id": "pay", "status": "succeeded", "error": None, "duration_seconds": 1.5,
        "steps": [
            {"name": "team_token", "status": "succeeded", "detail": {"issued_token_id": "t"}}
        ],
    }  # fmt: skip
    shown = "\n".join(summary(run, "tok.secret"))
    assert shown.count("tok.secret") == 1 and "shown only this once" in shown
    assert "already received it" in "\n".join(summary(run, None))
    run["steps"][0] = {"name": "team_token", "status": "skipped", "detail": {}}
    assert "an active one exists" in "\n".join(summary(run, None))
    failed = {
        **run, "status": "failed", "error": "routing_conflict: C1 belongs to 'owner'",
        "steps": [
            {"name": "team_node", "status": "compensated"},
            {"name": "routing", "status": "failed", "attempts": 1, "error": "routing_conflict"},
        ],
    }  # fmt: skip
    lines = summary(failed, None)
    assert lines[0].startswith("✗ provision of acme/pay failed")
    assert "  failed step: routing: routing_conflict" in lines  # differs from the reason
    assert "  reason: routing_conflict: C1 belongs to 'owner'" in lines
    assert "  undone: team_node" in lines


def test_the_request_body_from_the_flags() -> None:
    assert {key for _, key, *_ in ROUTING_FLAGS} == set(ROUTING_KEYS)
    args = argparse.Namespace(
        org="acme", team="pay", name=None, schedule=None, default_schedule=True,
        dedicated=True, replicas=2, cpu=None, memory="512Mi", rotate_token=False,
        **{key: [] for _, key, *_ in ROUTING_FLAGS} | {"github_repos": ["acme/pay"]},
    )  # fmt: skip
    assert provision_body(args, "k") == {
        "org_id": "acme",
        "team_node_id": "pay",
        "routing": {"github_repos": ["acme/pay"]},
        "create_pipeline_schedule": True,
        "deployment_mode": "dedicated",
        "dedicated_config": {"replicas": 2, "memory": "512Mi"},
        "idempotency_key": "k",
    }
    args.dedicated = False
    with pytest.raises(UsageError):
        provision_body(args, "k")
