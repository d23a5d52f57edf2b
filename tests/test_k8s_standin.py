"""The Kubernetes API stand-in speaks the API server's REST protocol to the official
37.x client, unchanged: complete objects the typed client deserializes, 201/409/404/
422/410 with `Status` bodies, label selectors, `limit`/`continue` pages that survive
writes between them, server-side apply (fieldManager required, create-if-missing,
no-op keeps the resourceVersion), merge-patch edits, injected and per-object faults.

Every manifest sent is checked with kubernetes-validate (1.31, strict) first, so the
inputs are real manifests; the deliberately broken ones are checked to be rejected by
the schema too where a schema can tell."""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from orchestrator.devstack.kubernetes import KubernetesStandIn

NS = "incidentfox"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
MANAGER = "incidentfox-orchestrator"


def valid(manifest: dict[str, Any]) -> dict[str, Any]:
    # The schema types a name as a string and nothing more: manifests that differ
    # only in their name are validated once (a validation costs ~30 ms).
    unnamed = {**manifest, "metadata": {**manifest["metadata"], "name": "x"}}
    _validate(json.dumps(unnamed, sort_keys=True))
    return manifest


@functools.cache
def _validate(manifest: str) -> None:
    kubernetes_validate.validate(json.loads(manifest), "1.31", strict=True)


def schema_rejects(manifest: dict[str, Any]) -> None:
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, "1.31", strict=True)


def cronjob(
    name: str, labels: dict[str, str] | None = None, schedule: str = "*/5 * * * *"
) -> dict[str, Any]:
    return valid(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": name, "labels": labels or {"app": "pipeline"}},
            "spec": {
                "schedule": schedule,
                "timeZone": "UTC",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {
                                        "name": "pipeline",
                                        "image": "incidentfox/ai-pipeline:1.0",
                                        "env": [{"name": "ORG_ID", "value": "acme"}],
                                    }
                                ],
                            }
                        }
                    }
                },
            },
        }
    )


def deployment(name: str, image: str = "incidentfox/agent:1.0") -> dict[str, Any]:
    return valid(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {"name": "agent", "image": image, "ports": [{"containerPort": 8080}]}
                        ]
                    },
                },
            },
        }
    )


def service(name: str, selector: str) -> dict[str, Any]:
    return valid(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": {"app": selector}},
            "spec": {
                "selector": {"app": selector},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        }
    )


def status_of(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["code"] == error.status
    return body


@pytest.fixture
def kube() -> Iterator[KubernetesStandIn]:
    standin = KubernetesStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def api(kube: KubernetesStandIn, tmp_path: Path) -> Iterator[client.ApiClient]:
    path = tmp_path / "kubeconfig"
    path.write_text(kube.kubeconfig(NS))
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    with client.ApiClient(cfg) as api_client:
        yield api_client


@pytest.fixture
def batch(api: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api)


@dataclass
class Answer:
    data: Any
    status_code: int
    headers: Any


def apply(batch: client.BatchV1Api, manifest: dict[str, Any], **kwargs: Any) -> Answer:
    """Server-side apply of a CronJob, with the status code (201 created, 200 updated)."""
    # The 37.x `_with_http_info` methods answer (data, status, headers).
    data, status, headers = batch.patch_namespaced_cron_job_with_http_info(
        manifest["metadata"]["name"], NS, manifest, _content_type=APPLY, **kwargs
    )
    return Answer(data, status, headers)


# -- create, read ---------------------------------------------------------------------
def test_create_answers_a_complete_object_the_typed_client_reads(
    batch: client.BatchV1Api,
) -> None:
    created = batch.create_namespaced_cron_job(NS, cronjob("nightly"))
    assert isinstance(created, client.V1CronJob)
    meta = created.metadata
    assert uuid.UUID(meta.uid).version == 4
    assert meta.resource_version.isdigit()
    assert isinstance(meta.creation_timestamp, datetime) and meta.creation_timestamp.tzinfo
    assert (meta.name, meta.namespace, meta.generation) == ("nightly", NS, 1)
    assert meta.managed_fields[0].operation == "Update"
    # Defaulted like a real server, and a status object.
    assert created.spec.suspend is False and created.spec.successful_jobs_history_limit == 3
    container = created.spec.job_template.spec.template.spec.containers[0]
    assert container.image_pull_policy == "IfNotPresent"
    assert created.status is not None

    read = batch.read_namespaced_cron_job("nightly", NS)
    assert read.to_dict() == created.to_dict()


def test_create_with_a_typed_model_body(api: client.ApiClient) -> None:
    body = client.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=client.V1ObjectMeta(name="typed", labels={"app": "typed"}),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "typed"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "typed"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="a", image="a:1")]),
            ),
        ),
    )
    valid(api.sanitize_for_serialization(body))
    created = client.AppsV1Api(api).create_namespaced_deployment(NS, body)
    assert created.metadata.uid and created.spec.replicas == 1
    assert created.spec.strategy.type == "RollingUpdate"


