"""`orchestrator provision` and `orchestrator deprovision`: ask a running instance to
provision or deprovision a team (SPEC §4.3, §5) and follow the run live until it ends.

The command POSTs (or DELETEs) the request, then reads the run every 0.3 s. On a terminal
the steps are redrawn in place, one line each; elsewhere (a pipe, a CI log) one line is
printed per step change. A new team token is handed out by exactly one read of the
succeeded run and any read may be that one, so the token is kept from whichever read
carries it and printed once at the end. The admin token is never printed.

Each invocation sends a fresh idempotency key (`--idempotency-key` to choose one): a
request whose answer was lost is retried with the same key and finds the same run,
while running the same command again deliberately starts a new run (a fixed default
would hand back the old, possibly failed, run).

Exit codes: 0 the run succeeded (with `--no-wait`: it was accepted); 1 the run failed;
2 a usage error or the API refused the request (401, 403, 404, 409, 422); 3 the instance
is unreachable or unavailable (connection error, timeout, 5xx); 4 the run had not ended
within `--timeout` (it continues server-side); 130 interrupted while waiting (it
continues server-side).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from cli.webhook_send import UsageError, resolve_url

TEAM_API = "/api/v1/admin/provision/team"
RUNS_API = "/api/v1/admin/provision/runs"
USER_AGENT = "incidentfox-orchestrator-provision"
HTTP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.3
FRAME_SECONDS = 0.1
DEFAULT_TIMEOUT_SECONDS = 300.0

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_TIMEOUT = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
FINAL = ("succeeded", "failed")

# (flag, request routing list, metavar, what it is)
ROUTING_FLAGS = (
    ("--slack-channel", "slack_channel_ids", "ID", "a Slack channel id"),
    ("--github-repo", "github_repos", "OWNER/NAME", "a GitHub repository"),
    ("--pagerduty-service", "pagerduty_service_ids", "ID", "a PagerDuty service id"),
    ("--incidentio-team", "incidentio_team_ids", "ID", "an incident.io team id"),
    (
        "--incidentio-alert-source",
        "incidentio_alert_source_ids",
        "ID",
        "an incident.io alert source id",
    ),
    ("--coralogix-team", "coralogix_team_names", "NAME", "a Coralogix team name"),
    ("--service", "services", "NAME", "a service name"),
)

SYMBOLS = {
    "pending": "·",
    "succeeded": "✓",
    "skipped": "\N{EN DASH}",
    "failed": "✗",
    "compensated": "↺",
}
ASCII_SYMBOLS = {
    "pending": ".",
    "succeeded": "+",
    "skipped": "-",
    "failed": "x",
    "compensated": "<",
}
SPINNER, ASCII_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", "|/-\\"
COLORS = {"succeeded": "32", "failed": "31", "compensated": "33", "running": "36"}
NAME_WIDTH = 17  # the longest step name, pipeline_schedule


class ApiRefused(Exception):
    """The API answered 4xx: one line, exit 2."""


class Unreachable(Exception):
    """No usable answer (connection error, timeout, 5xx): one line, exit 3."""

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


# -- pure formatting -----------------------------------------------------------------------


def step_symbol(status: str, tick: int | None = None, *, unicode: bool = True) -> str:
    """The status symbol; a running step spins with `tick` (None: a static arrow)."""
    if status == "running":
        if tick is None:
            return "\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}" if unicode else ">"
        frames = SPINNER if unicode else ASCII_SPINNER
        return frames[tick % len(frames)]
    return (SYMBOLS if unicode else ASCII_SYMBOLS).get(status, "?")


def format_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{max(seconds, 0.0):.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def render_step(
    step: dict[str, Any],
    *,
    elapsed: float | None = None,
    tick: int | None = None,
    unicode: bool = True,
    color: bool = False,
    width: int | None = None,
) -> str:
    """One step as one line: symbol, name, status, duration, attempts when more than
    one, and the error (or a skipped step's note)."""
    status = str(step.get("status") or "pending")
    attempts = int(step.get("attempts") or 0)
    parts = [
        f"{step.get('name', '?'):<{NAME_WIDTH}}",
        f"{status:<11}",
        f"{format_duration(elapsed):>7}" if elapsed is not None else " " * 7,
    ]
    if attempts > 1:
        parts.append(f"attempt {attempts}" if status == "running" else f"{attempts} attempts")
    note = (step.get("detail") or {}).get("note")
    if step.get("error"):
        parts.append(f"error: {step['error']}")
    elif status == "skipped" and note:
        parts.append(str(note))
    text = "  ".join(parts).rstrip()
    if width is not None:
        text = _truncate(text, width - 4)
    symbol = step_symbol(status, tick, unicode=unicode)
    if color and status in COLORS:
        symbol = f"\x1b[{COLORS[status]}m{symbol}\x1b[0m"
    elif color and status in ("pending", "skipped"):
        symbol = f"\x1b[2m{symbol}\x1b[0m"
    return f"  {symbol} {text}"


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def finished_duration(step: dict[str, Any]) -> float | None:
    """A finished step's duration by the server's clock."""
    started, finished = _parse_time(step.get("started_at")), _parse_time(step.get("finished_at"))
    if started is None or finished is None:
        return None
    return (finished - started).total_seconds()


def run_header(run: dict[str, Any], elapsed: float | None = None) -> str:
    kind = run.get("kind", "provision")
    where = f"{run.get('org_id')}/{run.get('team_node_id')}"
    line = f"{kind} {where}  run {run.get('provisioning_run_id')}  {run.get('status')}"
    return f"{line}  {format_duration(elapsed)}" if elapsed is not None else line


def api_error_line(status: int, body: Any, text: str = "") -> str:
    """An API error answer (`{"title","description","errors"?}`) as one line."""
    if isinstance(body, dict) and (body.get("title") or body.get("description")):
        title, description = body.get("title") or "", body.get("description") or ""
        line = (
            f"{status} {title}: {description}"
            if title and description
            else f"{status} {title or description}"
        )
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            fields = "; ".join(
                f"{e.get('field')}: {e.get('message')}" for e in errors[:5] if isinstance(e, dict)
            )
            line += f" ({fields})"
    else:
        line = f"{status} {' '.join(text.split())[:300] or '(empty body)'}"
    if status == 401:
        line += " (check --token / ORCHESTRATOR_ADMIN_TOKEN)"
    return line


def summary(run: dict[str, Any], token: str | None, *, unicode: bool = True) -> list[str]:
    """The closing lines of a finished run; the team token, when this command received
    it, in the only place it is ever printed."""
    steps = run.get("steps") or []
    where = f"{run.get('org_id')}/{run.get('team_node_id')}"
    kind = run.get("kind", "provision")
    took = run.get("duration_seconds")
    took_text = f" in {format_duration(float(took))}" if took is not None else ""
    rid = run.get("provisioning_run_id")
    if run.get("status") != "succeeded":
        failed = next((s for s in steps if s.get("status") == "failed"), None)
        lines = [f"{step_symbol('failed', unicode=unicode)} {kind} of {where} failed (run {rid})"]
        reason = run.get("error") or "unknown"
        if failed is not None:
            tries = int(failed.get("attempts") or 0)
            line = f"  failed step: {failed.get('name')}"
            line += f" after {tries} attempts" if tries > 1 else ""
            if failed.get("error") and failed["error"] != reason:
                line += f": {failed['error']}"
            lines.append(line)
        lines.append(f"  reason: {reason}")
        undone = [str(s.get("name")) for s in steps if s.get("status") == "compensated"]
        if undone:
            lines.append(f"  undone: {', '.join(undone)}")
        return lines
    done = "provisioned" if kind == "provision" else "deprovisioned"
    lines = [f"{step_symbol('succeeded', unicode=unicode)} {done} {where}{took_text} (run {rid})"]
    if kind != "provision":
        return lines
    token_step: dict[str, Any] = next((s for s in steps if s.get("name") == "team_token"), {})
    if token:
        lines += [
            "",
            "Team token (shown only this once: store it now, it cannot be shown again):",
            f"  {token}",
        ]
    elif token_step.get("status") == "skipped":
        lines.append("  team token: an active one exists, none issued (--rotate-token issues one)")
    elif (token_step.get("detail") or {}).get("issued_token_id"):
        lines.append(
            "  team token: issued, but an earlier read of this run already received it;"
            " it cannot be shown again (--rotate-token issues a new one)"
        )
    return lines


# -- request -------------------------------------------------------------------------------


def provision_body(args: argparse.Namespace, idempotency_key: str) -> dict[str, Any]:
    body: dict[str, Any] = {"org_id": args.org, "team_node_id": args.team}
    if args.name:
        body["name"] = args.name
    routing = {key: values for _, key, *_ in ROUTING_FLAGS if (values := getattr(args, key))}
    if routing:
        body["routing"] = routing
    if args.schedule:
        body["pipeline_schedule"] = args.schedule
    elif args.default_schedule:
        body["create_pipeline_schedule"] = True
    sizing = {k: getattr(args, k) for k in ("replicas", "cpu", "memory")}
    sizing = {k: v for k, v in sizing.items() if v is not None}
    if args.dedicated:
        body["deployment_mode"] = "dedicated"
        if sizing:
            body["dedicated_config"] = sizing
    elif sizing:
        raise UsageError("--replicas, --cpu and --memory need --dedicated")
    if args.rotate_token:
        body["rotate_token"] = True
    body["idempotency_key"] = idempotency_key
    return body


def deprovision_body(args: argparse.Namespace, idempotency_key: str) -> dict[str, Any]:
    return {"org_id": args.org, "team_node_id": args.team, "idempotency_key": idempotency_key}


# -- displays ------------------------------------------------------------------------------


class StepClock:
    """Step durations: a finished step by the server's clock, a running one from when
    this command first saw it running (no clock skew between the two machines)."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._start = time.monotonic()

    def run_elapsed(self) -> float:
        return time.monotonic() - self._start

    def elapsed(self, step: dict[str, Any]) -> float | None:
        name = str(step.get("name"))
        if step.get("status") == "running":
            return time.monotonic() - self._since.setdefault(name, time.monotonic())
        return finished_duration(step)


class LiveDisplay:
    """A terminal: the header and one line per step, redrawn in place."""

    def __init__(self, out: IO[str], *, unicode: bool, color: bool) -> None:
        self.out, self.unicode, self.color = out, unicode, color
        self.clock = StepClock()
        self.drawn = 0
        self.tick = 0
        self.out.write("\x1b[?25l")  # hide the cursor while drawing

    def show(self, run: dict[str, Any], note: str | None = None) -> None:
        width = shutil.get_terminal_size((100, 24)).columns
        header = run_header(run, self.clock.run_elapsed())
        if note:
            header += f"  ({note})"
        lines = [_truncate(header, width - 1)]
        lines += [
            render_step(
                s,
                elapsed=self.clock.elapsed(s),
                tick=self.tick,
                unicode=self.unicode,
                color=self.color,
                width=width,
            )
            for s in run.get("steps") or []
        ]
        frame = f"\x1b[{self.drawn}F" if self.drawn else ""
        frame += "".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J"
        self.out.write(frame)
        self.out.flush()
        self.drawn = len(lines)
        self.tick += 1

    def close(self) -> None:
        self.out.write("\x1b[?25h")
        self.out.flush()


class LineDisplay:
    """A pipe or a log: one line per step change (status or attempt), nothing else."""

    def __init__(self, out: IO[str], *, unicode: bool) -> None:
        self.out, self.unicode = out, unicode
        self.clock = StepClock()
        self.seen: dict[str, tuple[Any, Any]] = {}
        self.header = False
        self.note: str | None = None

    def show(self, run: dict[str, Any], note: str | None = None) -> None:
        if not self.header:
            self.header = True
            names = ", ".join(str(s.get("name")) for s in run.get("steps") or [])
            self.out.write(f"{run_header(run)}\n  steps: {names}\n")
        if note and note != self.note:
            self.out.write(f"  ({note})\n")
        self.note = note
        for step in run.get("steps") or []:
            key = (step.get("status"), step.get("attempts"))
            name = str(step.get("name"))
            if self.seen.get(name, ("pending", 0)) != key:
                self.seen[name] = key
                line = render_step(step, elapsed=self.clock.elapsed(step), unicode=self.unicode)
                self.out.write(line + "\n")
        self.out.flush()

    def close(self) -> None:
        pass


class NoDisplay:
    def show(self, run: dict[str, Any], note: str | None = None) -> None:
        pass

    def close(self) -> None:
        pass


def _unicode(out: IO[str]) -> bool:
    try:
        ("".join(SYMBOLS.values()) + SPINNER + "…").encode(
            getattr(out, "encoding", None) or "ascii"
        )
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def make_display(out: IO[str], *, quiet: bool) -> LiveDisplay | LineDisplay | NoDisplay:
    if quiet:
        return NoDisplay()
    unicode = _unicode(out)
    if out.isatty() and os.environ.get("TERM", "") != "dumb":
        return LiveDisplay(out, unicode=unicode, color="NO_COLOR" not in os.environ)
    return LineDisplay(out, unicode=unicode)


# -- HTTP ----------------------------------------------------------------------------------


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _checked(response: Any) -> dict[str, Any]:
    body = _json(response)
    status = response.status_code
    if status >= 500:
        raise Unreachable(api_error_line(status, body, response.text), maybe_sent=True)
    if status >= 400:
        raise ApiRefused(api_error_line(status, body, response.text))
    if not isinstance(body, dict) or "provisioning_run_id" not in body:
        raise Unreachable(f"{status} answer is not a run: {response.text.strip()[:200]}")
    return body


def submit(client: Any, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """The request, retried once when its answer was lost: the idempotency key makes the
    second send find the run the first one may have created."""
    import httpx

    for attempt in (1, 2):
        try:
            return _checked(client.request(method, TEAM_API, json=body))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise Unreachable(f"cannot reach {client.base_url}: {_reason(exc)}") from None
        except httpx.TransportError as exc:
            if attempt == 2:
                raise Unreachable(
                    f"no answer from {client.base_url}: {_reason(exc)}", maybe_sent=True
                ) from None
            time.sleep(0.5)
    raise AssertionError("unreachable")  # pragma: no cover


def read_run(client: Any, run_id: str) -> dict[str, Any]:
    import httpx

    try:
        return _checked(client.get(f"{RUNS_API}/{run_id}"))
    except httpx.TransportError as exc:
        raise Unreachable(f"cannot reach {client.base_url}: {_reason(exc)}") from None


def follow(
    client: Any,
    run: dict[str, Any],
    display: LiveDisplay | LineDisplay | NoDisplay,
    *,
    timeout: float,
) -> tuple[dict[str, Any], str | None, int | None]:
    """Poll the run until a read shows it finished: (run, team token, None), or
    (last run seen, token, exit code) when --timeout passes first. Transient read
    failures are shown and retried until then; a 4xx ends it (ApiRefused)."""
    rid = str(run["provisioning_run_id"])
    token: str | None = run.get("team_token")
    deadline = time.monotonic() + timeout
    next_read = time.monotonic()
    trouble: str | None = None
    while True:
        now = time.monotonic()
        if now >= next_read:
            next_read = now + POLL_SECONDS
            try:
                run = read_run(client, rid)
            except Unreachable as exc:
                trouble = f"retrying: {exc}"
            else:
                trouble = None
                token = run.get("team_token") or token  # any read may be the delivering one
                if run.get("status") in FINAL:
                    display.show(run)
                    return run, token, None
        if now >= deadline:
            display.show(run, trouble)
            return run, token, EXIT_UNREACHABLE if trouble else EXIT_TIMEOUT
        display.show(run, trouble)
        time.sleep(FRAME_SECONDS)


# -- the command ---------------------------------------------------------------------------


def _error(command: str, message: str) -> None:
    print(f"orchestrator {command}: {message}", file=sys.stderr)


def _check_hint(base: str, rid: str) -> str:
    return (
        f'  curl -H "Authorization: Bearer $ORCHESTRATOR_ADMIN_TOKEN" {base}{RUNS_API}/{rid}\n'
        "(the first read of a succeeded run that issued a team token returns the token, once)"
    )


def run(args: argparse.Namespace) -> int:
    import httpx

    command = args.command
    try:
        base = resolve_url(args.url)
        admin_token = (args.token or os.environ.get("ORCHESTRATOR_ADMIN_TOKEN") or "").strip()
        if not admin_token:
            raise UsageError("no admin token: pass --token or set ORCHESTRATOR_ADMIN_TOKEN")
        if args.timeout <= 0:
            raise UsageError("--timeout must be more than 0 seconds")
        key = (args.idempotency_key or "").strip() or f"cli-{uuid.uuid4().hex}"
        if command == "provision":
            body, method = provision_body(args, key), "POST"
        else:
            body, method = deprovision_body(args, key), "DELETE"
    except UsageError as exc:
        _error(command, str(exc))
        return EXIT_USAGE

    headers = {"Authorization": f"Bearer {admin_token}", "User-Agent": USER_AGENT}
    with httpx.Client(base_url=base, headers=headers, timeout=HTTP_TIMEOUT_SECONDS) as client:
        try:
            accepted = submit(client, method, body)
        except ApiRefused as exc:
            _error(command, str(exc))
            return EXIT_USAGE
        except Unreachable as exc:
            again = f"; re-run with --idempotency-key {key} to pick up the run if it was created"
            _error(command, f"{exc}{again if exc.maybe_sent else ''}")
            return EXIT_UNREACHABLE
        except KeyboardInterrupt:
            _error(
                command, f"interrupted; if the request arrived, --idempotency-key {key} finds it"
            )
            return EXIT_INTERRUPTED
        rid = str(accepted["provisioning_run_id"])
        if args.no_wait:
            if args.json:
                print(json.dumps(accepted, indent=2))
            else:
                print(f"{command} of {args.org}/{args.team} accepted: run {rid}")
                print("follow it with:\n" + _check_hint(base, rid))
            return EXIT_OK

        display = make_display(sys.stdout, quiet=args.json)
        try:
            final, token, code = follow(client, accepted, display, timeout=args.timeout)
        except ApiRefused as exc:
            _error(command, f"reading run {rid}: {exc}")
            return EXIT_USAGE
        except KeyboardInterrupt:
            _error(command, f"interrupted: run {rid} continues server-side. Check it with:")
            print(_check_hint(base, rid), file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            display.close()

    if code is not None:
        waited = f"still {final.get('status')} after {args.timeout:g} s"
        if code == EXIT_UNREACHABLE:
            waited = f"lost contact with {base} while waiting"
        _error(command, f"{waited}; run {rid} continues server-side. Check it with:")
        print(_check_hint(base, rid), file=sys.stderr)
        return code
    if token:
        final = {**final, "team_token": token}
    if args.json:
        print(json.dumps(final, indent=2))
    else:
        unicode = _unicode(sys.stdout)
        lines = summary(final, token, unicode=unicode)
        stream = sys.stdout if final.get("status") == "succeeded" else sys.stderr
        sys.stdout.flush()
        print("\n" + "\n".join(lines), file=stream)
    return EXIT_OK if final.get("status") == "succeeded" else EXIT_FAILED


# -- command line --------------------------------------------------------------------------

_EXIT_CODES = """exit codes:
  0    the run succeeded (with --no-wait: the request was accepted)
  1    the run failed (the failed step and the reason are printed)
  2    usage error, or the API refused the request (401, 403, 404, 409, 422)
  3    the instance is unreachable or unavailable (connection error, timeout, 5xx)
  4    the run had not finished within --timeout (it continues server-side)
  130  interrupted while waiting (the run continues server-side)"""


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    target = common.add_argument_group("instance and team")
    target.add_argument("--url", help="base URL of the instance (default $ORCHESTRATOR_URL)")
    target.add_argument(
        "--token",
        help="admin token (default $ORCHESTRATOR_ADMIN_TOKEN, preferred: an argument shows in"
        " the process list); never printed",
    )
    target.add_argument("--org", required=True, help="org id")
    target.add_argument("--team", required=True, help="team node id")
    run_options = common.add_argument_group("run")
    run_options.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="idempotency key (default: a fresh one per invocation); the same key and request"
        " again return the existing run instead of starting another",
    )
    run_options.add_argument(
        "--no-wait", action="store_true", help="print the run id and exit once accepted"
    )
    run_options.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"how long to wait for the run to finish (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    run_options.add_argument(
        "--json",
        action="store_true",
        help="print the final run as JSON (team_token included when issued) instead of the"
        " live display",
    )
    return common


def add_provision_commands(sub: Any, fn: Callable[[argparse.Namespace], int]) -> None:
    """`orchestrator provision` and `orchestrator deprovision` under the top-level
    subparsers `sub`; `fn` runs either (it tells them apart by `args.command`)."""
    common = _common_options()
    formatter = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "provision",
        parents=[common],
        formatter_class=formatter,
        help="provision a team on a running instance and follow the run live",
        description=(
            "Provision a team on a running instance (POST /api/v1/admin/provision/team) and\n"
            "follow the run's steps live. A new team token is printed once at the end; it\n"
            "cannot be shown again. Routing lists not given keep the team's current values;\n"
            "a list given replaces the team's list of that kind."
        ),
        epilog=_EXIT_CODES
        + "\n\nexample:\n  orchestrator provision --org acme --team payments --slack-channel C0PAY"
        " --github-repo acme/payments --default-schedule",
    )
    p.add_argument("--name", help="display name of the team")
    routing = p.add_argument_group("routing (each repeatable)")
    for flag, key, metavar, what in ROUTING_FLAGS:
        routing.add_argument(
            flag, dest=key, action="append", default=[], metavar=metavar, help=what
        )
    schedule = p.add_argument_group("pipeline schedule").add_mutually_exclusive_group()
    schedule.add_argument("--schedule", metavar="CRON", help="ingestion schedule, a cron")
    schedule.add_argument(
        "--default-schedule", action="store_true", help="the default ingestion schedule 0 2 * * *"
    )
    agent = p.add_argument_group("deployment")
    agent.add_argument(
        "--dedicated", action="store_true", help="run a dedicated agent Deployment for the team"
    )
    agent.add_argument("--replicas", type=int, help="dedicated agent replicas (default 1)")
    agent.add_argument("--cpu", help="dedicated agent CPU, e.g. 500m (default 500m)")
    agent.add_argument("--memory", help="dedicated agent memory, e.g. 1Gi (default 1Gi)")
    agent.add_argument(
        "--rotate-token", action="store_true", help="issue a new team token even if one is active"
    )
    p.set_defaults(func=fn)

    d = sub.add_parser(
        "deprovision",
        parents=[common],
        formatter_class=formatter,
        help="deprovision a team on a running instance and follow the run live",
        description=(
            "Deprovision a team (DELETE /api/v1/admin/provision/team): revoke its team tokens,\n"
            "clear its routing, delete its schedules, CronJobs and dedicated agent. The team\n"
            "node remains in the Config Service."
        ),
        epilog=_EXIT_CODES,
    )
    d.set_defaults(func=fn)
