"""What masking configured secrets costs the webhook hot path: `store.stored_payload`
(the walk every accepted delivery takes before its insert) on real provider payloads,
with no configured secret and with a production-sized set (13 values: six webhook
secrets, two old ones while rotating, the Standard Webhooks keys without `whsec_`, the
internal and admin tokens, the secret key, a database password), none of them present
(the common case) and one quoted deep in the payload (the masking path).

    .venv/bin/python bench/secret_masking_bench.py [--repeat 7] [--number 300]

In-process, no server: prints microseconds per payload (best of `--repeat` runs of
`--number` calls) for each payload and case, and the overhead of the common case.
"""

from __future__ import annotations

import argparse
import json
import timeit
from pathlib import Path
from typing import Any

from orchestrator.events.store import stored_payload
from orchestrator.redaction import NO_SECRETS, SecretMasker
from orchestrator.webhooks.model import ParsedEvent

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "webhooks"
PAYLOADS = [
    "slack/app_mention.json",
    "pagerduty/incident.triggered.json",
    "github/issue_comment.created.json",
    "github/pull_request_review_comment.created.json",
]
SECRETS = [
    "8f742231b10e8888abcd99yyyzzz85a5",  # Slack signing secret (32 hex)
    "github-webhook-secret-value-2024",
    "old-github-webhook-secret-2023",
    "pagerduty-v3-signing-secret-xyz",
    "whsec_aW5jaWRlbnRpby1zZWNyZXQta2V5LTMyYnl0ZXM=",
    "aW5jaWRlbnRpby1zZWNyZXQta2V5LTMyYnl0ZXM=",
    "whsec_Z2VuZXJpYy1zZWNyZXQta2V5LTMyLWJ5dGVzISE=",
    "Z2VuZXJpYy1zZWNyZXQta2V5LTMyLWJ5dGVzISE=",
    "coralogix-bearer-token-0a9b8c7d",
    "internal-trigger-token-5e6f7a8b",
    "internal-admin-token-1c2d3e4f",
    "mQ_gs8yzWcrY79YDZIhSBjQrL6iBHzAujtRgFFKLiI8=",  # ORCHESTRATOR_SECRET_KEY
    "pg-password-for-orchestrator",
]


def strings_in(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(strings_in(v) for v in value.values())
    if isinstance(value, list):
        return sum(strings_in(v) for v in value)
    return 1 if isinstance(value, str) else 0


def quoted(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with one secret quoted in a nested string."""
    copy = json.loads(json.dumps(payload))
    copy.setdefault("extra", {})["note"] = f"the token is {SECRETS[10]}, oops"
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=300)
    args = parser.parse_args()
    masker = SecretMasker(SECRETS)

    def best(payload: dict[str, Any], secrets: SecretMasker) -> float:
        parsed = ParsedEvent("k", "t", payload, {}, raw_json=json.dumps(payload))
        runs = timeit.repeat(
            lambda: stored_payload(parsed, secrets), number=args.number, repeat=args.repeat
        )
        return min(runs) / args.number * 1e6

    header = ("payload", "bytes", "strings", "none", "13 set", "+", "hit")
    print("{:52} {:>6} {:>7} {:>8} {:>8} {:>6} {:>8}".format(*header))
    for name in PAYLOADS:
        payload = json.loads((FIXTURES / name).read_text())
        plain = best(payload, NO_SECRETS)
        configured = best(payload, masker)
        hit = best(quoted(payload), masker)
        print(
            f"{name:52} {len(json.dumps(payload)):6d} {strings_in(payload):7d}"
            f" {plain:7.1f}µ {configured:7.1f}µ {100 * (configured / plain - 1):5.0f}%"
            f" {hit:7.1f}µ"
        )


if __name__ == "__main__":
    main()