def test_create_twice_is_409_already_exists(batch: client.BatchV1Api) -> None:
    batch.create_namespaced_cron_job(NS, cronjob("twice"))
    with pytest.raises(ApiException) as info:
        batch.create_namespaced_cron_job(NS, cronjob("twice"))
    body = status_of(info.value)
    assert (info.value.status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'cronjobs.batch "twice" already exists'


def test_read_of_a_missing_object_is_the_servers_404(batch: client.BatchV1Api) -> None:
    with pytest.raises(ApiException) as info:
        batch.read_namespaced_cron_job("nope", NS)
    assert info.value.status == 404
    assert status_of(info.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'cronjobs.batch "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "batch", "kind": "cronjobs"},
        "code": 404,
    }


def test_invalid_objects_are_422_invalid(api: client.ApiClient, batch: client.BatchV1Api) -> None:
    def refused(call: Any, *args: Any) -> dict[str, Any]:
        with pytest.raises(ApiException) as info:
            call(*args)
        assert info.value.status == 422
        body = status_of(info.value)
        assert body["reason"] == "Invalid"
        return body

    body = refused(batch.create_namespaced_cron_job, NS, cronjob("Bad_Name"))
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert 'CronJob.batch "Bad_Name" is invalid' in body["message"]

    body = refused(batch.create_namespaced_cron_job, NS, cronjob("x" * 53))
    assert "must be no more than 52 characters" in body["message"]

    bad_label = cronjob("bad-label", labels={"team": "-starts-with-dash"})
    assert "metadata.labels" in refused(batch.create_namespaced_cron_job, NS, bad_label)["message"]
    long_label = cronjob("long-label", labels={"team": "a" * 64})
    assert "no more than 63" in refused(batch.create_namespaced_cron_job, NS, long_label)["message"]

    bad_schedule = cronjob("bad-schedule", schedule="61 * * * *")
    assert "spec.schedule" in refused(batch.create_namespaced_cron_job, NS, bad_schedule)["message"]

    # The typed client refuses to POST a body its model rejects; an apply sends dicts
    # as they are.
    no_schedule = cronjob("no-schedule")
    del no_schedule["spec"]["schedule"]
    schema_rejects(no_schedule)
    with pytest.raises(ValueError, match="schedule"):
        batch.create_namespaced_cron_job(NS, no_schedule)
    applying = lambda manifest: apply(batch, manifest, field_manager=MANAGER)  # noqa: E731
    assert "spec.schedule: Required value" in refused(applying, no_schedule)["message"]

    # A Job's pods may not restart Always (the default when restartPolicy is unset).
    always = cronjob("always")
    del always["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"]
    valid(always)
    assert "restartPolicy" in refused(batch.create_namespaced_cron_job, NS, always)["message"]

    mismatched = deployment("mismatch")
    mismatched["spec"]["selector"]["matchLabels"] = {"app": "other"}
    valid(mismatched)
    body = refused(client.AppsV1Api(api).create_namespaced_deployment, NS, mismatched)
    assert "`selector` does not match template `labels`" in body["message"]

    # Services need an RFC 1035 label: a letter first.
    body = refused(client.CoreV1Api(api).create_namespaced_service, NS, service("1agent", "a"))
    assert "DNS-1035" in body["message"]
    assert batch.list_namespaced_cron_job(NS).items == []


def test_wrong_json_types_are_400_like_the_servers_decoder(batch: client.BatchV1Api) -> None:
    manifest = cronjob("typed-env")
    env = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    env[0]["value"] = 1
    schema_rejects(manifest)
    with pytest.raises(ApiException) as info:
        apply(batch, manifest, field_manager=MANAGER)
    assert info.value.status == 400
    assert "cannot unmarshal number into Go struct field EnvVar" in status_of(info.value)["message"]


def test_unknown_fields_are_dropped_with_a_warning_refused_when_strict_or_applied(
    kube: KubernetesStandIn, batch: client.BatchV1Api
) -> None:
    manifest = cronjob("unknown-field")
    manifest["spec"]["scheduleTypo"] = "x"
    schema_rejects(manifest)
    with pytest.raises(ApiException) as info:
        apply(batch, manifest, field_manager=MANAGER)
    assert info.value.status == 400
    assert ".spec.scheduleTypo: field not declared in schema" in status_of(info.value)["message"]

    # A POST from outside the typed client (kubectl, another process).
    url = f"{kube.url}/apis/batch/v1/namespaces/{NS}/cronjobs"
    strict = httpx.post(url, params={"fieldValidation": "Strict"}, json=manifest)
    assert strict.status_code == 400 and "scheduleTypo" in strict.json()["message"]
    created = httpx.post(url, json=manifest)
    assert created.status_code == 201
    assert created.headers["Warning"] == '299 - "unknown field \\"spec.scheduleTypo\\""'
    assert "scheduleTypo" not in created.json()["spec"]
    patch = {"spec": {"suspendTypo": True}}
    _, _, headers = batch.patch_namespaced_cron_job_with_http_info(
        "unknown-field", NS, patch, _content_type=MERGE
    )
    assert "suspendTypo" in headers["Warning"]
    stored = kube.get_object("CronJob", NS, "unknown-field")
    assert stored is not None and not {"scheduleTypo", "suspendTypo"} & set(stored["spec"])


# -- list -----------------------------------------------------------------------------
def test_list_by_label_selector(batch: client.BatchV1Api) -> None:
    for name, labels in {
        "a-gold": {"team": "a", "tier": "gold"},
        "b-gold": {"team": "b", "tier": "gold"},
        "c-silver": {"team": "c", "tier": "silver"},
        "untiered": {"team": "a"},
        "no-team": {"app": "x"},
    }.items():
        batch.create_namespaced_cron_job(NS, cronjob(name, labels))

    def names(selector: str) -> list[str]:
        items = batch.list_namespaced_cron_job(NS, label_selector=selector).items
        return [item.metadata.name for item in items]

    assert names("team=a") == names("team==a") == ["a-gold", "untiered"]
    assert names("team!=a") == ["b-gold", "c-silver", "no-team"]  # a missing key matches
    assert names("team in (a, b)") == ["a-gold", "b-gold", "untiered"]
    assert names("team notin (a,b)") == ["c-silver", "no-team"]
    assert names("tier") == ["a-gold", "b-gold", "c-silver"]
    assert names("!tier") == ["no-team", "untiered"]
    assert names("team in (a,b),tier=gold") == ["a-gold", "b-gold"]
    assert names("team=z") == []
    with pytest.raises(ApiException) as info:
        names("team in ()")
    assert info.value.status == 400 and status_of(info.value)["reason"] == "BadRequest"


def test_pages_come_in_name_order_each_object_once(
    batch: client.BatchV1Api, kube: KubernetesStandIn
) -> None:
    expected = [f"job-{i:02d}" for i in range(25)]
    for name in reversed(expected):  # stored out of order
        kube.put_object("CronJob", NS, cronjob(name))
    kube.put_object("CronJob", "other-namespace", cronjob("job-05"))

    seen: list[str] = []
    pages = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"limit": 10}
        if token:
            kwargs["_continue"] = token
        page = batch.list_namespaced_cron_job(NS, **kwargs)
        pages.append(page)
        seen += [item.metadata.name for item in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == expected
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert [p.metadata.remaining_item_count for p in pages] == [15, 5, None]

    # Raw, as a reconciler reads it: items carry no kind/apiVersion, as on a real server.
    raw = json.loads(batch.list_namespaced_cron_job(NS, limit=2, _preload_content=False).data)
    assert (raw["kind"], raw["apiVersion"]) == ("CronJobList", "batch/v1")
    assert "kind" not in raw["items"][0] and raw["items"][0]["metadata"]["name"] == "job-00"


def test_a_continue_token_survives_writes_between_pages(
    batch: client.BatchV1Api, kube: KubernetesStandIn
) -> None:
    for i in range(25):
        kube.put_object("CronJob", NS, cronjob(f"job-{i:02d}"))
    first = batch.list_namespaced_cron_job(NS, limit=10)
    assert first.items[-1].metadata.name == "job-09"
    batch.delete_namespaced_cron_job("job-03", NS)  # already returned
    batch.delete_namespaced_cron_job("job-12", NS)  # not yet returned
    batch.create_namespaced_cron_job(NS, cronjob("job-10a"))  # after the cursor
    rest: list[str] = []
    token = first.metadata._continue
    while token:
        page = batch.list_namespaced_cron_job(NS, limit=10, _continue=token)
        rest += [item.metadata.name for item in page.items]
        token = page.metadata._continue
    expected = [f"job-{i:02d}" for i in range(10, 25) if i != 12]
    expected.insert(1, "job-10a")
    assert rest == expected


def test_bad_and_expired_continue_tokens(batch: client.BatchV1Api, kube: KubernetesStandIn) -> None:
    for i in range(3):
        kube.put_object("CronJob", NS, cronjob(f"job-{i}"))
    with pytest.raises(ApiException) as info:
        batch.list_namespaced_cron_job(NS, limit=1, _continue="not-a-token")
    assert info.value.status == 400
    token = batch.list_namespaced_cron_job(NS, limit=1).metadata._continue
    kube.expire_continue_tokens()
    with pytest.raises(ApiException) as info:
        batch.list_namespaced_cron_job(NS, limit=1, _continue=token)
    assert info.value.status == 410 and status_of(info.value)["reason"] == "Expired"
    assert len(batch.list_namespaced_cron_job(NS).items) == 3


# -- server-side apply, patches -------------------------------------------------------
def test_apply_needs_a_field_manager(batch: client.BatchV1Api) -> None:
    with pytest.raises(ApiException) as info:
        apply(batch, cronjob("ssa"))
    assert info.value.status == 422
    assert (
        "fieldManager: Required value: is required for apply patch"
        in (status_of(info.value)["message"])
    )
    with pytest.raises(ApiException) as missing:
        batch.read_namespaced_cron_job("ssa", NS)
    assert missing.value.status == 404


def test_apply_creates_updates_and_a_no_op_keeps_the_resource_version(
    batch: client.BatchV1Api, kube: KubernetesStandIn
) -> None:
    created = apply(batch, cronjob("ssa"), field_manager=MANAGER, force=True)
    assert created.status_code == 201
    meta = created.data.metadata
    assert [(m.manager, m.operation) for m in meta.managed_fields] == [(MANAGER, "Apply")]

    again = apply(batch, cronjob("ssa"), field_manager=MANAGER, force=True)
    assert again.status_code == 200
    assert again.data.metadata.resource_version == meta.resource_version
    assert again.data.metadata.generation == 1

    changed = apply(batch, cronjob("ssa", schedule="0 * * * *"), field_manager=MANAGER, force=True)
    assert changed.status_code == 200 and changed.data.spec.schedule == "0 * * * *"
    assert int(changed.data.metadata.resource_version) > int(meta.resource_version)
    assert changed.data.metadata.generation == 2
    assert kube.writes[("PATCH", "CronJob")] == 3


def test_apply_takes_back_a_hand_edit_and_drops_labels_it_stopped_applying(
    batch: client.BatchV1Api,
) -> None:
    apply(batch, cronjob("edited", {"app": "pipeline", "old": "x"}), field_manager=MANAGER)
    before = batch.read_namespaced_cron_job("edited", NS).metadata

    # `kubectl edit`: a merge patch by another manager.
    edited = batch.patch_namespaced_cron_job(
        "edited",
        NS,
        {"spec": {"schedule": "1 1 * * *"}, "metadata": {"labels": {"owner": "ops"}}},
        _content_type=MERGE,
        field_manager="kubectl-edit",
    )
    assert edited.spec.schedule == "1 1 * * *"
    assert int(edited.metadata.resource_version) > int(before.resource_version)
    assert edited.metadata.generation == before.generation + 1
    assert {m.manager for m in edited.metadata.managed_fields} == {MANAGER, "kubectl-edit"}

    # Without force the applier conflicts with the editor on the field both set...
    with pytest.raises(ApiException) as info:
        apply(batch, cronjob("edited"), field_manager=MANAGER)
    assert info.value.status == 409
    assert ".spec.schedule" in status_of(info.value)["message"]
    # ...with force it takes the field back.
    taken = apply(batch, cronjob("edited"), field_manager=MANAGER, force=True).data
    assert taken.spec.schedule == "*/5 * * * *"
    assert taken.metadata.generation == before.generation + 2
    assert taken.metadata.labels == {"app": "pipeline", "owner": "ops"}


def test_merge_patch_of_nothing_new_is_a_no_op(batch: client.BatchV1Api) -> None:
    created = batch.create_namespaced_cron_job(NS, cronjob("same"))
    patched = batch.patch_namespaced_cron_job(
        "same", NS, {"spec": {"schedule": "*/5 * * * *"}}, _content_type=MERGE
    )
    assert patched.metadata.resource_version == created.metadata.resource_version
    with pytest.raises(ApiException) as info:
        batch.patch_namespaced_cron_job("missing", NS, {"spec": {}}, _content_type=MERGE)
    assert info.value.status == 404


def test_a_dict_body_without_content_type_is_a_strategic_merge_patch(
    kube: KubernetesStandIn, batch: client.BatchV1Api
) -> None:
    batch.create_namespaced_cron_job(NS, cronjob("smp"))
    patched = batch.patch_namespaced_cron_job("smp", NS, {"spec": {"suspend": True}})
    assert patched.spec.suspend is True
    strategic = [c for c in kube.calls if c.method == "PATCH"]
    assert strategic[-1].headers["content-type"] == "application/strategic-merge-patch+json"


def test_delete_answers_a_status_then_404(batch: client.BatchV1Api) -> None:
    created = batch.create_namespaced_cron_job(NS, cronjob("gone"))
    answer = batch.delete_namespaced_cron_job(
        "gone", NS, body=client.V1DeleteOptions(propagation_policy="Background")
    )
    assert answer["status"] == "Success"  # the 37.x client returns the Status as a dict
    assert answer["details"] == {
        "name": "gone",
        "group": "batch",
        "kind": "cronjobs",
        "uid": created.metadata.uid,
    }
    for call in (batch.delete_namespaced_cron_job, batch.read_namespaced_cron_job):
        with pytest.raises(ApiException) as info:
            call("gone", NS)
        assert info.value.status == 404


# -- other kinds ----------------------------------------------------------------------
def test_deployments_and_services_through_their_apis(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    created = apps.create_namespaced_deployment(NS, deployment("agent"))
    assert created.spec.template.spec.restart_policy == "Always"
    applied = apps.patch_namespaced_deployment(
        "agent", NS, deployment("agent", image="incidentfox/agent:2.0"),
        field_manager=MANAGER, force=True, _content_type=APPLY,
    )  # fmt: skip
    assert applied.spec.template.spec.containers[0].image == "incidentfox/agent:2.0"
    assert applied.metadata.generation == 2
    listed = apps.list_namespaced_deployment(NS, label_selector="app=agent").items
    assert [d.metadata.name for d in listed] == ["agent"]

    svc = core.patch_namespaced_service(
        "agent", NS, service("agent", "agent"), field_manager=MANAGER, force=True,
        _content_type=APPLY,
    )  # fmt: skip
    assert re.fullmatch(r"10\.96\.\d+\.\d+", svc.spec.cluster_ip)
    assert (svc.spec.type, svc.spec.ports[0].protocol) == ("ClusterIP", "TCP")
    again = core.patch_namespaced_service(
        "agent", NS, service("agent", "agent"), field_manager=MANAGER, force=True,
        _content_type=APPLY,
    )  # fmt: skip
    assert again.spec.cluster_ip == svc.spec.cluster_ip
    assert again.metadata.resource_version == svc.metadata.resource_version
    assert [s.metadata.name for s in core.list_namespaced_service(NS).items] == ["agent"]

    deleted = core.delete_namespaced_service("agent", NS)
    assert isinstance(deleted, client.V1Service) and deleted.metadata.name == "agent"
    assert apps.delete_namespaced_deployment("agent", NS)["status"] == "Success"
    assert core.list_namespaced_service(NS).items == []
    assert apps.list_namespaced_deployment(NS).items == []


def test_discovery(api: client.ApiClient) -> None:
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert groups == {"apps", "batch"}
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    kinds = {r.kind for r in client.BatchV1Api(api).get_api_resources().resources}
    assert kinds == {"CronJob"}
    assert {r.name for r in client.CoreV1Api(api).get_api_resources().resources} == {"services"}
    assert client.VersionApi(api).get_code().minor == "31"


# -- faults ---------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "reason"), [(429, "TooManyRequests"), (500, "InternalError")])
def test_injected_faults_are_status_bodies_then_success(
    kube: KubernetesStandIn, batch: client.BatchV1Api, status: int, reason: str
) -> None:
    kube.set_faults(status=status, times=1)
    with pytest.raises(ApiException) as info:
        batch.create_namespaced_cron_job(NS, cronjob("flaky"))
    assert info.value.status == status and status_of(info.value)["reason"] == reason
    if status == 429:
        assert info.value.headers["Retry-After"] == "1"
    assert batch.create_namespaced_cron_job(NS, cronjob("flaky")).metadata.name == "flaky"
    assert kube.writes[("POST", "CronJob")] == 2  # the refused attempt counts as a write


def test_a_read_throttled_with_retry_after_is_retried_by_the_client(
    kube: KubernetesStandIn, batch: client.BatchV1Api
) -> None:
    # urllib3 (under the client) honours Retry-After on idempotent requests by itself.
    kube.set_faults(status=429, times=1)
    assert batch.list_namespaced_cron_job(NS).items == []
    assert sum(1 for c in kube.calls if c.method == "GET") == 2


def test_an_object_fault_hits_only_that_object(
    kube: KubernetesStandIn, batch: client.BatchV1Api
) -> None:
    kube.fail_object("broken", 500, times=2)
    assert batch.create_namespaced_cron_job(NS, cronjob("fine")).metadata.name == "fine"
    for call in (
        lambda: batch.create_namespaced_cron_job(NS, cronjob("broken")),
        lambda: apply(batch, cronjob("broken"), field_manager=MANAGER),
    ):
        with pytest.raises(ApiException) as info:
            call()
        assert info.value.status == 500
    assert apply(batch, cronjob("broken"), field_manager=MANAGER).status_code == 201
    assert batch.read_namespaced_cron_job("fine", NS).metadata.name == "fine"

    # The same over HTTP, for a harness in another process.
    fault = {"name": "fine", "status": 403}
    assert httpx.post(f"{kube.url}/_standin/object-faults", json=fault).status_code == 200
    with pytest.raises(ApiException) as info:
        batch.read_namespaced_cron_job("fine", NS)
    assert info.value.status == 403 and "cannot get resource" in status_of(info.value)["message"]
    assert len(batch.list_namespaced_cron_job(NS).items) == 2  # lists name no object
    assert httpx.delete(f"{kube.url}/_standin/object-faults").status_code == 200
    assert batch.read_namespaced_cron_job("fine", NS).metadata.name == "fine"


# -- the Python side ------------------------------------------------------------------
def test_helpers_put_edit_delete_count_and_reset(
    kube: KubernetesStandIn, batch: client.BatchV1Api
) -> None:
    kube.put_object("CronJob", NS, cronjob("direct"), manager=MANAGER)
    stored = kube.get_object("CronJob", NS, "direct")
    assert stored is not None and stored["metadata"]["uid"]
    assert stored["metadata"]["managedFields"][0]["manager"] == MANAGER
    with pytest.raises(ValueError, match="Invalid"):
        kube.put_object("CronJob", NS, cronjob("Not_Valid"))

    # A converged apply of what was put is a no-op...
    version = stored["metadata"]["resourceVersion"]
    answer = apply(batch, cronjob("direct"), field_manager=MANAGER, force=True)
    assert answer.data.metadata.resource_version == version

    # ...until someone edits it behind our back.
    edited = kube.edit_object(
        "CronJob", NS, "direct", lambda o: o["spec"].update(schedule="7 7 * * *")
    )
    assert int(edited["metadata"]["resourceVersion"]) > int(version)
    assert edited["metadata"]["generation"] == 2
    assert batch.read_namespaced_cron_job("direct", NS).spec.schedule == "7 7 * * *"

    copies = kube.objects("CronJob", NS)
    copies[0]["spec"]["schedule"] = "changed in the copy only"
    assert kube.objects("CronJob")[0]["spec"]["schedule"] == "7 7 * * *"

    assert kube.delete_object("CronJob", NS, "direct") is True
    assert kube.delete_object("CronJob", NS, "direct") is False
    assert kube.get_object("CronJob", NS, "direct") is None
    assert dict(kube.writes) == {("PATCH", "CronJob"): 1}  # the direct changes are not

    kube.put_object("Service", NS, service("svc", "a"))
    kube.reset()
    assert kube.objects("Service") == [] and not kube.writes
