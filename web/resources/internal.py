"""`POST /api/v1/internal/slack/trigger` (SPEC §4.4): another service of the product
asks for an agent run as if someone had mentioned the bot in Slack. The caller has shown
`ORCHESTRATOR_INTERNAL_TOKEN` before this runs (`web.auth.Authentication`: constant-time
compare; 401 otherwise; 404 while the variable is unset); the request is then handled
exactly like a verified `app_mention`."""

from __future__ import annotations

import time
import uuid

import falcon
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.webhooks.model import ParsedEvent
from web.bodies import json_body
from web.intake import EventIntake
from web.openapi import Operation

SLACK_ID = r"^[A-Z0-9]{1,32}$"
SLACK_TS = r"^[0-9]{1,12}(\.[0-9]{1,9})?$"


class SlackTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_id: str = Field(pattern=SLACK_ID)
    text: str = Field(min_length=1, max_length=40_000)
    user_id: str | None = Field(default=None, pattern=SLACK_ID)
    thread_ts: str | None = Field(default=None, pattern=SLACK_TS)
    event_ts: str | None = Field(default=None, pattern=SLACK_TS)


class Triggered(BaseModel):
    event_id: str
    duplicate: bool = False


class InternalSlackTrigger:
    openapi = [
        Operation(
            "POST",
            "Trigger an agent run as a Slack mention would",
            auth="internal",
            body=SlackTrigger,
            responses={202: Triggered, 200: Triggered},
            tags=("internal",),
        )
    ]

    def __init__(self, intake: EventIntake) -> None:
        self._intake = intake

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, SlackTrigger)
        event_ts = body.event_ts or f"{time.time():.6f}"
        payload = {
            "type": "event_callback",
            "event_id": f"internal-{uuid.uuid4().hex}",
            "event": {
                "type": "app_mention",
                "channel": body.channel_id,
                "text": body.text,
                "user": body.user_id,
                "ts": event_ts,
                "event_ts": event_ts,
                **({"thread_ts": body.thread_ts} if body.thread_ts else {}),
            },
            "orchestrator_trigger": "internal",
        }
        # The same event_ts in the same channel is the same request retried.
        key = (
            f"internal:{body.channel_id}:{body.event_ts}" if body.event_ts else payload["event_id"]
        )
        parsed = ParsedEvent(
            str(key), "app_mention", payload, {"slack_channel_id": body.channel_id}
        )
        event_id, duplicate = self._intake.accept("slack", parsed, {"x-internal": "slack-trigger"})
        resp.status = falcon.HTTP_200 if duplicate else falcon.HTTP_202
        resp.media = {"event_id": str(event_id), **({"duplicate": True} if duplicate else {})}
