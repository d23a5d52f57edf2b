"""The dashboard in a real browser: headless Debian Chromium driven by Playwright over
real HTTP (the app served by `wsgiref` in a thread). It signs in, sees both charts
drawn (canvas with size, and pixels in the series' colours), sees the overview refresh
itself without a reload, requeues a dead letter and sees it leave the list — with no
console error (a CSP violation would be one) — and that the overview fits a phone.

Skips only where no Chromium is installed (`.ci/run` installs Debian's `chromium`);
Playwright never downloads a browser here: it is pointed at the system binary.
"""

from __future__ import annotations

import os
import shutil
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from psycopg.types.json import Jsonb

from orchestrator.dashboard import throughput
from orchestrator.queues import dead_key, queue_key
from orchestrator.settings import Settings
from tests.dashboard_support import seed_dead_letter

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed: apt-get install chromium"),
]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(settings: Settings, services: Any) -> Iterator[str]:
    from web.app import create_app

    server = make_server(
        "127.0.0.1",
        0,
        create_app(settings, services),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield launched
        launched.close()


def _seed(services: Any, namespace: str, db: Any) -> tuple[str, int]:
    """A dead letter with a secret in its arguments, an hour of job counts and some
    webhook events. Returns (dead letter message id, processed jobs in the hour)."""
    message_id, _ = seed_dead_letter(
        services.redis,
        namespace,
        queue="provisioning",
        actor="provision_team",
        args=("acme",),
        kwargs={"api_key": "sk-live-do-not-show"},
    )
    now_minute = int(time.time()) // 60
    counts = {}
    for i in range(30):
        counts[(now_minute - i, "webhooks", "ok")] = 40 + (i * 7) % 25
        counts[(now_minute - i, "agents", "failed")] = i % 4
    throughput.record(services.redis, namespace, counts)
    for i in range(40):
        db.execute(
            "INSERT INTO orchestrator_webhook_events (id, source, delivery_key, status, payload,"
            " received_at) VALUES (gen_random_uuid(), %s, %s, %s, %s,"
            " now() - make_interval(mins => %s))",
            ("github" if i % 2 else "slack", f"d-{i}", "dispatched", Jsonb({}), i % 50),
        )
    processed = sum(n for (_, _, outcome), n in counts.items() if outcome == "ok")
    return message_id, processed


def _pixels_of(page: Any, selector: str, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the chart's canvas are (close to) `rgb`: the series' stroke
    really was drawn, not only the axes."""
    return int(
        page.evaluate(
            """([selector, rgb]) => {
                const canvas = document.querySelector(selector + ' canvas');
                const ctx = canvas.getContext('2d');
                const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
                let n = 0;
                for (let i = 0; i < pixels.length; i += 4) {
                    if (pixels[i + 3] > 200 && Math.abs(pixels[i] - rgb[0]) < 30
                        && Math.abs(pixels[i + 1] - rgb[1]) < 30
                        && Math.abs(pixels[i + 2] - rgb[2]) < 30) n++;
                }
                return n;
            }""",
            [selector, list(rgb)],
        )
    )


def test_sign_in_see_charts_refresh_and_requeue_a_dead_letter(
    served: str, browser: Any, services: Any, namespace: str, db: Any, admin_token: str
) -> None:
    message_id, processed = _seed(services, namespace, db)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(served + "/dashboard")
    assert "/dashboard/login" in page.url  # no session: the login form
    page.fill("#token", admin_token)
    page.click("button[type=submit]")
    page.wait_for_url(served + "/dashboard")

    for chart in ("#chart-jobs", "#chart-events"):
        canvas = page.wait_for_selector(chart + " canvas", state="visible")
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
    assert _pixels_of(page, "#chart-jobs", (0x2E, 0x7D, 0x32)) > 50  # processed
    assert _pixels_of(page, "#chart-jobs", (0xC6, 0x28, 0x28)) > 20  # failed attempts
    assert _pixels_of(page, "#chart-events", (0x24, 0x29, 0x2F)) > 20  # github
    assert page.text_content('[data-k="jobs.ok.total"]') == str(processed)

    # The page refreshes itself: new work shows up without a reload.
    throughput.record(services.redis, namespace, {(int(time.time()) // 60, "webhooks", "ok"): 500})
    page.wait_for_function(
        "total => document.querySelector('[data-k=\"jobs.ok.total\"]').textContent === total",
        arg=str(processed + 500),
        timeout=15_000,
    )

    page.click("nav >> text=Dead letters")
    page.wait_for_url(served + "/dashboard/dead")
    card = page.locator(f'[data-message-id="{message_id}"]')
    assert card.count() == 1
    assert "sk-live-do-not-show" not in page.content()
    card.locator("button.requeue").click()
    page.wait_for_url("**/dashboard/dead?notice=requeued*")
    assert "Requeued 1 dead letter" in page.text_content("main")
    assert page.locator(f'[data-message-id="{message_id}"]').count() == 0
    assert services.redis.zcard(dead_key(namespace, "provisioning")) == 0
    assert services.redis.llen(queue_key(namespace, "provisioning")) == 1

    # On a phone's width: wide tables scroll inside their panels, the page itself never
    # sideways, and the charts shrink to fit (the page redraws them on resize).
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(served + "/dashboard")
    page.wait_for_selector("#chart-jobs canvas")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#chart-jobs canvas").bounding_box()
    assert box is not None and 200 <= box["width"] <= 390
    assert problems == []
    context.close()
