"""The CronJob a schedule row should have in the cluster, as plain data (SPEC §8).

`desired_cronjob` is pure: the same row and template give the same manifest, byte for
byte, and the manifest carries the hash of its own content in the `spec-hash`
annotation. The reconciler compares that annotation on the live object with the hash of
the manifest it would write now, so a changed row (or a new pipeline image) shows up as
drift without reading or diffing whole objects; provisioning builds its CronJob with
the same function, so the reconciler never sees a provisioned CronJob as drifted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.k8s.naming import (
    SCHEDULE_TYPE_KEY,
    cronjob_name,
    team_annotations,
    team_labels,
)
from orchestrator.settings import Settings

SPEC_HASH_KEY = "incidentfox.io/spec-hash"
SCHEDULE_ID_KEY = "incidentfox.io/schedule-id"
CONTAINER_NAME = "ai-pipeline"


class ScheduleLike(Protocol):
    """What a CronJob is built from: a row, an API model or provisioning's request."""

    @property
    def org_id(self) -> str: ...
    @property
    def team_node_id(self) -> str: ...
    @property
    def schedule_type(self) -> str: ...
    @property
    def cron_expression(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def enabled(self) -> bool: ...


@dataclass(frozen=True)
class CronJobTemplate:
    """Everything about the CronJobs that is the deployment's, not the row's.

    `starting_deadline_seconds`: a run missed by more than this (scheduler down, cluster
    busy) is skipped rather than started late. History limits keep a few Jobs to read
    logs from; `job_ttl_seconds` removes finished Jobs after a day.
    """

    namespace: str
    image: str
    config_service_url: str
    starting_deadline_seconds: int = 300
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 3
    job_ttl_seconds: int = 86_400
    backoff_limit: int = 2
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    memory_limit: str = "2Gi"


def template_from_settings(settings: Settings) -> CronJobTemplate:
    """The deployment's template: the scheduler and provisioning must build the same
    CronJob, or the reconciler would see every provisioned one as drifted."""
    return CronJobTemplate(
        namespace=settings.k8s_namespace,
        image=settings.ai_pipeline_image or "",
        config_service_url=settings.config_service_url or "",
    )


def spec_hash(manifest: dict[str, Any]) -> str:
    """Hash of a manifest's content, ignoring its own hash annotation."""
    metadata = dict(manifest.get("metadata") or {})
    annotations = {
        k: v for k, v in (metadata.get("annotations") or {}).items() if k != SPEC_HASH_KEY
    }
    metadata["annotations"] = annotations
    content = {**manifest, "metadata": metadata}
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def cronjob_labels(schedule: ScheduleLike) -> dict[str, str]:
    return {
        **team_labels(schedule.org_id, schedule.team_node_id),
        SCHEDULE_TYPE_KEY: schedule.schedule_type,
    }


def desired_cronjob(
    schedule: ScheduleLike, template: CronJobTemplate, *, schedule_id: str | None = None
) -> dict[str, Any]:
    """The `batch/v1` CronJob for `schedule`, with its `spec-hash` annotation."""
    labels = cronjob_labels(schedule)
    annotations = team_annotations(schedule.org_id, schedule.team_node_id)
    if schedule_id is not None:
        annotations[SCHEDULE_ID_KEY] = schedule_id
    env = [
        {"name": "ORG_ID", "value": schedule.org_id},
        {"name": "TEAM_NODE_ID", "value": schedule.team_node_id},
        {"name": "CONFIG_SERVICE_URL", "value": template.config_service_url},
        {"name": "SCHEDULE_TYPE", "value": schedule.schedule_type},
    ]
    container = {
        "name": CONTAINER_NAME,
        "image": template.image,
        "command": [
            "python",
            "-m",
            "ai_learning_pipeline",
            "run-scheduled",
            "--team-id",
            schedule.team_node_id,
            "--org-id",
            schedule.org_id,
        ],
        "env": env,
        "resources": {
            "requests": {"cpu": template.cpu_request, "memory": template.memory_request},
            "limits": {"memory": template.memory_limit},
        },
    }
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(schedule.org_id, schedule.team_node_id, schedule.schedule_type),
            "namespace": template.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "schedule": schedule.cron_expression,
            "timeZone": schedule.timezone,
            "suspend": not schedule.enabled,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": template.starting_deadline_seconds,
            "successfulJobsHistoryLimit": template.successful_jobs_history_limit,
            "failedJobsHistoryLimit": template.failed_jobs_history_limit,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "ttlSecondsAfterFinished": template.job_ttl_seconds,
                    "backoffLimit": template.backoff_limit,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"restartPolicy": "Never", "containers": [container]},
                    },
                },
            },
        },
    }
    annotations[SPEC_HASH_KEY] = spec_hash(manifest)
    return manifest
