"""GitHub: `X-Hub-Signature-256: sha256=<hex HMAC of the raw body>`. No timestamp, so
deduplication is the replay defence; `X-GitHub-Delivery` is shared by every hook
subscribed to the event and reused on redelivery, so the key is hook id + delivery id.

Triggers: a comment that mentions `GITHUB_BOT_MENTION` by a non-bot sender, and failed
CI (`workflow_run` / `check_suite` completed with `failure`). Bots — our own comments
included — never trigger, so the product cannot talk to itself.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from orchestrator.webhooks.model import (
    Inbound,
    IncompletePayload,
    ParsedEvent,
    SignatureInvalid,
    Trigger,
    any_digest_matches,
    body_text,
    dig,
    json_object,
    string_or_none,
)

_COMMENT_EVENTS = {"issue_comment", "pull_request_review_comment", "commit_comment"}
_FAILED = {"failure", "timed_out", "startup_failure"}


class GitHub:
    name = "github"
    path = "/webhooks/github"

    def __init__(self, bot_mention: str = "@incidentfox") -> None:
        self.bot_mention = bot_mention.lower()

    def verify(self, secrets: list[str], inbound: Inbound) -> None:
        header = inbound.header("X-Hub-Signature-256") or ""
        prefix, _, hexdigest = header.partition("=")
        try:
            given = bytes.fromhex(hexdigest) if prefix == "sha256" else b""
        except ValueError:
            given = b""
        expected = [hmac.new(s.encode(), inbound.body, hashlib.sha256).digest() for s in secrets]
        if not given or not any_digest_matches(expected, [given]):
            raise SignatureInvalid("invalid X-Hub-Signature-256")

    def parse(self, inbound: Inbound) -> ParsedEvent:
        payload = json_object(inbound.body)
        delivery = (inbound.header("X-GitHub-Delivery") or "").strip()
        event = (inbound.header("X-GitHub-Event") or "").strip()
        if not delivery or not event:
            raise IncompletePayload("X-GitHub-Event and X-GitHub-Delivery are required")
        hook = (inbound.header("X-GitHub-Hook-ID") or "").strip() or "-"
        action = string_or_none(payload.get("action"))
        routing = {}
        repo = string_or_none(dig(payload, "repository", "full_name"))
        if repo:
            routing["github_repo"] = repo
        event_type = f"{event}.{action}" if action else event
        return ParsedEvent(
            f"{hook}:{delivery}",
            event_type,
            payload,
            routing,
            raw_json=body_text(inbound.body),
        )

    def classify(self, event_type: str, payload: dict[str, Any]) -> Trigger:
        event, _, action = event_type.partition(".")
        repo = dig(payload, "repository", "full_name")
        if event in _COMMENT_EVENTS:
            return self._comment(event, action, payload, repo)
        if event in ("workflow_run", "check_suite") and action == "completed":
            run = payload.get(event) or {}
            conclusion = run.get("conclusion")
            if conclusion not in _FAILED:
                return Trigger(False, f"{event} concluded {conclusion}")
            name = run.get("name") or run.get("app", {}).get("name") or event
            branch = run.get("head_branch")
            return Trigger(
                True,
                "ci_failure",
                message=f"CI failed in {repo}: {name} on {branch} ({conclusion}). "
                f"{run.get('html_url') or ''}".strip(),
                context=self._context(payload, event_type, repo, None, None),
            )
        return Trigger(False, f"GitHub {event_type} is not a trigger")

    def _comment(self, event: str, action: str, payload: dict[str, Any], repo: Any) -> Trigger:
        if action != "created":
            return Trigger(False, f"{event}.{action} is not a trigger")
        sender = payload.get("sender") or {}
        login = str(sender.get("login") or "")
        if sender.get("type") == "Bot" or login.endswith("[bot]"):
            return Trigger(False, "comment from a bot")
        body = str(dig(payload, "comment", "body") or "")
        if self.bot_mention not in body.lower():
            return Trigger(False, f"comment does not mention {self.bot_mention}")
        issue = payload.get("issue") or {}
        pr_number = dig(payload, "pull_request", "number") or (
            issue.get("number") if issue.get("pull_request") else None
        )
        issue_number = None if pr_number else issue.get("number")
        destination = (
            {"type": "github_pr_comment", "repo": repo, "pr_number": pr_number}
            if pr_number
            else {"type": "github_issue_comment", "repo": repo, "issue_number": issue_number}
        )
        context = self._context(payload, f"{event}.{action}", repo, pr_number, issue_number)
        context["user_id"] = login or None
        context["output_destinations"] = [destination]
        return Trigger(True, "mention", message=body.strip(), context=context)

    @staticmethod
    def _context(
        payload: dict[str, Any], event_type: str, repo: Any, pr_number: Any, issue_number: Any
    ) -> dict[str, Any]:
        return {
            "metadata": {
                "trigger": "github",
                "github": {
                    "repo": repo,
                    "pr_number": pr_number,
                    "issue_number": issue_number,
                    "event_type": event_type,
                },
            },
        }
