"""What a schedule may say and the CronJob it becomes: cron expressions and time zones
as the Kubernetes API server accepts them, and `desired_cronjob` producing a manifest
that passes schema validation, carries the SPEC §8 labels, and hashes its own content."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.k8s.naming import (
    CRONJOB_NAME_MAX,
    MANAGED_BY,
    MANAGED_BY_KEY,
    ORG_KEY,
    SCHEDULE_TYPE_KEY,
    TEAM_KEY,
    cronjob_name,
    label_value,
)
from orchestrator.schedules.cron import validate_cron
from orchestrator.schedules.cronjob import SPEC_HASH_KEY, CronJobTemplate, desired_cronjob
from orchestrator.schedules.model import ScheduleCreate, ScheduleUpdate, validate_timezone

K8S_VERSION = "1.31"
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
IDS = st.text(alphabet="ABCXYZabcxyz0189._-", min_size=1, max_size=64)
TEMPLATE = CronJobTemplate(
    namespace="incidentfox", image="pipeline:1.2.3", config_service_url="http://config:8080"
)


@dataclass(frozen=True)
class Row:
    org_id: str = "acme"
    team_node_id: str = "payments"
    schedule_type: str = "ingestion"
    cron_expression: str = "0 * * * *"
    timezone: str = "UTC"
    enabled: bool = True


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",
        "*/5 * * * *",
        "0 3 * * 1-5",
        "15,45 9-17/2 1 jan-mar MON",
        "0 0 ? * sun",
        "5/15 * 31 12 6",
        "@hourly",
        "@Daily",
    ],
)
def test_kubernetes_cron_syntax_is_accepted(expression: str) -> None:
    assert validate_cron(f"  {expression} ").strip() == validate_cron(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty"),
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "got 6"),
        ("61 * * * *", "minute field: 61 is out of range 0-59"),
        ("* 24 * * *", "hour field: 24"),
        ("* * 0 * *", "day-of-month field: 0"),
        ("* * * 13 *", "month field: 13"),
        ("* * * * 7", "day-of-week field: 7 is out of range 0-6"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("5-1 * * * *", "starts after it ends"),
        ("a * * * *", "'a' is not a number"),
        ("1,,2 * * * *", "is empty"),
        ("@every 5m", "unknown macro"),
        ("TZ=UTC 0 * * * *", "timezone"),
    ],
)
def test_invalid_cron_says_which_field_and_why(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_cron(expression)


def test_time_zones_are_iana_names_only() -> None:
    assert validate_timezone("Europe/Berlin") == "Europe/Berlin"
    for bad in (
        "Mars/Olympus",
        "Local",
        "localtime",
        "Factory",
        "posix/UTC",
        "/etc/localtime",
        "utc ",
    ):
        with pytest.raises(ValueError, match="IANA"):
            validate_timezone(bad)


def test_request_models_refuse_unknown_fields_and_empty_patches() -> None:
    created = ScheduleCreate.model_validate(
        {"schedule_type": "eval", "cron_expression": " 0 4 * * * "}
    )
    assert (created.cron_expression, created.timezone, created.enabled) == (
        "0 4 * * *",
        "UTC",
        True,
    )
    for bad in (
        {"schedule_type": "nightly", "cron_expression": "* * * * *"},
        {"schedule_type": "eval", "cron_expression": "* * * * *", "enabled": "yes"},
    ):
        with pytest.raises(ValueError):
            ScheduleCreate.model_validate(bad)
    with pytest.raises(ValueError, match="at least one"):
        ScheduleUpdate.model_validate({})
    with pytest.raises(ValueError, match="cannot be null"):
        ScheduleUpdate.model_validate({"enabled": None})
    with pytest.raises(ValueError):
        ScheduleUpdate.model_validate({"schedule_type": "eval"})  # the type is fixed


def test_desired_cronjob_is_a_valid_manifest_with_the_spec_8_contract() -> None:
    manifest = desired_cronjob(Row(timezone="Europe/Berlin"), TEMPLATE, schedule_id="s-1")
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    meta, spec = manifest["metadata"], manifest["spec"]
    assert meta["name"] == "pipeline-acme-payments-ingestion"
    assert meta["labels"] == {
        MANAGED_BY_KEY: MANAGED_BY,
        ORG_KEY: "acme",
        TEAM_KEY: "payments",
        SCHEDULE_TYPE_KEY: "ingestion",
    }
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["timeZone"] == "Europe/Berlin"
    assert spec["suspend"] is False
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["ttlSecondsAfterFinished"] > 0
    container = job["template"]["spec"]["containers"][0]
    assert container["image"] == "pipeline:1.2.3"
    assert container["command"] == [
        "python", "-m", "ai_learning_pipeline", "run-scheduled",
        "--team-id", "payments", "--org-id", "acme",
    ]  # fmt: skip
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ORG_ID"] == "acme" and env["TEAM_NODE_ID"] == "payments"
    assert env["CONFIG_SERVICE_URL"] == "http://config:8080"


def test_spec_hash_is_stable_and_follows_every_input() -> None:
    base = desired_cronjob(Row(), TEMPLATE)
    assert desired_cronjob(Row(), TEMPLATE) == base
    digest = base["metadata"]["annotations"][SPEC_HASH_KEY]
    variants = [
        desired_cronjob(replace(Row(), cron_expression="5 * * * *"), TEMPLATE),
        desired_cronjob(replace(Row(), timezone="Asia/Tokyo"), TEMPLATE),
        desired_cronjob(replace(Row(), enabled=False), TEMPLATE),
        desired_cronjob(Row(), replace(TEMPLATE, image="pipeline:1.2.4")),
    ]
    hashes = {v["metadata"]["annotations"][SPEC_HASH_KEY] for v in variants}
    assert digest not in hashes and len(hashes) == len(variants)
    assert variants[2]["spec"]["suspend"] is True


@settings(max_examples=150, deadline=None)
@given(org=IDS, team=IDS, kind=st.sampled_from(["ingestion", "gap_analysis", "eval"]))
def test_any_ids_make_a_valid_cronjob(org: str, team: str, kind: str) -> None:
    manifest = desired_cronjob(Row(org_id=org, team_node_id=team, schedule_type=kind), TEMPLATE)
    name = manifest["metadata"]["name"]
    assert DNS_LABEL.match(name) and len(name) <= CRONJOB_NAME_MAX
    for value in manifest["metadata"]["labels"].values():
        assert LABEL_VALUE.match(value) and len(value) <= 63
    # The exact ids survive in annotations whatever the labels had to drop.
    annotations = manifest["metadata"]["annotations"]
    assert (annotations[ORG_KEY], annotations[TEAM_KEY]) == (org, team)


def test_teams_differing_in_case_or_a_long_shared_prefix_never_share_a_cronjob() -> None:
    long_a, long_b = "x" * 63 + "a", "x" * 63 + "b"
    names = {
        cronjob_name("TeamA", "t", "eval"),
        cronjob_name("teama", "t", "eval"),
        cronjob_name(long_a, "t", "eval"),
        cronjob_name(long_b, "t", "eval"),
        cronjob_name("o", "t", "eval"),
        cronjob_name("o", "t", "gap_analysis"),
    }
    assert len(names) == 6
    assert label_value(long_a) != label_value(long_b)
    assert label_value("ok-id") == "ok-id"
    assert label_value("-edge-") != "-edge-" and LABEL_VALUE.match(label_value("-edge-"))
    kubernetes_validate.validate(
        desired_cronjob(Row(org_id=long_a, team_node_id="_" + long_b[:63]), TEMPLATE),
        K8S_VERSION,
        strict=True,
    )
