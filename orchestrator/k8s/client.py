"""The one way the orchestrator reaches the Kubernetes API (PEERS.md "Kubernetes API").

A thin wrapper over the official client that fixes four things every caller would
otherwise get wrong on its own:

- **Where the cluster is**: an explicit `KUBECONFIG` wins (an operator who sets it
  means it, and a test run inside a pod must not reach the pod's own cluster), then
  the in-cluster service account, then `~/.kube/config`. No global configuration: each
  `KubernetesApi` owns its `ApiClient`.
- **Writes**: server-side apply with one field manager (`incidentfox-orchestrator`,
  `force=true`), so repeated applies converge and a manual edit of a field we own is
  taken back; `create` (POST) where an existing object must not be taken over.
- **Errors**: every `ApiException` and transport failure becomes a `KubernetesError`
  that says whether another attempt can help (429/5xx/410/connection → transient;
  401/403/404/409/422 → permanent) and names the cause operators see
  (`k8s_forbidden`, `k8s_invalid`, …).
- **Reads at scale**: lists come back as plain JSON dicts, page by page, parsed with
  orjson and without the client's model deserialization (which costs ~1 ms an
  object), so a reconcile of tens of thousands of CronJobs stays within seconds.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from orchestrator.errors import PermanentError, TransientError
from orchestrator.k8s.naming import MANAGED_BY

log = logging.getLogger("orchestrator.k8s")

FIELD_MANAGER = MANAGED_BY
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
LIST_PAGE_SIZE = 2000


class KubernetesError(PermanentError):
    """The API refused the request; another attempt cannot help."""

    reason = "k8s_error"

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message, reason=reason)
        self.status = status


class KubernetesForbidden(KubernetesError):
    reason = "k8s_forbidden"


class KubernetesNotFound(KubernetesError):
    reason = "k8s_not_found"


class KubernetesConflict(KubernetesError):
    reason = "k8s_conflict"


class KubernetesInvalid(KubernetesError):
    reason = "k8s_invalid"


class KubernetesUnavailable(TransientError):
    """429, 5xx, an expired list continuation, or no answer at all: try again later."""

    reason = "k8s_unavailable"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Kind:
    """One managed kind and the typed-API methods that serve it."""

    name: str
    api_version: str
    api: Callable[[k8s.ApiClient], Any]
    method_suffix: str


CRONJOB = Kind("CronJob", "batch/v1", k8s.BatchV1Api, "cron_job")
DEPLOYMENT = Kind("Deployment", "apps/v1", k8s.AppsV1Api, "deployment")
SERVICE = Kind("Service", "v1", k8s.CoreV1Api, "service")
KINDS = {kind.name: kind for kind in (CRONJOB, DEPLOYMENT, SERVICE)}


def load_configuration(kubeconfig: str | None) -> k8s.Configuration:
    """Explicit kubeconfig, else in-cluster, else the default kubeconfig."""
    cfg = k8s.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]
        return cfg
    try:
        k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except ConfigException:
        k8s_config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    return cfg


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
        return str(body.get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason or "no message")


def map_error(exc: BaseException, verb: str, kind: str, name: str | None) -> Exception:
    """The domain error for a failed call; `verb kind/name` says what was attempted."""
    what = f"{verb} {kind}" + (f"/{name}" if name else "")
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        detail = f"Kubernetes API answered {status} to {what}: {_message(exc)}"
        if status in (401, 403):
            return KubernetesForbidden(
                f"{detail} — the orchestrator's service account needs"
                " get/list/create/patch/delete on cronjobs, deployments and services"
                " in its namespace",
                status=status,
            )
        if status == 404:
            return KubernetesNotFound(detail, status=status)
        if status == 409:
            return KubernetesConflict(detail, status=status)
        if status in (400, 422):
            return KubernetesInvalid(detail, status=status)
        if status in (410, 429) or status >= 500 or status == 0:
            return KubernetesUnavailable(detail, status=status)
        return KubernetesError(detail, status=status)
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return KubernetesUnavailable(
            f"Kubernetes API unreachable during {what}: {type(exc).__name__}"
        )
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


class KubernetesApi:
    """Namespaced create/apply/delete/list of the managed kinds."""

    def __init__(
        self,
        configuration: k8s.Configuration,
        namespace: str,
        *,
        timeout_seconds: float = 10.0,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        # One retry of the connection at most: the reconciler and the run engine own
        # the retry policy, and urllib3's default of three hides an outage for seconds.
        configuration.retries = 1
        self._client = k8s.ApiClient(configuration)
        self.namespace = namespace
        self.field_manager = field_manager
        self._timeout = (min(timeout_seconds, 5.0), timeout_seconds)
        self._apis: dict[str, Any] = {}

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: str | None, namespace: str, *, timeout_seconds: float = 10.0
    ) -> KubernetesApi:
        return cls(load_configuration(kubeconfig), namespace, timeout_seconds=timeout_seconds)

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    # -- calls ----------------------------------------------------------------------
    def _method(self, kind: Kind, action: str) -> Callable[..., Any]:
        api = self._apis.get(kind.name)
        if api is None:
            api = self._apis[kind.name] = kind.api(self._client)
        return getattr(api, f"{action}_namespaced_{kind.method_suffix}")  # type: ignore[no-any-return]

    def _call(self, verb: str, kind: Kind, name: str | None, *args: Any, **kwargs: Any) -> Any:
        method = self._method(kind, verb)
        try:
            response = method(
                *args,
                namespace=self.namespace,
                _preload_content=False,
                _request_timeout=self._timeout,
                **kwargs,
            )
        except Exception as exc:
            raise map_error(exc, verb, kind.name, name) from exc
        data = response.data
        if not data:
            return None
        # A page of thousands of objects is hundreds of thousands of containers: with the
        # cyclic GC on, parsing it triggers collection after collection (2x the time).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return orjson.loads(data)
        finally:
            if gc_was_enabled:
                gc.enable()

    def create(self, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]:
        """POST: fails with `KubernetesConflict` if an object of that name exists —
        the way to create without taking over somebody else's object."""
        name = manifest["metadata"]["name"]
        result: dict[str, Any] = self._call("create", kind, name, body=manifest)
        return result

    def apply(self, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (create if missing, else converge the fields we own)."""
        name = manifest["metadata"]["name"]
        result: dict[str, Any] = self._call(
            "patch",
            kind,
            name,
            name,
            body=manifest,
            field_manager=self.field_manager,
            force=True,
            _content_type=APPLY_CONTENT_TYPE,
        )
        return result

    def read(self, kind: Kind, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self._call("read", kind, name, name)
        except KubernetesNotFound:
            return None
        return result

    def delete(self, kind: Kind, name: str) -> bool:
        """Delete with background propagation (a CronJob's Jobs, a Deployment's
        ReplicaSets go too). False when it was already gone: deletes are idempotent."""
        try:
            self._call(
                "delete",
                kind,
                name,
                name,
                body=k8s.V1DeleteOptions(propagation_policy="Background"),
            )
        except KubernetesNotFound:
            return False
        return True

    def list_all(
        self, kind: Kind, label_selector: str, *, page_size: int = LIST_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every object matching the selector, as raw dicts, paginated with
        `limit`/`continue` (one call per `page_size` objects)."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": label_selector, "limit": page_size}
            if token:
                kwargs["_continue"] = token
            page = self._call("list", kind, None, **kwargs)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
