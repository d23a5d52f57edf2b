"""Shared by the dashboard tests: sign in through the real login form, read CSRF tokens
from pages, and seed dead letters in the exact Redis layout Dramatiq's broker writes
(what `orchestrator/dead_letters.py` reads)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import dramatiq
from falcon import testing

from orchestrator.queues import dead_key

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
COOKIE = "orch_dashboard"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client: testing.TestClient, token: str) -> dict[str, str]:
    """Sign in like a browser: GET the form (nonce cookie + token), POST it. Returns the
    cookies to send afterwards."""
    page = client.simulate_get("/dashboard/login")
    assert page.status_code == 200, page.text
    nonce = page.cookies["orch_dashboard_login"].value
    result = client.simulate_post(
        "/dashboard/login",
        body=urlencode({"token": token, "csrf_token": csrf_of(page.text), "next": "/dashboard"}),
        headers=FORM,
        cookies={"orch_dashboard_login": nonce},
    )
    assert result.status_code == 303, result.text
    return {COOKIE: result.cookies[COOKIE].value}


def post_form(
    client: testing.TestClient, path: str, cookies: dict[str, str], **fields: Any
) -> testing.Result:
    return client.simulate_post(
        path, body=urlencode(fields, doseq=True), headers=FORM, cookies=cookies
    )


def seed_dead_letter(
    client: Any,
    namespace: str,
    *,
    queue: str = "provisioning",
    actor: str = "provision_team",
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    retries: int = 5,
    died_at: float | None = None,
) -> tuple[str, str]:
    """A dead letter as the broker leaves it: (message id, Redis id)."""
    redis_id = str(uuid.uuid4())
    message = dramatiq.Message(
        queue_name=queue,
        actor_name=actor,
        args=args,
        kwargs=kwargs or {},
        options={"redis_message_id": redis_id, "retries": retries},
    )
    died_ms = int((died_at if died_at is not None else time.time()) * 1000)
    client.zadd(dead_key(namespace, queue), {redis_id: died_ms})
    client.hset(dead_key(namespace, queue) + ".msgs", redis_id, message.encode())
    return message.message_id, redis_id
