"""`orchestrator webhook send SOURCE`: send a correctly signed sample event of any
webhook source to a running instance, to test a deployment end to end.

Each source has a payload builder that makes a small but realistic delivery in the
provider's published shape (the options shape it, and so the routing identifiers the
gateway extracts); signing is `orchestrator.webhooks.signing.signed_headers`, the same
code the tests sign with. The secret is never printed: `--dry-run` shows the signature
headers, and masks Coralogix's bearer token, which is the secret itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

TIMEOUT_SECONDS = 10.0
EVENTS_API = "/api/v1/admin/webhooks/events"
USER_AGENT = "incidentfox-orchestrator-webhook-send"


@dataclass(frozen=True)
class Source:
    name: str  # as typed on the command line
    signing: str  # the name `signed_headers` and the gateway use
    path: str
    variable: str  # the environment variable that holds its secret(s)
    standard: bool = False  # Standard Webhooks: the secret must be whsec_<base64>


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("slack", "slack", "/webhooks/slack/events", "SLACK_SIGNING_SECRET"),
        Source(
            "slack-interactions",
            "slack_interactions",
            "/webhooks/slack/interactions",
            "SLACK_SIGNING_SECRET",
        ),
        Source("github", "github", "/webhooks/github", "GITHUB_WEBHOOK_SECRET"),
        Source("pagerduty", "pagerduty", "/webhooks/pagerduty", "PAGERDUTY_WEBHOOK_SECRET"),
        Source(
            "incidentio",
            "incidentio",
            "/webhooks/incidentio",
            "INCIDENTIO_WEBHOOK_SECRET",
            standard=True,
        ),
        Source("coralogix", "coralogix", "/webhooks/coralogix", "CORALOGIX_WEBHOOK_TOKEN"),
        Source("generic", "generic", "/webhooks/generic", "GENERIC_WEBHOOK_SECRET", standard=True),
    )
}


class UsageError(Exception):
    """A bad or missing input: one line, exit 2."""


@dataclass(frozen=True)
class Delivery:
    source: Source
    url: str
    headers: dict[str, str]
    body: bytes
    delivery_id: str
    method: str = "POST"

    def shown_headers(self) -> dict[str, str]:
        """The headers as printed: signatures shown, a bearer token (the secret) masked."""
        return {
            k: ("Bearer ***" if k.lower() == "authorization" else v)
            for k, v in self.headers.items()
        }


# -- ids and clock -------------------------------------------------------------------------

_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as incident.io ids


def _rand(alphabet: str, n: int) -> str:
    rng = random.SystemRandom()
    return "".join(rng.choice(alphabet) for _ in range(n))


def _ulid() -> str:
    return "01" + _rand(_ULID_ALPHABET, 24)


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def default_delivery_id(source: str) -> str:
    if source == "slack":
        return "Ev" + _rand(string.ascii_uppercase + string.digits, 10)  # Slack's event_id
    return str(uuid.uuid4())


def _stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "incidentfox-webhook-send:" + ":".join(parts)))


# -- payload builders ----------------------------------------------------------------------
# Each returns (body, extra keyword arguments for `signed_headers`).

Built = tuple[bytes, dict[str, Any]]
SLACK_TEAM = "T0SAMPLE01"
SLACK_APP = "A0SAMPLE01"
SLACK_BOT_USER = "U0LAN0Z89"


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def build_slack(args: argparse.Namespace, delivery_id: str, now: float) -> Built:
    """An Events API `event_callback` carrying an `app_mention` (the event_id is the
    delivery id, which Slack's retries reuse)."""
    ts = f"{now:.6f}"
    text = args.text
    if "<@" not in text:
        text = f"<@{SLACK_BOT_USER}> {text}"
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": args.user,
        "text": text,
        "ts": ts,
        "channel": args.channel,
        "event_ts": ts,
    }
    if args.thread_ts:
        event["thread_ts"] = args.thread_ts
    payload = {
        "token": "sample-verification-token",
        "team_id": SLACK_TEAM,
        "api_app_id": SLACK_APP,
        "event": event,
        "type": "event_callback",
        "event_id": delivery_id,
        "event_time": int(now),
        "authorizations": [
            {
                "team_id": SLACK_TEAM,
                "user_id": SLACK_BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    }
    return _json(payload), {}


def build_slack_interactions(args: argparse.Namespace, delivery_id: str, now: float) -> Built:
    """A `block_actions` interaction (a feedback button press), form-encoded as
    `payload=<json>`. The gateway deduplicates on a hash of the payload, so the payload
    depends only on the options and the delivery id (its `trigger_id`)."""
    payload = {
        "type": "block_actions",
        "user": {
            "id": args.user,
            "username": "sample-user",
            "name": "sample-user",
            "team_id": SLACK_TEAM,
        },
        "api_app_id": SLACK_APP,
        "token": "sample-verification-token",
        "container": {
            "type": "message",
            "message_ts": args.message_ts,
            "channel_id": args.channel,
            "is_ephemeral": False,
        },
        "trigger_id": delivery_id,
        "team": {"id": SLACK_TEAM, "domain": "sample-workspace"},
        "channel": {"id": args.channel, "name": "sample-channel"},
        "response_url": f"https://hooks.slack.com/actions/{SLACK_TEAM}/0/sample",
        "actions": [
            {
                "action_id": args.action_id,
                "block_id": "incidentfox_feedback",
                "text": {"type": "plain_text", "text": args.value},
                "value": args.value,
                "type": "button",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    return body, {}


def _github_repository(full_name: str) -> dict[str, Any]:
    owner, _, name = full_name.partition("/")
    return {
        "id": 1296269,
        "name": name,
        "full_name": full_name,
        "private": False,
        "html_url": f"https://github.com/{full_name}",
        "owner": {"login": owner, "id": 1, "type": "Organization"},
        "default_branch": "main",
    }


def build_github(args: argparse.Namespace, delivery_id: str, now: float) -> Built:
    """`issue_comment` `created` by a User that mentions the bot, or a completed
    `workflow_run` / `check_suite` (by default a failed one: failed CI)."""
    if "/" not in args.repo.strip("/"):
        raise UsageError(f"--repo: expected owner/name, got {args.repo!r}")
    repository = _github_repository(args.repo)
    sender = {"login": args.user, "id": 583231, "type": "User"}
    if args.event == "issue_comment":
        text = args.text
        if args.mention.lower() not in text.lower():
            text = f"{args.mention} {text}"
        issue_url = f"https://github.com/{args.repo}/issues/{args.issue}"
        payload: dict[str, Any] = {
            "action": "created",
            "issue": {
                "number": args.issue,
                "title": "Sample issue",
                "state": "open",
                "html_url": issue_url,
                "user": sender,
            },
            "comment": {
                "id": int(now * 1000) % 2_000_000_000,
                "body": text,
                "html_url": f"{issue_url}#issuecomment-1",
                "user": sender,
                "created_at": _iso(now),
                "updated_at": _iso(now),
            },
            "repository": repository,
            "sender": sender,
        }
    else:
        head = {
            "head_branch": args.branch,
            "head_sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
            "status": "completed",
            "conclusion": args.conclusion,
        }
        if args.event == "workflow_run":
            run = {
                "id": 30433642,
                "name": args.workflow,
                "run_number": 562,
                "event": "push",
                **head,
                "html_url": f"https://github.com/{args.repo}/actions/runs/30433642",
                "created_at": _iso(now - 120),
                "updated_at": _iso(now),
            }
            payload = {
                "action": "completed",
                "workflow_run": run,
                "workflow": {"id": 159038, "name": args.workflow},
                "repository": repository,
                "sender": sender,
            }
        else:
            payload = {
                "action": "completed",
                "check_suite": {
                    "id": 118578147,
                    **head,
                    "app": {"id": 15368, "slug": "github-actions", "name": args.workflow},
                    "updated_at": _iso(now),
                },
                "repository": repository,
                "sender": sender,
            }
    return _json(payload), {"github_event": args.event}


def build_pagerduty(args: argparse.Namespace, delivery_id: str, now: float) -> Built:
    """A V3 webhook `incident.triggered` on the given service."""
    incident = "Q" + _rand(_ULID_ALPHABET, 13)
    service_name = args.service_name or f"Service {args.service_id}"
    payload = {
        "event": {
            "id": str(uuid.uuid4()),
            "event_type": "incident.triggered",
            "resource_type": "incident",
            "occurred_at": _iso(now),
            "agent": None,
            "client": None,
            "data": {
                "id": incident,
                "type": "incident",
                "self": f"https://api.pagerduty.com/incidents/{incident}",
                "html_url": f"https://sample.pagerduty.com/incidents/{incident}",
                "number": int(now) % 100000,
                "status": "triggered",
                "incident_key": uuid.uuid4().hex,
                "created_at": _iso(now),
                "title": args.title,
                "service": {
                    "html_url": f"https://sample.pagerduty.com/services/{args.service_id}",
                    "id": args.service_id,
                    "self": f"https://api.pagerduty.com/services/{args.service_id}",
                    "summary": service_name,
                    "type": "service_reference",
                },
                "assignees": [],
                "escalation_policy": None,
                "teams": [],
                "priority": None,
                "urgency": args.urgency,
                "conference_bridge": None,
                "resolve_reason": None,
            },
        }
    }
    return _json(payload), {}


DEFAULT_ALERT_SOURCE = "01SAMPLEA1ERTS0VRCE0000000"


def build_incidentio(args: argparse.Namespace, delivery_id: str, now: float) -> Built:
    """`public_alert.alert_created_v1` from an alert source, or (`--kind incident`)
    `public_incident.incident_created_v2`. The team goes in `team_ids` and the service
    where incident.io puts it (an alert attribute, an incident custom field)."""
    created = _iso(now)
    if args.kind == "alert":
        event_type = "public_alert.alert_created_v1"
        alert: dict[str, Any] = {
            "id": _ulid(),
            "alert_source_id": args.alert_source_id or DEFAULT_ALERT_SOURCE,
            "title": args.title or "Sample alert from orchestrator webhook send",
            "description": args.description,
            "status": "firing",
            "deduplication_key": uuid.uuid4().hex[:10],
            "source_url": "https://alerts.example.com/sample",
            "created_at": created,
            "updated_at": created,
            "attributes": [],
        }
        if args.service:
            alert["attributes"].append(
                {
                    "attribute": {
                        "id": _ulid(),
                        "name": "service",
                        "type": 'CatalogEntry["Service"]',
                        "array": False,
                    },
                    "value": {"label": args.service, "catalog_entry": {"name": args.service}},
                }
            )
        if args.team_id:
            alert["team_ids"] = [args.team_id]
        event = alert
    else:
        if args.alert_source_id:
            raise UsageError("--alert-source-id applies to --kind alert (incidents have none)")
        event_type = "public_incident.incident_created_v2"
        incident: dict[str, Any] = {
            "id": _ulid(),
            "reference": f"INC-{int(now) % 10000}",
            "name": args.title or "Sample incident from orchestrator webhook send",
            "summary": args.description,
            "permalink": "https://app.incident.io/sample/incidents/1",
            "incident_status": {"category": "triage", "name": "Triage"},
            "severity": {"name": "Minor", "rank": 1},
            "mode": "standard",
            "visibility": "public",
            "created_at": created,
            "updated_at": created,
            "team_ids": [args.team_id] if args.team_id else [],
            "custom_field_entries": [],
        }
        if args.service:
            incident["custom_field_entries"].append(
                {
                    "custom_field": {
                        "id": _ulid(),
                        "name": "Affected Service",
                        "field_type": "multi_select",
                    },
                    "values": [{"value_catalog_entry": {"id": _ulid(), "name": args.service}}],
                }
            )
        event = incident
    return _json({"event_type": event_type, event_type: event}), {}


def build_coralogix(args: argparse.Namespace, delivery_id: str, now: float) -> Built:
    """Coralogix's generic outbound-webhook template with `alert_action`. The gateway
    deduplicates on a hash of the body, so it depends only on the options and the
    delivery id (its `uuid`)."""
    alert_id = _stable_uuid("coralogix", args.name)
    payload = {
        "uuid": delivery_id,
        "alert_id": alert_id,
        "name": args.name,
        "description": args.description,
        "threshold": "1",
        "timewindow": "5",
        "group_by_labels": "",
        "alert_action": args.action,
        "alert_url": f"https://sample.app.coralogix.com/#/insights?id={alert_id}",
        "log_url": f"https://sample.app.coralogix.com/#/query-new/logs?id={alert_id}",
        "icon_url": "https://coralogix.com/favicon.ico",
        "service": "",
        "duration": "",
        "errors": "",
        "spans": "",
        "fields": [
            {"key": "team", "value": args.team},
            {"key": "application", "value": args.application},
            {"key": "subsystem", "value": args.subsystem or args.application},
            {"key": "severity", "value": args.severity},
        ],
    }
    return _json(payload), {}


def build_generic(args: argparse.Namespace, delivery_id: str, now: float) -> Built:
    """A generic event: `event_type`, the `routing` identifiers, and `message`."""
    payload = {
        "event_type": args.event_type,
        "routing": dict(args.routing or []),
        "message": args.text,
        "occurred_at": _iso(now),
        "source": "orchestrator webhook send",
    }
    return _json(payload), {}


BUILDERS: dict[str, Callable[[argparse.Namespace, str, float], Built]] = {
    "slack": build_slack,
    "slack-interactions": build_slack_interactions,
    "github": build_github,
    "pagerduty": build_pagerduty,
    "incidentio": build_incidentio,
    "coralogix": build_coralogix,
    "generic": build_generic,
}


# -- URL and secret ------------------------------------------------------------------------


def resolve_url(given: str | None) -> str:
    value = (given or os.environ.get("ORCHESTRATOR_URL") or "").strip()
    if not value:
        raise UsageError("no instance URL: pass --url or set ORCHESTRATOR_URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        where = "--url" if given else "ORCHESTRATOR_URL"
        raise UsageError(f"{where} must be an http:// or https:// URL")
    return value.rstrip("/")


def resolve_secret(source: Source, given: str | None) -> str:
    """`--secret`, else the source's variable; of a comma-separated list (a rotation)
    the last value, the newest one."""
    raw = given if given is not None else os.environ.get(source.variable, "")
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if not values:
        if given is not None:
            raise UsageError("--secret is empty")
        raise UsageError(f"no secret for {source.name}: pass --secret or set {source.variable}")
    secret = values[-1]
    if source.standard:
        from standardwebhooks import Webhook

        try:
            Webhook(secret).sign("check", datetime.now(UTC), "")
        except Exception:
            where = "--secret" if given is not None else source.variable
            raise UsageError(
                f"{where} is not a Standard Webhooks secret (whsec_<base64 of the key>)"
            ) from None
    return secret


# -- build and send ------------------------------------------------------------------------


def build_delivery(args: argparse.Namespace, *, now: float | None = None) -> Delivery:
    from orchestrator.webhooks.signing import signed_headers

    source = SOURCES[args.source]
    url = resolve_url(args.url)
    secret = resolve_secret(source, args.secret)
    now = time.time() if now is None else now
    delivery_id = (args.delivery_id or "").strip() or default_delivery_id(source.name)
    body, sign = BUILDERS[source.name](args, delivery_id, now)
    headers = signed_headers(source.signing, secret, body, now=now, delivery_id=delivery_id, **sign)
    headers["User-Agent"] = USER_AGENT
    return Delivery(source, url + source.path, headers, body, delivery_id)


def describe(delivery: Delivery) -> dict[str, Any]:
    return {
        "method": delivery.method,
        "url": delivery.url,
        "headers": delivery.shown_headers(),
        "body": delivery.body.decode("utf-8"),
    }


def print_dry_run(delivery: Delivery, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(describe(delivery), indent=2, ensure_ascii=False))
        return
    print(f"{delivery.method} {delivery.url}")
    for name, value in delivery.shown_headers().items():
        print(f"{name}: {value}")
    print()
    print(delivery.body.decode("utf-8"))
    print(f"\n(dry run: nothing sent; delivery id {delivery.delivery_id})", file=sys.stderr)


def _answer(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def report(delivery: Delivery, status: int, answer: Any, text: str, retry_after: str | None) -> int:
    """Print the human line for an answer; the exit code (0 on 2xx, else 1)."""
    name = delivery.source.name
    if 200 <= status < 300:
        event_id = answer.get("event_id") if isinstance(answer, dict) else None
        if not event_id:
            print(f"{name} → {status} {text.strip()[:500]}")
        else:
            follow = f"(GET {EVENTS_API}/{event_id} to follow it)"
            if answer.get("duplicate"):
                print(
                    f"{name} → {status} duplicate: delivery {delivery.delivery_id} was already "
                    f"received as event {event_id}  {follow}"
                )
            else:
                print(
                    f"{name} → {status} accepted: event {event_id} "
                    f"(delivery {delivery.delivery_id})  {follow}"
                )
        return 0
    if isinstance(answer, dict) and (answer.get("description") or answer.get("title")):
        title = answer.get("title") or ""
        description = answer.get("description") or ""
        line = f"{title}: {description}" if title and description else title or description
    else:
        line = " ".join(text.split())[:300] or "(empty body)"
    if status == 404 and line.endswith("source not configured"):
        line += f" (the instance has no {delivery.source.variable})"
    if retry_after:
        line += f" (retry after {retry_after} s)"
    print(f"{name} → {status} {line}", file=sys.stderr)
    return 1


def send(delivery: Delivery, *, as_json: bool) -> int:
    import httpx

    try:
        response = httpx.request(
            delivery.method,
            delivery.url,
            content=delivery.body,
            headers=delivery.headers,
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.TimeoutException:
        print(
            f"orchestrator webhook send: {delivery.url} did not answer within "
            f"{TIMEOUT_SECONDS:.0f} s",
            file=sys.stderr,
        )
        return 1
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"orchestrator webhook send: cannot reach {delivery.url}: {reason}", file=sys.stderr)
        return 1
    status = response.status_code
    if as_json:
        print(response.text)
        return 0 if 200 <= status < 300 else 1
    return report(
        delivery, status, _answer(response), response.text, response.headers.get("Retry-After")
    )


def run(args: argparse.Namespace) -> int:
    try:
        delivery = build_delivery(args)
    except UsageError as exc:
        print(f"orchestrator webhook send: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print_dry_run(delivery, as_json=args.json)
        return 0
    return send(delivery, as_json=args.json)


# -- command line --------------------------------------------------------------------------


def _routing_pair(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key.strip() or not val.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {value!r}")
    return key.strip(), val.strip()


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("delivery")
    group.add_argument(
        "--url",
        help="base URL of the instance (default $ORCHESTRATOR_URL), e.g. https://orch.example",
    )
    group.add_argument(
        "--secret",
        help="secret to sign with (default: the source's variable, see above). When it "
        "holds several comma-separated values (a rotation), the LAST one is used. Never printed.",
    )
    group.add_argument(
        "--delivery-id",
        metavar="ID",
        help="the provider's delivery id (Slack event_id, X-GitHub-Delivery, X-Webhook-Id, "
        "webhook-id, ...; default: a fresh one). Sending the same id twice tests deduplication.",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="print the method, URL, headers (signatures shown, the secret never) and body; "
        "send nothing",
    )
    group.add_argument(
        "--json", action="store_true", help="print the instance's raw JSON answer instead"
    )
    return common


_SOURCE_HELP = {
    "slack": (
        "Slack Events API: an event_callback with an app_mention (a fresh event_id)",
        "SLACK_SIGNING_SECRET",
        'orchestrator webhook send slack --channel C123 --text "why is checkout slow?"',
    ),
    "slack-interactions": (
        "Slack interactivity: a block_actions feedback button press, form-encoded payload=",
        "SLACK_SIGNING_SECRET",
        "orchestrator webhook send slack-interactions --channel C123 "
        "--action-id feedback_positive --value <agent run id>",
    ),
    "github": (
        "GitHub: an issue_comment created by a User mentioning the bot, or failed CI",
        "GITHUB_WEBHOOK_SECRET",
        'orchestrator webhook send github --repo acme/checkout --text "why did CI fail?"\n'
        "  orchestrator webhook send github --repo acme/checkout --event workflow_run "
        "--conclusion failure",
    ),
    "pagerduty": (
        "PagerDuty V3: incident.triggered on a service",
        "PAGERDUTY_WEBHOOK_SECRET",
        'orchestrator webhook send pagerduty --service-id PF9KMXH --title "API latency high"',
    ),
    "incidentio": (
        "incident.io: an alert created (default) or, with --kind incident, an incident created",
        "INCIDENTIO_WEBHOOK_SECRET (whsec_...)",
        "orchestrator webhook send incidentio --alert-source-id 01GW2G3V0S59R238FAHPDS1R66 "
        "--service checkout\n"
        "  orchestrator webhook send incidentio --kind incident "
        "--team-id 01JPQA75EPNEES4479P16P4XAB",
    ),
    "coralogix": (
        "Coralogix: an alert (alert_action trigger) from the generic outbound-webhook template",
        "CORALOGIX_WEBHOOK_TOKEN (sent as the bearer token)",
        "orchestrator webhook send coralogix --team Payments --application checkout "
        '--name "Checkout errors above threshold"',
    ),
    "generic": (
        "generic endpoint: an event with routing identifiers and a message (Standard Webhooks)",
        "GENERIC_WEBHOOK_SECRET (whsec_...)",
        "orchestrator webhook send generic --routing service=checkout "
        '--event-type deploy.failed --text "deploy of checkout failed"',
    ),
}


def _configure_source(name: str, p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group(f"{name} payload")
    if name == "slack":
        o.add_argument("--channel", default="C123", help="channel id (routing; default C123)")
        o.add_argument(
            "--text",
            default="hello",
            help="message; the bot mention is prepended unless it has one (default hello)",
        )
        o.add_argument("--user", default="U012AB3CD", help="sender's user id (default U012AB3CD)")
        o.add_argument("--thread-ts", help="thread the mention is in (default: a new thread)")
    elif name == "slack-interactions":
        o.add_argument("--channel", default="C123", help="channel id (routing; default C123)")
        o.add_argument(
            "--action-id",
            default="feedback_buttons_1",
            help="the button's action_id: the feedback given (default feedback_buttons_1)",
        )
        o.add_argument(
            "--value",
            default="positive_feedback",
            help="the button's value: the agent run id the feedback is about "
            "(default positive_feedback)",
        )
        o.add_argument("--user", default="U012AB3CD", help="who pressed it (default U012AB3CD)")
        o.add_argument(
            "--message-ts",
            default="1700000000.000100",
            help="ts of the message the buttons are on",
        )
    elif name == "github":
        o.add_argument(
            "--repo", default="acme/demo", help="owner/name (routing; default acme/demo)"
        )
        o.add_argument(
            "--event",
            choices=("issue_comment", "workflow_run", "check_suite"),
            default="issue_comment",
            help="X-GitHub-Event (default issue_comment; workflow_run/check_suite: completed CI)",
        )
        o.add_argument(
            "--text",
            default="what happened here?",
            help="comment body; the mention is prepended unless present",
        )
        o.add_argument(
            "--mention",
            default=os.environ.get("GITHUB_BOT_MENTION") or "@incidentfox",
            help="the bot mention (default $GITHUB_BOT_MENTION or @incidentfox)",
        )
        o.add_argument("--issue", type=int, default=1, help="issue number (default 1)")
        o.add_argument("--user", default="octocat", help="sender login, a User (default octocat)")
        o.add_argument(
            "--conclusion",
            choices=("failure", "timed_out", "startup_failure", "success", "cancelled"),
            default="failure",
            help="CI conclusion for workflow_run/check_suite (default failure)",
        )
        o.add_argument("--workflow", default="CI", help="workflow / check name (default CI)")
        o.add_argument("--branch", default="main", help="head branch (default main)")
    elif name == "pagerduty":
        o.add_argument(
            "--service-id", default="PSAMPLE1", help="service id (routing; default PSAMPLE1)"
        )
        o.add_argument(
            "--title", default="Sample incident from orchestrator webhook send", help="title"
        )
        o.add_argument("--service-name", help="service summary (default: from the id)")
        o.add_argument("--urgency", choices=("high", "low"), default="high")
    elif name == "incidentio":
        o.add_argument(
            "--kind",
            choices=("alert", "incident"),
            default="alert",
            help="alert created (public_alert.alert_created_v1, default) or incident created "
            "(public_incident.incident_created_v2)",
        )
        o.add_argument(
            "--alert-source-id",
            help=f"alert source (routing; alerts only; default {DEFAULT_ALERT_SOURCE})",
        )
        o.add_argument("--team-id", help="team id (routing; set as team_ids)")
        o.add_argument("--service", help="service name (routing)")
        o.add_argument("--title", help="alert title / incident name (default: a sample one)")
        o.add_argument("--description", default="Sent by `orchestrator webhook send`.")
    elif name == "coralogix":
        o.add_argument(
            "--team", default="Sample", help="`team` field (routing, lowercased; default Sample)"
        )
        o.add_argument(
            "--application",
            default="sample-app",
            help="`application` field, the service (routing; default sample-app)",
        )
        o.add_argument("--subsystem", help="`subsystem` field (default: the application)")
        o.add_argument(
            "--name", default="Sample alert from orchestrator webhook send", help="alert name"
        )
        o.add_argument("--description", default="Sent by `orchestrator webhook send`.")
        o.add_argument("--severity", default="Critical")
        o.add_argument(
            "--action",
            choices=("trigger", "resolve"),
            default="trigger",
            help="alert_action (default trigger; resolve is stored but not a trigger)",
        )
    elif name == "generic":
        o.add_argument(
            "--routing",
            action="append",
            type=_routing_pair,
            metavar="KEY=VALUE",
            help="a routing identifier (repeatable), e.g. service=checkout; without any the "
            "event is unroutable",
        )
        o.add_argument("--event-type", default="test.event", help="event_type (default test.event)")
        o.add_argument(
            "--text", default="Sample event from orchestrator webhook send", help="message"
        )


def add_webhook_commands(
    sub: Any, fn: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """`orchestrator webhook send SOURCE ...` under the top-level subparsers `sub`."""
    formatter = argparse.RawDescriptionHelpFormatter
    webhook: argparse.ArgumentParser = sub.add_parser(
        "webhook",
        help="operator commands for the webhook endpoints (send a signed sample event)",
        description="Operator commands for the webhook endpoints.",
    )
    webhook_sub = webhook.add_subparsers(dest="webhook_command", required=True, metavar="COMMAND")
    variables = "\n".join(f"  {n:<19} {_SOURCE_HELP[n][1]}" for n in SOURCES)
    send = webhook_sub.add_parser(
        "send",
        help="send a correctly signed sample event of a source to a running instance",
        formatter_class=formatter,
        description=(
            "Send a correctly signed sample event of SOURCE to a running instance, to test "
            "a deployment end to end.\n\n"
            "The instance is --url or $ORCHESTRATOR_URL. The secret is --secret or the "
            "source's variable below;\nwhen it holds several comma-separated values (a "
            "rotation) the LAST one is used. The secret is\nnever printed.\n\n"
            f"Secrets by source:\n{variables}\n\n"
            "Prints the HTTP status and the answer (event id, duplicate); exit 0 on 2xx, "
            "1 otherwise,\n2 on a usage error. `orchestrator webhook send SOURCE --help` "
            "lists the options of a source."
        ),
        epilog="examples:\n  "
        + "\n  ".join(_SOURCE_HELP[n][2] for n in ("slack", "github", "generic")),
    )
    sources = send.add_subparsers(dest="source", required=True, metavar="SOURCE")
    common = _common_options()
    for name in SOURCES:
        what, variable, example = _SOURCE_HELP[name]
        p = sources.add_parser(
            name,
            parents=[common],
            help=what,
            formatter_class=formatter,
            description=f"{what}.\n\nsecret: --secret or {variable}; of a comma-separated "
            "list (rotation) the last value.",
            epilog=f"example:\n  {example}",
        )
        _configure_source(name, p)
        p.set_defaults(func=fn)
    return webhook
