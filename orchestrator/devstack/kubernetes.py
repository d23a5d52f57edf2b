"""Stand-in of the Kubernetes API server, reached through the official client unchanged.

No real API server can run where the orchestrator is developed and tested, yet the
orchestrator must be exercised through the official `kubernetes` client exactly as in
production (PEERS.md "Kubernetes API"). The 37.x client validates what it reads back
(strict pydantic models), so this stand-in stores and returns complete objects — uid,
resourceVersion, creationTimestamp, generation, managedFields, the defaults a real
server fills in — for `batch/v1` CronJobs, `apps/v1` Deployments and `v1` Services,
plus enough discovery for tools to find them.

It speaks the REST protocol as a real server does: POST 201 / 409 AlreadyExists /
422 Invalid, GET 200 / 404 NotFound, LIST with label and field selectors and
`limit`/`continue` pagination, PATCH (server-side apply, JSON merge patch, strategic
merge patch, JSON patch), PUT, DELETE 200 / 404, `Status` bodies for every error, a
global monotonically increasing resourceVersion that a no-op write does not bump,
`dryRun=All`, `fieldValidation`. Quirks a client must cope with are kept: LIST items
carry no `kind`/`apiVersion`; a Service DELETE answers the deleted Service, the
others a `Status`; a body whose apiVersion/kind does not match the URL is 400, not
422; a 429 carries `Retry-After: 1` (which urllib3, under the client, honours by
itself on GET/PUT/DELETE). Errors can be injected for every request (the base's
`Faults`, answered as `Status` bodies) or for one object (`fail_object`).

Objects rest as compact JSON bytes, not dicts: 50,000 CronJobs take ~135 MB instead
of ~650 MB, leave the garbage collector nothing to walk, and a LIST page is a join of
stored bytes. Tests and benchmarks reach the store directly with `put_object`,
`get_object`, `objects`, `edit_object`, `delete_object`, `reset`, and read `writes`
(write requests received, by (method, kind)).

What it simplifies compared with a real API server:

- **Server-side apply** tracks ownership of `metadata.labels`/`annotations` key by key
  and of `spec` as a whole: an apply *replaces* `spec` with the applied one, then the
  server defaults are applied again and allocated values (a Service's clusterIP and
  node ports) are carried over. So a spec field that somebody else set and the applier
  omits is dropped, where a real server would keep it under the other manager. A label
  the manager applied before and no longer applies is removed unless another manager
  also set it, as in real SSA. Without `force`, an apply conflicts (409) when another
  manager owns `spec` and a value the applier sets differs from the stored one.
  `managedFields` are recorded (with `fieldsV1` naming map keys; lists count as one
  field) so a reader sees who wrote what.
- **Strategic merge patch** is applied as a JSON merge patch (RFC 7386): lists are
  replaced, not merged by key, and `$patch` directives are not understood.
- **Pagination** is not a snapshot: a continue token holds the last name returned,
  and the next page reads the live store after it (objects created or deleted between
  pages are seen or missed accordingly, never repeated). Tokens expire only when a
  test calls `expire_continue_tokens()` (then 410 Expired, as after an etcd
  compaction).
- **Validation** is structural and fast: every field's JSON type is checked against
  the client's own models (the way the server's decoder answers 400), unknown fields
  are dropped with a `Warning` header (400 with `fieldValidation=Strict`, and always
  for an apply), required fields, names, labels, selectors, cron schedules, time zones,
  restart policies, ports and immutable fields are checked (422) — the rules that
  reject real manifests most often, not every rule of the real server.
- **Defaulting** covers what `kubectl get -o yaml` shows on these kinds (CronJob
  policies and history limits, Deployment replicas/strategy, pod template and
  container defaults, Service type/clusterIP/ports/IP families), not every default.
- **No cluster around it**: any namespace exists, no controllers run (no Jobs or
  ReplicaSets; status stays at its initial value), DELETE removes at once whatever the
  propagation policy, no watch, no authentication or RBAC (any token is accepted),
  JSON only (no protobuf/CBOR).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
import threading
import time
import typing
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from sys import intern
from typing import Any

import yaml

from orchestrator.devstack.standin import Handler, Request, Response, StandIn

Obj = dict[str, Any]

KINDS = ("CronJob", "Deployment", "Service")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-standin",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


# -- Status bodies ------------------------------------------------------------------
class ApiError(Exception):
    """Raised inside a handler to answer with a `Status`."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def status_response(
    code: int,
    message: str,
    *,
    reason: str | None = None,
    details: Obj | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": REASONS.get(code, "Unknown") if reason is None else reason,
        "details": details or {},
        "code": code,
    }
    for key in ("message", "reason", "details"):
        if not body[key]:  # the server omits empty fields of a Status
            del body[key]
    return Response(code, body, headers or {})


def bad_request(message: str) -> ApiError:
    return ApiError(status_response(400, message))


# -- resource types -----------------------------------------------------------------
@dataclass(frozen=True)
class ResourceType:
    kind: str
    group: str
    version: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    model: str  # the client's model class, whose field types the decoder checks
    name_max: int
    dns1035: bool  # Services need an RFC 1035 label (a letter first)
    # DELETE answers with the deleted object (core Services) rather than a Status.
    returns_deleted: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def resource(self) -> str:
        """`cronjobs.batch`, `services`: how the server names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def details(self, name: str, *, plural: bool = True, **extra: Any) -> Obj:
        out: Obj = {"name": name}
        if self.group:
            out["group"] = self.group
        out["kind"] = self.plural if plural else self.kind
        out.update(extra)
        return out

    def not_found(self, name: str) -> ApiError:
        return ApiError(
            status_response(404, f'{self.resource} "{name}" not found', details=self.details(name))
        )

    def conflict(self, name: str, why: str) -> ApiError:
        return ApiError(
            status_response(
                409,
                f'Operation cannot be fulfilled on {self.resource} "{name}": {why}',
                details=self.details(name),
            )
        )


CRONJOB = ResourceType(
    "CronJob", "batch", "v1", "cronjobs", "cronjob", ("cj",), "V1CronJob", 52, False
)
DEPLOYMENT = ResourceType(
    "Deployment", "apps", "v1", "deployments", "deployment", ("deploy",), "V1Deployment", 253, False
)
SERVICE = ResourceType(
    "Service", "", "v1", "services", "service", ("svc",), "V1Service", 63, True, True
)
RESOURCES = {rt.kind: rt for rt in (CRONJOB, DEPLOYMENT, SERVICE)}


def resource_type(kind: str) -> ResourceType:
    try:
        return RESOURCES[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}") from None


# -- field errors (422) -------------------------------------------------------------
def go_repr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return json.dumps(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in value.items())
        return f"map[string]string{{{inner}}}"
    return json.dumps(value)


class FieldErrors:
    """Collects validation errors the way the server's `field.ErrorList` prints them."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []  # (cause reason, field, detail)

    def __bool__(self) -> bool:
        return bool(self.items)

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.items.append(("FieldValueInvalid", path, f"Invalid value: {go_repr(value)}: {detail}"))

    def required(self, path: str, detail: str = "") -> None:
        text = "Required value" + (f": {detail}" if detail else "")
        self.items.append(("FieldValueRequired", path, text))

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        allowed = ", ".join(json.dumps(s) for s in supported)
        text = f"Unsupported value: {go_repr(value)}: supported values: {allowed}"
        self.items.append(("FieldValueNotSupported", path, text))

    def duplicate(self, path: str, value: Any) -> None:
        self.items.append(("FieldValueDuplicate", path, f"Duplicate value: {go_repr(value)}"))

    def forbidden(self, path: str, detail: str) -> None:
        self.items.append(("FieldValueForbidden", path, f"Forbidden: {detail}"))

    def too_long(self, path: str, limit: int) -> None:
        text = f"Too long: may not be more than {limit} bytes"
        self.items.append(("FieldValueTooLong", path, text))

    def error(self, rt: ResourceType, name: str) -> ApiError:
        texts = [f"{path}: {detail}" for _, path, detail in self.items]
        joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        causes = [
            {"reason": reason, "message": detail, "field": path}
            for reason, path, detail in self.items
        ]
        return ApiError(
            status_response(
                422,
                f'{rt.group_kind} "{name}" is invalid: {joined}',
                details=rt.details(name, plural=False, causes=causes),
            )
        )


# -- names and labels ---------------------------------------------------------------
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
IANA_SVC_NAME = re.compile(r"[-a-z0-9]+")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters,"
    " '-' or '.', and must start and end with an alphanumeric character (e.g."
    " 'example.com', regex used for validation is"
    " '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or"
    " '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or"
    " '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start"
    " with an alphabetic character, and end with an alphanumeric character (e.g."
    " 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start"
    " and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or"
    " '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-',"
    " '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', "
    " or 'my_value',  or '12345', regex used for validation is"
    " '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def subdomain_errors(value: str) -> list[str]:
    out = []
    if len(value) > 253:
        out.append("must be no more than 253 characters")
    if not DNS1123_SUBDOMAIN.fullmatch(value):
        out.append(SUBDOMAIN_MSG)
    return out


def label_errors(value: str) -> list[str]:
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not DNS1123_LABEL.fullmatch(value):
        out.append(LABEL_MSG)
    return out


def name_errors(rt: ResourceType, name: str) -> list[str]:
    out = []
    if len(name) > rt.name_max:
        out.append(f"must be no more than {rt.name_max} characters")
    if rt.dns1035:
        if not DNS1035_LABEL.fullmatch(name):
            out.append(DNS1035_MSG)
    elif not DNS1123_SUBDOMAIN.fullmatch(name):
        out.append(SUBDOMAIN_MSG)
    return out


def qualified_name_errors(key: str) -> list[str]:
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
        out = []
    elif len(parts) == 2:
        prefix, name = parts
        out = (
            ["prefix part must be non-empty"]
            if not prefix
            else [f"prefix part {msg}" for msg in subdomain_errors(prefix)]
        )
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and"
            " must start and end with an alphanumeric character with an optional DNS"
            " subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        out.append("name part must be non-empty")
    else:
        if len(name) > 63:
            out.append("name part must be no more than 63 characters")
        if not QUALIFIED_NAME.fullmatch(name):
            out.append(QUALIFIED_MSG)
    return out


def label_value_errors(value: str) -> list[str]:
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not LABEL_VALUE.fullmatch(value):
        out.append(LABEL_VALUE_MSG)
    return out


def check_labels(labels: Obj | None, path: str, errs: FieldErrors) -> None:
    for key, value in (labels or {}).items():
        for msg in qualified_name_errors(key):
            errs.invalid(path, key, msg)
        for msg in label_value_errors(value):
            errs.invalid(path, value, msg)


def check_annotations(annotations: Obj | None, path: str, errs: FieldErrors) -> None:
    total = 0
    for key, value in (annotations or {}).items():
        for msg in qualified_name_errors(key.lower()):
            errs.invalid(path, key, msg)
        total += len(key) + len(value)
    if total > 256 * 1024:
        errs.too_long(path, 256 * 1024)


def iana_svc_name_errors(value: str) -> list[str]:
    out = []
    if len(value) > 15:
        out.append("must be no more than 15 characters")
    if not IANA_SVC_NAME.fullmatch(value):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        out.append("must not contain consecutive hyphens")
    if not re.search(r"[a-z]", value):
        out.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        out.append("must not begin or end with a hyphen")
    return out


# -- cron schedules (the syntax of robfig/cron's ParseStandard, which CronJobs use) --
CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {m: i + 1 for i, m in enumerate(MONTH_NAMES)}
DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
CRON_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, MONTHS),
    (0, 6, DAYS),
)
GO_DURATION = re.compile(r"([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+")


def cron_error(schedule: str) -> str | None:
    spec = schedule.strip()
    if spec.startswith(("TZ=", "CRON_TZ=")) or "TZ=" in spec.split(" ", 1)[0]:
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    if spec.startswith("@"):
        if spec in CRON_DESCRIPTORS:
            return None
        if spec.startswith("@every "):
            duration = spec[len("@every ") :]
            if GO_DURATION.fullmatch(duration):
                return None
            return f"failed to parse duration {spec}: time: invalid duration {json.dumps(duration)}"
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: {spec}"
    for text, (low, high, names) in zip(fields, CRON_BOUNDS, strict=True):
        for part in text.split(","):
            problem = cron_range_error(part, low, high, names)
            if problem:
                return problem
    return None


def cron_number(text: str, names: dict[str, int]) -> int | str:
    if names and text.lower() in names:
        return names[text.lower()]
    try:
        number = int(text)
    except ValueError:
        return (
            f"failed to parse int from {text}: strconv.Atoi: parsing {json.dumps(text)}:"
            " invalid syntax"
        )
    if number < 0:
        return f"negative number ({number}) not allowed: {text}"
    return number


def cron_range_error(expr: str, low: int, high: int, names: dict[str, int]) -> str | None:
    range_and_step = expr.split("/")
    bounds = range_and_step[0].split("-")
    single = False
    if bounds[0] in ("*", "?"):
        start, end = low, high
    else:
        first = cron_number(bounds[0], names)
        if isinstance(first, str):
            return first
        start = end = first
        if len(bounds) == 2:
            last = cron_number(bounds[1], names)
            if isinstance(last, str):
                return last
            end = last
        elif len(bounds) > 2:
            return f"too many hyphens: {expr}"
        single = len(bounds) == 1
    if len(range_and_step) == 2:
        step = cron_number(range_and_step[1], {})
        if isinstance(step, str):
            return step
        if step == 0:
            return f"step of range should be a positive number: {expr}"
        if single:  # "N/step" means from N to the end of the range
            end = high
    elif len(range_and_step) > 2:
        return f"too many slashes: {expr}"
    if start < low:
        return f"beginning of range ({start}) below minimum ({low}): {expr}"
    if end > high:
        return f"end of range ({end}) above maximum ({high}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None


def time_zone_error(tz: str) -> str | None:
    if tz == "Local":
        return (
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
        )
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {tz}"
    return None


# -- the decoder: JSON types checked against the client's own models ------------------
@dataclass(eq=False)
class FieldType:
    tag: str  # str int bool float time any intorstr quantity list map model
    item: FieldType | None = None
    name: str = ""
    fields: dict[str, FieldType] = field(default_factory=dict)
    required: tuple[str, ...] = ()


GO_TYPES = {
    "str": "string",
    "int": "int32",
    "bool": "bool",
    "float": "float64",
    "time": "v1.Time",
    "intorstr": "intstr.IntOrString",
    "quantity": "resource.Quantity",
    "list": "[]",
    "map": "map",
}
SCALAR_TYPES = {
    "str": "str",
    "bytes": "str",
    "date": "str",
    "int": "int",
    "bool": "bool",
    "float": "float",
    "datetime": "time",
    "object": "any",
}
# Quantities are strings in the client's models, but the server takes 1 or 0.5 too and
# stores them as strings.
QUANTITY_FIELDS = {
    ("V1ResourceRequirements", "limits"),
    ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"),
    ("V1VolumeResourceRequirements", "requests"),
    ("V1PodSpec", "overhead"),
    ("V1EmptyDirVolumeSource", "size_limit"),
}
QUANTITY = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[mkMGTPEnu])?")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _union_members(annotation: Any) -> set[type]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _union_members(typing.get_args(annotation)[0])
    if origin is typing.Union:
        out: set[type] = set()
        for arg in typing.get_args(annotation):
            out |= _union_members(arg)
        return out
    return {annotation} if isinstance(annotation, type) else set()


class Schema:
    """Field types of the kinds served, compiled once from the client's models."""

    _lock = threading.Lock()
    _instance: Schema | None = None

    def __init__(self) -> None:
        from kubernetes.client import models

        self._models = models
        self._cache: dict[str, FieldType] = {}
        self.kinds = {rt.kind: self.model(rt.model) for rt in RESOURCES.values()}

    @classmethod
    def get(cls) -> Schema:
        with cls._lock:
            if cls._instance is None:
                cls._instance = Schema()
            return cls._instance

    def model(self, name: str) -> FieldType:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        cls = getattr(self._models, name)
        go_name = re.sub(r"^(V\d+((alpha|beta)\d+)?|[A-Z][a-z]+V\d+)", "", name)
        compiled = FieldType("model", name=go_name)
        self._cache[name] = compiled  # before the fields: models refer to themselves
        required = []
        for attr, type_name in cls.openapi_types.items():
            key = cls.attribute_map[attr]
            # The models rename Python keywords: `_exec` in the maps is field `var_exec`.
            model_field = cls.model_fields.get(attr) or cls.model_fields[f"var{attr}"]
            if (name, attr) in QUANTITY_FIELDS:
                quantity = FieldType("quantity")
                sub = FieldType("map", quantity) if type_name.startswith("Dict") else quantity
            elif type_name == "object" and {int, str} <= _union_members(model_field.annotation):
                sub = FieldType("intorstr")
            else:
                sub = self.parse(type_name)
            compiled.fields[key] = sub
            if model_field.is_required():
                required.append(key)
        compiled.required = tuple(required)
        return compiled

    def parse(self, type_name: str) -> FieldType:
        if type_name in SCALAR_TYPES:
            return FieldType(SCALAR_TYPES[type_name])
        if type_name.startswith("List[") and type_name.endswith("]"):
            return FieldType("list", self.parse(type_name[5:-1]))
        if type_name.startswith("Dict[str, ") and type_name.endswith("]"):
            return FieldType("map", self.parse(type_name[10:-1]))
        return self.model(type_name)


SCALAR_CLASSES: dict[str, type] = {"str": str, "int": int, "bool": bool}
JSON_TYPES = {bool: "bool", int: "number", float: "number", str: "string", list: "array"}


class Decoded:
    """What decoding found: wrong JSON types (400), unknown fields, missing fields."""

    def __init__(self) -> None:
        self.type_errors: list[str] = []
        self.unknown: list[str] = []
        self.missing: list[str] = []

    def wrong_type(self, value: Any, expected: FieldType, owner: str, path: str) -> None:
        got = "object" if isinstance(value, dict) else JSON_TYPES.get(type(value), "value")
        go_path = re.sub(r"\[\d+\]", "", path)
        want = GO_TYPES.get(expected.tag, f"v1.{expected.name}")
        self.type_errors.append(
            f"json: cannot unmarshal {got} into Go struct field {owner}.{go_path} of type {want}"
        )


def conform(value: Any, ftype: FieldType, path: str, owner: str, out: Decoded) -> Any:
    """Check `value` against `ftype` in place: drop unknown fields and nulls (a null is
    an unset field to the server's decoder), turn numeric quantities into strings, and
    note wrong types and missing required fields."""
    tag = ftype.tag
    if tag == "model":
        if not isinstance(value, dict):
            out.wrong_type(value, ftype, owner, path)
            return value
        fields = ftype.fields
        prefix = f"{path}." if path else ""
        for key in list(value):
            sub = fields.get(key)
            if sub is None:
                out.unknown.append(prefix + key)
                del value[key]
                continue
            item = value[key]
            if item is None:
                del value[key]
                continue
            # Scalars inline: most fields are, and a call each is most of the cost.
            scalar = SCALAR_CLASSES.get(sub.tag)
            if scalar is not None:
                if type(item) is not scalar:
                    out.wrong_type(item, sub, ftype.name, prefix + key)
                continue
            value[key] = conform(item, sub, prefix + key, ftype.name, out)
        for key in ftype.required:
            if key not in value:
                out.missing.append(prefix + key)
        return value
    if tag == "str":
        if not isinstance(value, str):
            out.wrong_type(value, ftype, owner, path)
        return value
    if tag == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            out.wrong_type(value, ftype, owner, path)
        return value
    if tag == "bool":
        if not isinstance(value, bool):
            out.wrong_type(value, ftype, owner, path)
        return value
    if tag == "list":
        if not isinstance(value, list):
            out.wrong_type(value, ftype, owner, path)
            return value
        assert ftype.item is not None
        scalar = SCALAR_CLASSES.get(ftype.item.tag)
        if scalar is not None and all(type(item) is scalar for item in value):
            return value
        for index, item in enumerate(value):
            if item is None:
                out.wrong_type(item, ftype.item, owner, f"{path}[{index}]")
                continue
            value[index] = conform(item, ftype.item, f"{path}[{index}]", owner, out)
        return value
    if tag == "map":
        if not isinstance(value, dict):
            out.wrong_type(value, ftype, owner, path)
            return value
        assert ftype.item is not None
        for key, item in value.items():
            if item is None:
                out.wrong_type(item, ftype.item, owner, f"{path}.{key}")
                continue
            value[key] = conform(item, ftype.item, f"{path}.{key}", owner, out)
        return value
    if tag == "intorstr":
        if isinstance(value, bool) or not isinstance(value, int | str):
            out.wrong_type(value, ftype, owner, path)
        return value
    if tag == "quantity":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            out.wrong_type(value, ftype, owner, path)
            return value
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)
    if tag == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.wrong_type(value, ftype, owner, path)
        return value
    if tag == "time":
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            out.type_errors.append(f"parsing time {json.dumps(value)} as RFC3339 at {path}")
        return value
    return value  # "any": raw JSON the client does not type either


# -- defaults -----------------------------------------------------------------------
PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1}


def pull_policy(image: str) -> str:
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def default_container(container: Obj) -> None:
    if isinstance(container.get("image"), str):
        container.setdefault("imagePullPolicy", pull_policy(container["image"]))
    container.setdefault("resources", {})
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_name)
        if isinstance(probe, dict):
            for key, value in PROBE_DEFAULTS.items():
                probe.setdefault(key, value)
            probe.setdefault("failureThreshold", 3)
            http_get = probe.get("httpGet")
            if isinstance(http_get, dict):
                http_get.setdefault("scheme", "HTTP")


def default_pod_template(template: Any) -> None:
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return
    spec = template["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                default_container(container)


def default_cronjob(obj: Obj, _old: Obj | None, _alloc: Allocator) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job = (spec.get("jobTemplate") or {}).get("spec")
    if isinstance(job, dict):
        default_pod_template(job.get("template"))


def default_deployment(obj: Obj, _old: Obj | None, _alloc: Allocator) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    default_pod_template(spec.get("template"))


def default_service(obj: Obj, old: Obj | None, alloc: Allocator) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    if spec["type"] == "ExternalName":
        return
    old_spec = (old or {}).get("spec") or {}
    # An allocated clusterIP stays with the Service for its life, whoever writes it.
    if "clusterIP" not in spec and old_spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]
    if "clusterIP" not in spec or spec["clusterIP"] == "":
        spec["clusterIP"] = alloc.cluster_ip()
    if isinstance(spec["clusterIP"], str):
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        old_ports = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
            for p in old_spec.get("ports") or []
            if isinstance(p, dict)
        }
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and "nodePort" not in port:
                kept = old_ports.get((port.get("port"), port.get("protocol")))
                port["nodePort"] = kept or alloc.node_port()


class Allocator:
    """Cluster IPs from 10.96.0.0/12 and node ports from 30000-32767, never reused."""

    def __init__(self) -> None:
        self._ip = 10  # 10.96.0.1 is the `kubernetes` Service of a real cluster
        self._node_port = 30000

    def cluster_ip(self) -> str:
        n = self._ip
        self._ip += 1
        return f"10.{96 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"

    def node_port(self) -> int:
        port = self._node_port
        self._node_port = 30000 if port >= 32767 else port + 1
        return port


# -- validation (422) ---------------------------------------------------------------
def check_non_negative(spec: Obj, keys: Iterable[str], path: str, errs: FieldErrors) -> None:
    for key in keys:
        value = spec.get(key)
        if isinstance(value, int) and value < 0:
            errs.invalid(f"{path}.{key}", value, "must be greater than or equal to 0")


def check_container(container: Obj, path: str, errs: FieldErrors, names: set[str]) -> None:
    name = container.get("name")
    if isinstance(name, str):
        if not name:
            errs.required(f"{path}.name")
        else:
            for msg in label_errors(name):
                errs.invalid(f"{path}.name", name, msg)
            if name in names:
                errs.duplicate(f"{path}.name", name)
            names.add(name)
    image = container.get("image")
    if not image:
        errs.required(f"{path}.image")
    elif isinstance(image, str) and image != image.strip():
        errs.invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
    policy = container.get("imagePullPolicy")
    if policy is not None and policy not in ("Always", "IfNotPresent", "Never"):
        errs.not_supported(f"{path}.imagePullPolicy", policy, ("Always", "IfNotPresent", "Never"))
    message_policy = container.get("terminationMessagePolicy")
    if message_policy not in (None, "File", "FallbackToLogsOnError"):
        errs.not_supported(
            f"{path}.terminationMessagePolicy", message_policy, ("File", "FallbackToLogsOnError")
        )
    port_names: set[str] = set()
    for index, port in enumerate(container.get("ports") or []):
        where = f"{path}.ports[{index}]"
        number = port.get("containerPort")
        if isinstance(number, int) and not 1 <= number <= 65535:
            errs.invalid(f"{where}.containerPort", number, "must be between 1 and 65535, inclusive")
        host = port.get("hostPort")
        if isinstance(host, int) and not 0 <= host <= 65535:
            errs.invalid(f"{where}.hostPort", host, "must be between 0 and 65535, inclusive")
        protocol = port.get("protocol")
        if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
            errs.not_supported(f"{where}.protocol", protocol, ("SCTP", "TCP", "UDP"))
        port_name = port.get("name")
        if isinstance(port_name, str):
            for msg in iana_svc_name_errors(port_name):
                errs.invalid(f"{where}.name", port_name, msg)
            if port_name in port_names:
                errs.duplicate(f"{where}.name", port_name)
            port_names.add(port_name)
    for index, env in enumerate(container.get("env") or []):
        where = f"{path}.env[{index}]"
        env_name = env.get("name")
        if isinstance(env_name, str):
            if not env_name:
                errs.required(f"{where}.name")
            elif "=" in env_name or not env_name.isprintable() or not env_name.isascii():
                errs.invalid(
                    f"{where}.name",
                    env_name,
                    "a valid environment variable name must consist only of printable ASCII"
                    " characters other than '='",
                )
        if env.get("value") and env.get("valueFrom"):
            errs.invalid(f"{where}.valueFrom", "", "may not be specified when `value` is not empty")
    for kind in ("limits", "requests"):
        for resource, quantity in ((container.get("resources") or {}).get(kind) or {}).items():
            if isinstance(quantity, str) and not QUANTITY.fullmatch(quantity):
                errs.invalid(
                    f"{path}.resources.{kind}[{resource}]",
                    quantity,
                    "quantities must match the regular expression"
                    " '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )


def check_pod_template(
    template: Any, path: str, errs: FieldErrors, restart_policies: tuple[str, ...]
) -> None:
    if not isinstance(template, dict):
        errs.required(path)
        return
    meta = template.get("metadata") or {}
    check_labels(meta.get("labels"), f"{path}.metadata.labels", errs)
    check_annotations(meta.get("annotations"), f"{path}.metadata.annotations", errs)
    spec = template.get("spec")
    if not isinstance(spec, dict):
        errs.required(f"{path}.spec.containers")
        return
    spec_path = f"{path}.spec"
    # An absent list was already reported by the decoder; an empty one is reported here.
    if "containers" in spec and not spec["containers"]:
        errs.required(f"{spec_path}.containers")
    names: set[str] = set()
    for key in ("containers", "initContainers"):
        for index, container in enumerate(spec.get(key) or []):
            check_container(container, f"{spec_path}.{key}[{index}]", errs, names)
    restart = spec.get("restartPolicy")
    if restart not in restart_policies:
        errs.not_supported(f"{spec_path}.restartPolicy", restart, restart_policies)
    dns_policy = spec.get("dnsPolicy")
    dns_policies = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
    if dns_policy is not None and dns_policy not in dns_policies:
        errs.not_supported(f"{spec_path}.dnsPolicy", dns_policy, dns_policies)
    check_non_negative(spec, ("terminationGracePeriodSeconds",), spec_path, errs)
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        errs.invalid(
            f"{spec_path}.activeDeadlineSeconds",
            deadline,
            "must be between 1 and 2147483647, inclusive",
        )
    account = spec.get("serviceAccountName")
    if account:
        for msg in subdomain_errors(account):
            errs.invalid(f"{spec_path}.serviceAccountName", account, msg)
    check_labels(spec.get("nodeSelector"), f"{spec_path}.nodeSelector", errs)
    volume_names: set[str] = set()
    for index, volume in enumerate(spec.get("volumes") or []):
        volume_name = volume.get("name", "")
        for msg in label_errors(volume_name):
            errs.invalid(f"{spec_path}.volumes[{index}].name", volume_name, msg)
        if volume_name in volume_names:
            errs.duplicate(f"{spec_path}.volumes[{index}].name", volume_name)
        volume_names.add(volume_name)


def check_label_selector(selector: Obj, path: str, errs: FieldErrors) -> None:
    check_labels(selector.get("matchLabels"), f"{path}.matchLabels", errs)
    for index, requirement in enumerate(selector.get("matchExpressions") or []):
        where = f"{path}.matchExpressions[{index}]"
        operator = requirement.get("operator")
        values = requirement.get("values") or []
        for msg in qualified_name_errors(requirement.get("key", "")):
            errs.invalid(f"{where}.key", requirement.get("key", ""), msg)
        if operator in ("In", "NotIn"):
            if not values:
                errs.required(
                    f"{where}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.forbidden(
                    f"{where}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
        else:
            errs.not_supported(
                f"{where}.operator", operator, ("In", "NotIn", "Exists", "DoesNotExist")
            )


def selector_matches(selector: Obj, labels: Obj) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator = requirement.get("key"), requirement.get("operator")
        values = requirement.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def validate_cronjob(obj: Obj, old: Obj | None, errs: FieldErrors) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    schedule = spec.get("schedule")
    if isinstance(schedule, str):
        if not schedule:
            errs.required("spec.schedule")
        else:
            problem = cron_error(schedule)
            if problem:
                errs.invalid("spec.schedule", schedule, problem)
    tz = spec.get("timeZone")
    if isinstance(tz, str):
        problem = time_zone_error(tz)
        if problem:
            errs.invalid("spec.timeZone", tz, problem)
    policy = spec.get("concurrencyPolicy")
    if policy not in ("Allow", "Forbid", "Replace"):
        errs.not_supported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace"))
    check_non_negative(
        spec,
        ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"),
        "spec",
        errs,
    )
    job_template = spec.get("jobTemplate")
    if not isinstance(job_template, dict):
        return
    meta = job_template.get("metadata") or {}
    check_labels(meta.get("labels"), "spec.jobTemplate.metadata.labels", errs)
    check_annotations(meta.get("annotations"), "spec.jobTemplate.metadata.annotations", errs)
    job = job_template.get("spec")
    if not isinstance(job, dict):
        errs.required("spec.jobTemplate.spec.template.spec.containers")
        return
    check_non_negative(
        job,
        ("backoffLimit", "ttlSecondsAfterFinished", "parallelism", "completions"),
        "spec.jobTemplate.spec",
        errs,
    )
    deadline = job.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        errs.invalid(
            "spec.jobTemplate.spec.activeDeadlineSeconds", deadline, "must be greater than 0"
        )
    if "template" in job:
        check_pod_template(
            job["template"], "spec.jobTemplate.spec.template", errs, ("OnFailure", "Never")
        )


def validate_deployment(obj: Obj, old: Obj | None, errs: FieldErrors) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    selector = spec.get("selector")
    template = spec.get("template")
    if isinstance(selector, dict):
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errs.invalid("spec.selector", selector, "empty selector is invalid for deployment")
        else:
            check_label_selector(selector, "spec.selector", errs)
            labels = ((template or {}).get("metadata") or {}).get("labels") or {}
            if isinstance(template, dict) and not selector_matches(selector, labels):
                errs.invalid(
                    "spec.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                )
        old_selector = ((old or {}).get("spec") or {}).get("selector")
        if old is not None and old_selector != selector:
            errs.invalid("spec.selector", selector, "field is immutable")
    if "template" in spec:
        check_pod_template(template, "spec.template", errs, ("Always",))
    check_non_negative(spec, ("replicas", "revisionHistoryLimit", "minReadySeconds"), "spec", errs)
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= spec.get("minReadySeconds", 0):
        errs.invalid(
            "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
        )
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    if kind not in ("RollingUpdate", "Recreate"):
        errs.not_supported("spec.strategy.type", kind, ("Recreate", "RollingUpdate"))
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate" and rolling is not None:
        errs.forbidden(
            "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
        )
    if kind == "RollingUpdate" and isinstance(rolling, dict):
        amounts = {}
        for key in ("maxUnavailable", "maxSurge"):
            value = rolling.get(key, 0)
            where = f"spec.strategy.rollingUpdate.{key}"
            if isinstance(value, str):
                match = re.fullmatch(r"([0-9]+)%", value)
                if not match:
                    errs.invalid(
                        where,
                        value,
                        PERCENT_MSG,
                    )
                    continue
                amount = int(match.group(1))
                if key == "maxUnavailable" and amount > 100:
                    errs.invalid(where, value, "must not be greater than 100%")
            else:
                amount = value
            if amount < 0:
                errs.invalid(where, value, "must be greater than or equal to 0")
            amounts[key] = amount
        if amounts.get("maxUnavailable") == 0 and amounts.get("maxSurge") == 0:
            errs.invalid(
                "spec.strategy.rollingUpdate.maxUnavailable",
                rolling.get("maxUnavailable"),
                "may not be 0 when `maxSurge` is 0",
            )


PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%', "
    " or '93%', regex used for validation is '[0-9]+%')"
)
IPV4 = re.compile(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def validate_service(obj: Obj, old: Obj | None, errs: FieldErrors) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    kind = spec.get("type")
    if kind not in SERVICE_TYPES:
        errs.not_supported("spec.type", kind, SERVICE_TYPES)
    cluster_ip = spec.get("clusterIP")
    if kind == "ExternalName":
        external = spec.get("externalName")
        if not external:
            errs.required("spec.externalName")
        else:
            for msg in subdomain_errors(external):
                errs.invalid("spec.externalName", external, msg)
    elif isinstance(cluster_ip, str) and cluster_ip != "None" and not IPV4.fullmatch(cluster_ip):
        errs.invalid(
            "spec.clusterIPs[0]",
            cluster_ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )
    old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
    if old_ip and kind != "ExternalName" and cluster_ip != old_ip:
        errs.invalid("spec.clusterIPs[0]", cluster_ip, "may not change once set")
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and cluster_ip != "None":
        errs.required("spec.ports")
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for index, port in enumerate(ports):
        where = f"spec.ports[{index}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.required(f"{where}.name")
        if name:
            for msg in label_errors(name):
                errs.invalid(f"{where}.name", name, msg)
            if name in names:
                errs.duplicate(f"{where}.name", name)
            names.add(name)
        number = port.get("port")
        if isinstance(number, int) and not 1 <= number <= 65535:
            errs.invalid(f"{where}.port", number, "must be between 1 and 65535, inclusive")
        protocol = port.get("protocol")
        if protocol not in ("TCP", "UDP", "SCTP"):
            errs.not_supported(f"{where}.protocol", protocol, ("SCTP", "TCP", "UDP"))
        key = (number, protocol)
        if key in seen:
            errs.duplicate(where, {"port": number, "protocol": protocol})
        seen.add(key)
        target = port.get("targetPort")
        if isinstance(target, int) and not 1 <= target <= 65535:
            errs.invalid(f"{where}.targetPort", target, "must be between 1 and 65535, inclusive")
        elif isinstance(target, str):
            for msg in iana_svc_name_errors(target):
                errs.invalid(f"{where}.targetPort", target, msg)
        node_port = port.get("nodePort")
        if node_port is not None and kind == "ClusterIP":
            errs.forbidden(f"{where}.nodePort", "may not be used when `type` is 'ClusterIP'")
        elif isinstance(node_port, int) and not 30000 <= node_port <= 32767:
            errs.invalid(
                f"{where}.nodePort",
                node_port,
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            )
    check_labels(spec.get("selector"), "spec.selector", errs)
    affinity = spec.get("sessionAffinity")
    if affinity not in ("None", "ClientIP"):
        errs.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))


Defaulter = Callable[[Obj, "Obj | None", Allocator], None]
Validator = Callable[[Obj, "Obj | None", FieldErrors], None]
BEHAVIOUR: dict[str, tuple[Defaulter, Validator]] = {
    "CronJob": (default_cronjob, validate_cronjob),
    "Deployment": (default_deployment, validate_deployment),
    "Service": (default_service, validate_service),
}
INITIAL_STATUS: dict[str, Obj] = {
    "CronJob": {},
    "Deployment": {},
    "Service": {"loadBalancer": {}},
}


# -- patches ------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


class JsonPatchError(Exception):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise JsonPatchError(f"JSON pointer must start with '/': {path}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise JsonPatchError(f"doc is missing path: {json.dumps(path)}")
    return node, tokens[-1]


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise JsonPatchError(f"doc is missing path: {json.dumps(path)}")


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise JsonPatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise JsonPatchError(f"doc is missing path: {json.dumps(path)}")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise JsonPatchError(f"index out of range: {json.dumps(path)}")
    else:
        raise JsonPatchError(f"doc is missing path: {json.dumps(path)}")
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902."""
    if not isinstance(operations, list):
        raise JsonPatchError("a JSON patch is a list of operations")
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise JsonPatchError(f"invalid operation {json.dumps(op)}")
        kind, path = op.get("op"), op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise JsonPatchError(f"{kind} operation does not apply: missing value")
        if kind == "add":
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            if _pointer(path):
                _remove(doc, path)
            doc = _add(doc, path, op["value"])
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise JsonPatchError(f"{kind} operation does not apply: missing from")
            value = _remove(doc, source) if kind == "move" else clone(_get(doc, source))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise JsonPatchError(f"testing value {path} failed: test failed")
        else:
            raise JsonPatchError(f"Unexpected kind: {kind}")
    return doc


# -- selectors ----------------------------------------------------------------------
@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # = != in notin exists !exists gt lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Obj) -> bool:
        op, key = self.op, self.key
        if op == "=":
            return labels.get(key) == self.values[0]
        if op == "!=":
            return labels.get(key) != self.values[0]
        if op == "in":
            return key in labels and labels[key] in self.values
        if op == "notin":
            return key not in labels or labels[key] not in self.values
        if op == "exists":
            return key in labels
        if op == "!exists":
            return key not in labels
        value = labels.get(key)
        if value is None or not re.fullmatch(r"-?\d+", value):
            return False
        bound = int(self.values[0])
        return int(value) > bound if op == "gt" else int(value) < bound


SELECTOR_SET = re.compile(r"([^\s=!<>(),]+)\s+(in|notin)\s*\((.*)\)", re.S)
SELECTOR_OP = re.compile(r"([^\s=!<>(),]+)\s*(==|!=|=|>|<)\s*([^\s=!<>(),]*)")


def split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_label_selector(text: str) -> list[Requirement]:
    """`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, `k>1`, `k<1`;
    a comma means AND. Raises ValueError with the server's wording."""
    requirements = []
    values: tuple[str, ...]
    if not text.strip():
        return []
    for raw in split_top_level(text):
        part = raw.strip()
        if not part:
            raise ValueError("found '', expected: !, identifier, or 'end of string'")
        if part.startswith("!"):
            key, op, values = part[1:].strip(), "!exists", ()
        elif match := SELECTOR_SET.fullmatch(part):
            key, op = match.group(1), match.group(2)
            values = tuple(v.strip() for v in match.group(3).split(","))
            if values == ("",):
                raise ValueError(f"for '{op}', 'notin' operators, values set can't be empty")
        elif match := SELECTOR_OP.fullmatch(part):
            key, symbol, value = match.groups()
            op = {"==": "=", "=": "=", "!=": "!=", ">": "gt", "<": "lt"}[symbol]
            values = (value,)
            if op in ("gt", "lt") and not re.fullmatch(r"-?\d+", value):
                raise ValueError(f"for 'Gt', 'Lt' operators, the value must be an integer: {value}")
        elif re.fullmatch(r"[^\s=!<>(),]+", part):
            key, op, values = part, "exists", ()
        else:
            raise ValueError(f"unable to parse requirement: {json.dumps(part)}")
        for msg in qualified_name_errors(key):
            raise ValueError(
                f"unable to parse requirement: key: Invalid value: {json.dumps(key)}: {msg}"
            )
        if op not in ("gt", "lt"):
            for value in values:
                for msg in label_value_errors(value):
                    raise ValueError(
                        "unable to parse requirement: values[0]: Invalid value:"
                        f" {json.dumps(value)}: {msg}"
                    )
        requirements.append(Requirement(key, op, values))
    return requirements


def parse_field_selector(text: str) -> list[tuple[str, bool, str]]:
    """`metadata.name=x`, `metadata.namespace!=y`: (field, equal, value) triples."""
    out = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        match = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", part)
        if not match:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{part}'")
        name, op, value = match.group(1).strip(), match.group(2), match.group(3).strip()
        if name not in ("metadata.name", "metadata.namespace"):
            raise ValueError(f"field label not supported: {name}")
        out.append((name, op != "!=", value))
    return out


# -- helpers ------------------------------------------------------------------------
def clone(value: Any) -> Any:
    """A deep copy; JSON's C codec is several times faster than `copy.deepcopy`."""
    return json.loads(json.dumps(value))


_clock: list[Any] = [0, ""]


def now() -> str:
    """RFC 3339 in seconds, as the server stamps; formatted once a second (a bulk load
    stamps tens of thousands of objects)."""
    second = int(time.time())
    if _clock[0] != second:
        _clock[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    return str(_clock[1])


def fields_v1(value: Any) -> Obj:
    """The `fieldsV1` set of a value: map keys nest, anything else is one field."""
    if type(value) is not dict:
        return {}
    return {
        "f:" + key: fields_v1(item) if type(item) is dict else {}
        for key, item in value.items()
        if item is not None
    }


def union_fields(a: Obj, b: Obj) -> Obj:
    out = dict(a)
    for key, value in b.items():
        out[key] = union_fields(out.get(key, {}), value)
    return out


def conflicts(applied: Any, current: Any, path: str) -> list[str]:
    """Paths where the applied config sets a value that differs from the stored one."""
    if isinstance(applied, dict) and isinstance(current, dict):
        out = []
        for key, value in applied.items():
            if key in current:
                out.extend(conflicts(value, current[key], f"{path}.{key}"))
        return out
    return [] if applied == current else [path]


def encode_continue(rv: int, start: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"}
    raw = json.dumps(token, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        rv, start = data["rv"], data["start"]
        if (
            data.get("v") != "meta.k8s.io/v1"
            or not isinstance(rv, int)
            or not isinstance(start, str)
        ):
            raise ValueError("unsupported continue token")
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise bad_request(f"continue key is not valid: {exc}") from None
    return rv, start


def yaml_default(value: Any) -> Any:
    # YAML turns unquoted timestamps into dates; the server's YAML→JSON keeps text.
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def query_flag(req: Request, name: str) -> str | None:
    values = req.query.get(name)
    return values[-1] if values else None


OWNED_META = ("labels", "annotations", "ownerReferences", "finalizers")
MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
EXPIRED_MSG = (
    "The provided continue parameter is too old to display a consistent list result. You can"
    " start a new list without the continue parameter, or use the continue token in this"
    " response to retrieve the remainder of the results. Continuing with the provided token"
    " results in an inconsistent list - objects that were created, modified, or deleted"
    " between the time the first chunk was returned and now may show up in the list."
)
RESOURCE_PATH = re.compile(
    r"(?P<prefix>/api/v1|/apis/[a-z.]+/v1)(?:/namespaces/(?P<namespace>[^/]+))?"
    r"/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?/?"
)


def resource_path(path: str) -> tuple[ResourceType | None, str, str]:
    """(resource type, namespace, name) of a resource path; (None, "", "") otherwise."""
    match = RESOURCE_PATH.fullmatch(path)
    if match:
        for rt in RESOURCES.values():
            if rt.prefix == match["prefix"] and rt.plural == match["plural"]:
                return rt, match["namespace"] or "", match["name"] or ""
    return None, "", ""


KEY_RANGE_END = chr(ord("/") + 1)  # every key of namespace ns sorts in [ns/, ns0)


@dataclass(slots=True)
class Stored:
    """An object at rest: its JSON as a LIST item carries it (without kind and
    apiVersion), and its labels for selectors. Bytes rather than dicts: a third of the
    memory, nothing for the garbage collector to walk, and a LIST page is a join."""

    item: bytes
    labels: dict[str, str]


@dataclass
class ObjectFault:
    status: int
    times: int | None


# -- the stand-in -------------------------------------------------------------------
class KubernetesStandIn(StandIn):
    """The API server. Thread-safe: one re-entrant lock guards the store."""

    name = "kubernetes"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._store_lock = threading.RLock()
        self._objects: dict[str, dict[str, Stored]] = {kind: {} for kind in KINDS}
        self._keys: dict[str, list[str]] = {kind: [] for kind in KINDS}  # sorted "ns/name"
        self._rv = 1
        self._compacted_rv = 0
        self._alloc = Allocator()
        self._object_faults: dict[str, ObjectFault] = {}
        self.writes: Counter[tuple[str, str]] = Counter()
        super().__init__(host, port)

    # -- routes ---------------------------------------------------------------------
    def routes(self) -> None:
        self.route("GET", r"/version/?", lambda _r: Response(200, dict(SERVER_VERSION)))
        self.route("GET", r"/api/?", self._api_versions)
        self.route("GET", r"/apis/?", self._api_groups)
        for group in sorted({rt.group for rt in RESOURCES.values() if rt.group}):
            self.route("GET", rf"/apis/{group}/?", self._api_group(group))
        for prefix in sorted({rt.prefix for rt in RESOURCES.values()}):
            self.route("GET", rf"{prefix}/?", self._resource_list(prefix))
        for rt in RESOURCES.values():
            collection = rf"{rt.prefix}/namespaces/(?P<namespace>[^/]+)/{rt.plural}"
            item = rf"{collection}/(?P<name>[^/]+)"
            self.route("GET", collection, self._guard(rt, self._list))
            self.route("POST", collection, self._guard(rt, self._create))
            self.route("GET", item, self._guard(rt, self._get))
            self.route("PUT", item, self._guard(rt, self._replace))
            self.route("PATCH", item, self._guard(rt, self._patch))
            self.route("DELETE", item, self._guard(rt, self._delete))
            self.route("GET", rf"{rt.prefix}/{rt.plural}", self._guard(rt, self._list))
        self.route("POST", r"/_standin/object-faults", self._http_fail_object)
        self.route("DELETE", r"/_standin/object-faults", self._http_clear_object_faults)

    def _api_versions(self, req: Request) -> Response:
        host = req.headers.get("host", f"127.0.0.1:{self.port}")
        return Response(
            200,
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            },
        )

    @staticmethod
    def _group_body(group: str) -> Obj:
        version = {"groupVersion": f"{group}/v1", "version": "v1"}
        return {"name": group, "versions": [version], "preferredVersion": version}

    def _api_groups(self, _req: Request) -> Response:
        groups = sorted({rt.group for rt in RESOURCES.values() if rt.group})
        return Response(
            200,
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group_body(g) for g in groups],
            },
        )

    def _api_group(self, group: str) -> Handler:
        return lambda _r: Response(
            200, {"kind": "APIGroup", "apiVersion": "v1", **self._group_body(group)}
        )

    def _resource_list(self, prefix: str) -> Handler:
        types = [rt for rt in RESOURCES.values() if rt.prefix == prefix]
        body = {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": types[0].api_version,
            "resources": [
                {
                    "name": rt.plural,
                    "singularName": rt.singular,
                    "namespaced": True,
                    "kind": rt.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update"],
                    "shortNames": list(rt.short_names),
                }
                for rt in types
            ],
        }
        return lambda _r: Response(200, clone(body))

    # -- dispatch, faults -----------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        if req.method in WRITE_METHODS and not req.path.startswith("/_standin/"):
            rt, _, _ = resource_path(req.path)
            if rt is not None:
                with self._store_lock:
                    self.writes[(req.method, rt.kind)] += 1
        return super().dispatch(req)

    def _guard(
        self, rt: ResourceType, handler: Callable[[ResourceType, Request], Response]
    ) -> Handler:
        def guarded(req: Request) -> Response:
            try:
                fault = self._object_fault(req)
                if fault is not None:
                    return fault
                return handler(rt, req)
            except ApiError as error:
                return error.response

        return guarded

    def _object_fault(self, req: Request) -> Response | None:
        with self._store_lock:
            if not self._object_faults:
                return None
            name = req.params.get("name")
            if name is None and req.method == "POST":
                try:
                    body = json.loads(req.body) if req.body else None
                    name = ((body or {}).get("metadata") or {}).get("name")
                except (ValueError, AttributeError):
                    name = None
            fault = self._object_faults.get(name) if isinstance(name, str) else None
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._object_faults[name]  # type: ignore[arg-type]
        return self.fault_response(req, fault.status)

    def fault_response(self, req: Request, status: int) -> Response:
        """Injected errors look like the API server's own: a `Status`, with the
        `Retry-After` a throttled server sends."""
        rt, namespace, name = resource_path(req.path)
        details = rt.details(name) if rt is not None and name else {}
        headers: dict[str, str] = {}
        if status == 429:
            headers["Retry-After"] = "1"
            details["retryAfterSeconds"] = 1
            message = "Too many requests, please try again later."
        elif status == 500:
            message = "Internal error occurred: injected fault"
        elif status == 503:
            message = "The server is currently unable to handle the request"
        elif status == 504:
            message = "The server was unable to return a response in the time allotted"
        elif status == 403 and rt is not None:
            verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update"}.get(
                req.method, req.method.lower()
            )
            subject = f'{rt.resource} "{name}"' if name else rt.resource
            message = (
                f'{subject} is forbidden: User "system:serviceaccount:{namespace}:default"'
                f' cannot {verb} resource "{rt.plural}" in API group "{rt.group}"'
                f' in the namespace "{namespace}"'
            )
        elif status == 404 and rt is not None and name:
            message = f'{rt.resource} "{name}" not found'
        elif status == 401:
            message = "Unauthorized"
        else:
            message = f"injected fault ({status})"
        return status_response(status, message, details=details or None, headers=headers)

    def method_not_allowed(self, req: Request, allowed: list[str]) -> Response:
        return status_response(
            405, f"the server does not allow this method on the requested resource ({req.path})"
        )

    def not_found(self, req: Request) -> Response:
        return status_response(
            404, f"the server could not find the requested resource ({req.path})", details={}
        )

    # -- per-object faults ------------------------------------------------------------
    def fail_object(self, name: str, status: int, times: int | None = None) -> None:
        """Every request that names `name` (in its path, or as `metadata.name` of a
        POST) answers `status`, `times` times (None: until cleared)."""
        with self._store_lock:
            self._object_faults[name] = ObjectFault(status, times)

    def clear_object_faults(self) -> None:
        with self._store_lock:
            self._object_faults.clear()

    def _http_fail_object(self, req: Request) -> Response:
        body = req.json() or {}
        try:
            self.fail_object(str(body["name"]), int(body["status"]), body.get("times"))
        except (KeyError, TypeError, ValueError) as exc:
            return Response(400, {"detail": f"expected name and status: {exc}"})
        return Response(200, {"ok": True})

    def _http_clear_object_faults(self, _req: Request) -> Response:
        self.clear_object_faults()
        return Response(200, {"ok": True})

    # -- store primitives (callers hold the lock) --------------------------------------
    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _store(self, kind: str, namespace: str, obj: Obj) -> None:
        key = f"{namespace}/{obj['metadata']['name']}"
        item = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        labels = {intern(k): v for k, v in (obj["metadata"].get("labels") or {}).items()}
        stored = Stored(json.dumps(item, separators=(",", ":")).encode(), labels)
        objects = self._objects[kind]
        if key not in objects:
            keys = self._keys[kind]
            if not keys or keys[-1] < key:
                keys.append(key)  # bulk loads in name order stay O(1)
            else:
                bisect.insort(keys, key)
        objects[key] = stored

    def _load(self, rt: ResourceType, key: str) -> Obj | None:
        """A fresh dict of the stored object (callers may mutate it)."""
        stored = self._objects[rt.kind].get(key)
        if stored is None:
            return None
        return {"kind": rt.kind, "apiVersion": rt.api_version, **json.loads(stored.item)}

    def _unstore(self, kind: str, key: str) -> None:
        del self._objects[kind][key]
        keys = self._keys[kind]
        del keys[bisect.bisect_left(keys, key)]

    # -- building objects -----------------------------------------------------------
    def _decode_body(self, req: Request, *, yaml_ok: bool = False) -> Any:
        if not req.body:
            raise bad_request(
                "the body of the request was in an unknown format - accepted media types"
                " include: application/json, application/yaml"
            )
        try:
            return json.loads(req.body)
        except ValueError as exc:
            if not yaml_ok:
                raise bad_request(f"json: {exc}") from None
        try:
            loaded = yaml.safe_load(req.body)
            return json.loads(json.dumps(loaded, default=yaml_default))
        except (yaml.YAMLError, TypeError, ValueError) as exc:
            raise bad_request(f"error converting YAML to JSON: {exc}") from None

    def _check_type(self, rt: ResourceType, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request(
                f"json: cannot unmarshal {JSON_TYPES.get(type(body), 'value')} into Go value"
                f" of type v1.{rt.kind}"
            )
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if not api_version or not kind:
            raise bad_request(
                f"Object 'Kind' is missing in '{json.dumps(body)[:200]}'"
                if not kind
                else "Object 'apiVersion' is missing"
            )
        if kind != rt.kind or api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API"
                f" version ({rt.api_version})"
                if api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        if not isinstance(body.get("metadata", {}), dict):
            raise bad_request(
                f"json: cannot unmarshal {JSON_TYPES.get(type(body['metadata']), 'value')}"
                f" into Go struct field {rt.kind}.metadata of type v1.ObjectMeta"
            )
        return body

    def _decode(
        self, rt: ResourceType, obj: Obj, namespace: str, validation: str, *, apply: bool = False
    ) -> tuple[list[str], list[str]]:
        """Type-check `obj` (in place) as the server's decoder does: (warnings, missing
        required fields)."""
        decoded = Decoded()
        conform(obj, Schema.get().kinds[rt.kind], "", rt.kind, decoded)
        if decoded.type_errors:
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}:'
                f" {decoded.type_errors[0]}"
            )
        unknown = [u for u in decoded.unknown if not u.startswith("status.")]
        if unknown and apply:
            # An apply configuration may name only declared fields, whatever
            # fieldValidation says.
            name = (obj.get("metadata") or {}).get("name", "")
            raise bad_request(
                f"failed to create typed patch object ({namespace}/{name};"
                f" {rt.api_version}, Kind={rt.kind}): .{unknown[0]}: field not declared in schema"
            )
        if unknown and validation == "Strict":
            listing = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise bad_request(f"strict decoding error: {listing}")
        warnings = [] if validation == "Ignore" else [f'unknown field "{u}"' for u in unknown]
        return warnings, decoded.missing

    def _settle(self, rt: ResourceType, obj: Obj, old: Obj | None, missing: list[str]) -> None:
        """Default then validate `obj` (in place), as the server does before it stores
        anything; `old` is the stored object on an update."""
        defaulter, validator = BEHAVIOUR[rt.kind]
        defaulter(obj, old, self._alloc)
        meta = obj.setdefault("metadata", {})
        errs = FieldErrors()
        name = meta.get("name") or ""
        if not name:
            errs.required("metadata.name", "name or generateName is required")
        else:
            for msg in name_errors(rt, name):
                errs.invalid("metadata.name", name, msg)
        check_labels(meta.get("labels"), "metadata.labels", errs)
        check_annotations(meta.get("annotations"), "metadata.annotations", errs)
        for path in missing:
            errs.required(path)
        validator(obj, old, errs)
        if errs:
            raise errs.error(rt, name)

    def _prepare(
        self, rt: ResourceType, obj: Obj, old: Obj | None, namespace: str, validation: str
    ) -> list[str]:
        warnings, missing = self._decode(rt, obj, namespace, validation)
        self._settle(rt, obj, old, missing)
        return warnings

    def _finish(
        self,
        rt: ResourceType,
        obj: Obj,
        namespace: str,
        old: Obj | None,
        managed: list[Obj],
    ) -> Obj:
        """The object as stored: system metadata, status and key order of a real server."""
        meta = obj.get("metadata") or {}
        out_meta: Obj = {"name": meta["name"]}
        if meta.get("generateName"):
            out_meta["generateName"] = meta["generateName"]
        out_meta["namespace"] = namespace
        if old is None:
            out_meta["uid"] = str(uuid.uuid4())
            out_meta["resourceVersion"] = ""
            out_meta["generation"] = 1
            out_meta["creationTimestamp"] = now()
        else:
            old_meta = old["metadata"]
            out_meta["uid"] = old_meta["uid"]
            out_meta["resourceVersion"] = old_meta["resourceVersion"]
            spec_changed = obj.get("spec") != old.get("spec")
            out_meta["generation"] = old_meta.get("generation", 1) + (1 if spec_changed else 0)
            out_meta["creationTimestamp"] = old_meta["creationTimestamp"]
        for key in OWNED_META:
            if meta.get(key):
                out_meta[key] = meta[key]
        if managed:
            out_meta["managedFields"] = managed
        out: Obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": out_meta}
        if "spec" in obj:
            out["spec"] = obj["spec"]
        if old is not None and "status" in old:
            out["status"] = old["status"]
        else:
            out["status"] = clone(INITIAL_STATUS[rt.kind])
        return out

    def _commit(
        self, rt: ResourceType, namespace: str, new: Obj, old: Obj | None, dry_run: bool
    ) -> bool:
        """Store `new` unless nothing changed; False for a no-op (resourceVersion kept)."""
        if old is not None:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return False
        if dry_run:
            return True
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._store(rt.kind, namespace, new)
        return True

    @staticmethod
    def _manager(req: Request) -> str:
        manager = query_flag(req, "fieldManager")
        if manager:
            return manager
        agent = req.headers.get("user-agent", "")
        return agent.split("/", 1)[0] or "unknown"

    @staticmethod
    def _update_entry(
        rt: ResourceType, manager: str, touched: Obj, managed: list[Obj]
    ) -> list[Obj]:
        """managedFields after an Update by `manager` that set the fields in `touched`.
        An entry that gains nothing keeps its time, so a no-op stays a no-op."""
        out = list(managed)
        for index, entry in enumerate(out):
            if entry.get("manager") == manager and entry.get("operation") == "Update":
                fields = union_fields(entry.get("fieldsV1") or {}, touched)
                if fields != entry.get("fieldsV1"):
                    out[index] = {**entry, "time": now(), "fieldsV1": fields}
                return out
        if touched:
            out.append(
                {
                    "manager": manager,
                    "operation": "Update",
                    "apiVersion": rt.api_version,
                    "time": now(),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": touched,
                }
            )
        return out

    @staticmethod
    def _owned_fields(obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        owned: Obj = {}
        owned_meta = {f"f:{key}": fields_v1(meta[key]) for key in OWNED_META if meta.get(key)}
        if owned_meta:
            owned["f:metadata"] = owned_meta
        if "spec" in obj:
            owned["f:spec"] = fields_v1(obj["spec"])
        return owned

    # -- handlers -------------------------------------------------------------------
    def _options(self, req: Request) -> tuple[bool, str]:
        dry_run = query_flag(req, "dryRun")
        if dry_run not in (None, "All"):
            raise bad_request(
                f'Invalid dryRun: Unsupported value: "{dry_run}": supported values: "All"'
            )
        validation = query_flag(req, "fieldValidation") or "Warn"
        if validation not in ("Ignore", "Warn", "Strict"):
            raise bad_request(
                f"fieldValidation must be one of Ignore, Warn, Strict, got {validation}"
            )
        manager = query_flag(req, "fieldManager")
        if manager is not None and (len(manager) > 128 or not manager.isprintable()):
            raise ApiError(
                status_response(
                    422,
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Invalid value:'
                    f' "{manager}": must be at most 128 characters and printable',
                )
            )
        return dry_run == "All", validation

    @staticmethod
    def _warned(response: Response, warnings: list[str]) -> Response:
        if warnings:
            # A Warning header's text is a quoted string: inner quotes are escaped.
            texts = (w.replace("\\", "\\\\").replace('"', '\\"') for w in warnings)
            response.headers["Warning"] = ", ".join(f'299 - "{t}"' for t in texts)
        return response

    @staticmethod
    def _check_identity(body: Obj, namespace: str, name: str | None) -> None:
        meta = body.setdefault("metadata", {})
        body_ns = meta.get("namespace")
        if body_ns and body_ns != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on"
                " the request"
            )
        if name is not None and meta.get("name") != name:
            raise bad_request(
                f"the name of the object ({meta.get('name') or ''}) does not match the name"
                f" on the URL ({name})"
            )

    def _create(self, rt: ResourceType, req: Request) -> Response:
        namespace = req.params["namespace"]
        dry_run, validation = self._options(req)
        body = self._check_type(rt, self._decode_body(req))
        self._check_identity(body, namespace, None)
        meta = body["metadata"]
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if (
            not meta.get("name")
            and isinstance(meta.get("generateName"), str)
            and meta["generateName"]
        ):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        manager = self._manager(req)
        with self._store_lock:
            warnings = self._prepare(rt, body, None, namespace, validation=validation)
            name = meta["name"]
            if f"{namespace}/{name}" in self._objects[rt.kind]:
                raise ApiError(
                    status_response(
                        409,
                        f'{rt.resource} "{name}" already exists',
                        reason="AlreadyExists",
                        details=rt.details(name),
                    )
                )
            managed = self._update_entry(rt, manager, self._owned_fields(body), [])
            new = self._finish(rt, body, namespace, None, managed)
            self._commit(rt, namespace, new, None, dry_run)
            if dry_run:
                del new["metadata"]["resourceVersion"]
        return self._warned(Response(201, new), warnings)

    def _get(self, rt: ResourceType, req: Request) -> Response:
        namespace, name = req.params["namespace"], req.params["name"]
        with self._store_lock:
            stored = self._objects[rt.kind].get(f"{namespace}/{name}")
        if stored is None:
            raise rt.not_found(name)
        header = f'{{"kind":"{rt.kind}","apiVersion":"{rt.api_version}",'.encode()
        return Response(200, header + stored.item[1:])

    def _list(self, rt: ResourceType, req: Request) -> Response:
        if (query_flag(req, "watch") or "").lower() in ("true", "1"):
            return status_response(
                405, "watch is not supported by the stand-in", reason="MethodNotAllowed"
            )
        namespace = req.params.get("namespace")
        try:
            labels = parse_label_selector(query_flag(req, "labelSelector") or "")
            fields = parse_field_selector(query_flag(req, "fieldSelector") or "")
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        limit_text = query_flag(req, "limit")
        try:
            limit = int(limit_text) if limit_text else 0
        except ValueError:
            raise bad_request(f"limit: Invalid value: {json.dumps(limit_text)}") from None
        token = query_flag(req, "continue")
        prefix = f"{namespace}/" if namespace is not None else ""
        items: list[bytes] = []
        with self._store_lock:
            start = ""
            if token:
                rv, start = decode_continue(token)
                if rv < self._compacted_rv:
                    raise ApiError(
                        status_response(
                            410,
                            EXPIRED_MSG,
                            reason="Expired",
                        )
                    )
            keys, objects = self._keys[rt.kind], self._objects[rt.kind]
            index = bisect.bisect_left(keys, prefix + start)
            end = bisect.bisect_left(keys, prefix[:-1] + KEY_RANGE_END) if prefix else len(keys)
            last = ""
            while index < end and (limit <= 0 or len(items) < limit):
                key = keys[index]
                index += 1
                stored = objects[key]
                if labels and not all(r.matches(stored.labels) for r in labels):
                    continue
                if fields:
                    obj_ns, _, obj_name = key.partition("/")
                    values = {"metadata.name": obj_name, "metadata.namespace": obj_ns}
                    if not all((values[f] == v) == equal for f, equal, v in fields):
                        continue
                last = key
                items.append(stored.item)  # as on a real server, without kind/apiVersion
            list_meta: Obj = {"resourceVersion": str(self._rv)}
            if limit > 0 and index < end and len(items) >= limit:
                list_meta["continue"] = encode_continue(self._rv, last[len(prefix) :])
                if not labels and not fields:
                    list_meta["remainingItemCount"] = end - index
        head = f'{{"kind":"{rt.kind}List","apiVersion":"{rt.api_version}","metadata":'
        body = b"".join(
            (
                head.encode(),
                json.dumps(list_meta, separators=(",", ":")).encode(),
                b',"items":[',
                b",".join(items),
                b"]}",
            )
        )
        return Response(200, body)

    def _delete(self, rt: ResourceType, req: Request) -> Response:
        namespace, name = req.params["namespace"], req.params["name"]
        dry_run, _ = self._options(req)
        options = self._decode_body(req) if req.body else {}
        if not isinstance(options, dict):
            raise bad_request("json: cannot unmarshal into Go value of type v1.DeleteOptions")
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise ApiError(
                status_response(
                    422,
                    'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported'
                    f' value: "{policy}": supported values: "Foreground", "Background",'
                    ' "Orphan", "nil"',
                )
            )
        preconditions = options.get("preconditions") or {}
        key = f"{namespace}/{name}"
        with self._store_lock:
            obj = self._load(rt, key)
            if obj is None:
                raise rt.not_found(name)
            meta = obj["metadata"]
            if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
                raise rt.conflict(
                    name,
                    f"Precondition failed: UID in precondition: {preconditions['uid']},"
                    f" UID in object meta: {meta['uid']}",
                )
            wanted_rv = preconditions.get("resourceVersion")
            if wanted_rv and wanted_rv != meta["resourceVersion"]:
                raise rt.conflict(
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {wanted_rv},"
                    f" ResourceVersion in object meta: {meta['resourceVersion']}",
                )
            if not dry_run:
                self._unstore(rt.kind, key)
                self._next_rv()
        if rt.returns_deleted:
            return Response(200, obj)
        return status_response(200, "", reason="", details=rt.details(name, uid=meta["uid"]))

    def _replace(self, rt: ResourceType, req: Request) -> Response:
        namespace, name = req.params["namespace"], req.params["name"]
        dry_run, validation = self._options(req)
        body = self._check_type(rt, self._decode_body(req))
        self._check_identity(body, namespace, name)
        with self._store_lock:
            old = self._load(rt, f"{namespace}/{name}")
            if old is None:
                raise rt.not_found(name)
            wanted_rv = body["metadata"].get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise rt.conflict(name, MODIFIED)
            warnings = self._prepare(rt, body, old, namespace, validation=validation)
            managed = self._update_entry(
                rt,
                self._manager(req),
                self._owned_fields(body),
                (old["metadata"].get("managedFields") or []),
            )
            new = self._finish(rt, body, namespace, old, managed)
            if not self._commit(rt, namespace, new, old, dry_run):
                new = old
        return self._warned(Response(200, new), warnings)

    def _patch(self, rt: ResourceType, req: Request) -> Response:
        content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == APPLY_PATCH:
            return self._apply(rt, req)
        if content_type not in (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH):
            accepted = ", ".join((JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_PATCH))
            return status_response(
                415,
                "the body of the request was in an unknown format - accepted media types"
                f" include: {accepted}",
            )
        namespace, name = req.params["namespace"], req.params["name"]
        dry_run, validation = self._options(req)
        patch = self._decode_body(req)
        if content_type != JSON_PATCH and not isinstance(patch, dict):
            raise bad_request(
                "json: cannot unmarshal into Go value of type map[string]interface {}"
            )
        with self._store_lock:
            old = self._load(rt, f"{namespace}/{name}")
            if old is None:
                raise rt.not_found(name)
            if content_type == JSON_PATCH:
                try:
                    patched = json_patch(clone(old), patch)
                except JsonPatchError as exc:
                    raise ApiError(status_response(422, str(exc))) from None
                touched = fields_v1(
                    {
                        k: patched.get(k)
                        for k in ("metadata", "spec")
                        if patched.get(k) != old.get(k)
                    }
                )
            else:
                patch_meta = patch.get("metadata")
                wanted_rv = (
                    patch_meta.get("resourceVersion") if isinstance(patch_meta, dict) else None
                )
                if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                    raise rt.conflict(name, MODIFIED)
                patched = merge_patch(clone(old), patch)
                touched = fields_v1({k: patch[k] for k in ("metadata", "spec") if k in patch})
            patched = self._check_type(rt, patched)
            meta = patched.setdefault("metadata", {})
            if meta.get("name") != name:
                errs = FieldErrors()
                errs.invalid("metadata.name", meta.get("name"), "field is immutable")
                raise errs.error(rt, name)
            touched_meta = {
                k: v for k, v in (touched.get("f:metadata") or {}).items() if k[2:] in OWNED_META
            }
            touched = {"f:spec": touched["f:spec"]} if "f:spec" in touched else {}
            if touched_meta:
                touched["f:metadata"] = touched_meta
            warnings = self._prepare(rt, patched, old, namespace, validation)
            managed = self._update_entry(
                rt, self._manager(req), touched, old["metadata"].get("managedFields") or []
            )
            new = self._finish(rt, patched, namespace, old, managed)
            if not self._commit(rt, namespace, new, old, dry_run):
                new = old
        return self._warned(Response(200, new), warnings)

    def _apply(self, rt: ResourceType, req: Request) -> Response:
        """Server-side apply, simplified as the module docstring says."""
        namespace, name = req.params["namespace"], req.params["name"]
        dry_run, validation = self._options(req)
        manager = query_flag(req, "fieldManager")
        if not manager:
            raise ApiError(
                status_response(
                    422,
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value:'
                    " is required for apply patch",
                    details={
                        "group": "meta.k8s.io",
                        "kind": "PatchOptions",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value: is required for apply patch",
                                "field": "fieldManager",
                            }
                        ],
                    },
                )
            )
        force = (query_flag(req, "force") or "").lower() == "true"
        applied = self._check_type(rt, self._decode_body(req, yaml_ok=True))
        self._check_identity(applied, namespace, name)
        applied.pop("status", None)  # the main resource ignores status
        # The decoder sees the applied configuration alone: an unknown field is an
        # error, and what the applier owns is what it sent.
        warnings, _ = self._decode(rt, applied, namespace, validation, apply=True)
        owned = self._owned_fields(applied)
        with self._store_lock:
            old = self._load(rt, f"{namespace}/{name}")
            if old is None:
                candidate = clone(applied)
                managed_in: list[Obj] = []
            else:
                wanted_rv = applied["metadata"].get("resourceVersion")
                if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                    raise rt.conflict(name, MODIFIED)
                managed_in = old["metadata"].get("managedFields") or []
                if not force:
                    self._check_conflicts(rt, name, manager, applied, old, managed_in)
                candidate = clone(old)
                meta, applied_meta = candidate["metadata"], applied["metadata"]
                for key in ("labels", "annotations"):
                    merged = self._apply_map(
                        manager, key, meta.get(key) or {}, applied_meta.get(key) or {}, managed_in
                    )
                    if merged:
                        meta[key] = merged
                    else:
                        meta.pop(key, None)
                for key in ("ownerReferences", "finalizers"):
                    if key in applied_meta:
                        meta[key] = applied_meta[key]
                if "spec" in applied:
                    candidate["spec"] = clone(applied["spec"])
            _, missing = self._decode(rt, candidate, namespace, "Ignore")
            self._settle(rt, candidate, old, missing)
            managed = self._apply_entries(rt, manager, owned, managed_in)
            new = self._finish(rt, candidate, namespace, old, managed)
            if not self._commit(rt, namespace, new, old, dry_run):
                new = old  # type: ignore[assignment]
            elif dry_run and old is None:
                del new["metadata"]["resourceVersion"]
        return self._warned(Response(201 if old is None else 200, new), warnings)

    @staticmethod
    def _owners(managed: list[Obj], manager: str, *path: str) -> set[str]:
        """Managers other than the applier that own the field at `path`."""
        owners = set()
        for entry in managed:
            if entry.get("manager") == manager and entry.get("operation") == "Apply":
                continue
            node: Any = entry.get("fieldsV1") or {}
            for step in path:
                node = node.get(step) if isinstance(node, dict) else None
            if node is not None:
                owners.add(str(entry.get("manager")))
        return owners

    def _check_conflicts(
        self,
        rt: ResourceType,
        name: str,
        manager: str,
        applied: Obj,
        old: Obj,
        managed: list[Obj],
    ) -> None:
        found: list[tuple[str, str]] = []
        spec_owners = sorted(self._owners(managed, manager, "f:spec"))
        if spec_owners and "spec" in applied:
            for path in conflicts(applied["spec"], old.get("spec") or {}, ".spec"):
                found.extend((owner, path) for owner in spec_owners)
        for key in ("labels", "annotations"):
            current = old["metadata"].get(key) or {}
            for label, value in (applied["metadata"].get(key) or {}).items():
                if label in current and current[label] != value:
                    owners = self._owners(managed, manager, "f:metadata", f"f:{key}", f"f:{label}")
                    found.extend((owner, f".metadata.{key}.{label}") for owner in sorted(owners))
        if not found:
            return
        texts = [f'conflict with "{owner}" using {rt.api_version}: {path}' for owner, path in found]
        plural = "s" if len(found) > 1 else ""
        causes = [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{owner}" using {rt.api_version}',
                "field": path,
            }
            for owner, path in found
        ]
        raise ApiError(
            status_response(
                409,
                f"Apply failed with {len(found)} conflict{plural}: " + "; ".join(texts),
                details=rt.details(name, causes=causes),
            )
        )

    @staticmethod
    def _apply_map(manager: str, key: str, current: Obj, applied: Obj, managed: list[Obj]) -> Obj:
        """Labels/annotations after an apply: the applied keys set; keys this manager
        applied before and omits now removed, unless another manager set them too."""
        mine: set[str] = set()
        others: set[str] = set()
        for entry in managed:
            meta_fields = (entry.get("fieldsV1") or {}).get("f:metadata") or {}
            is_mine = entry.get("manager") == manager and entry.get("operation") == "Apply"
            (mine if is_mine else others).update(k[2:] for k in meta_fields.get(f"f:{key}") or {})
        out = {k: v for k, v in current.items() if k in applied or k not in mine or k in others}
        out.update(applied)
        return out

    @staticmethod
    def _apply_entries(rt: ResourceType, manager: str, owned: Obj, managed: list[Obj]) -> list[Obj]:
        """managedFields after an apply: the applier owns what it sent; the other
        managers lose `spec` if it sent one (it is owned as a whole), and the labels and
        annotations it set. An apply that owns what it owned keeps its entry's time."""
        taken_meta = owned.get("f:metadata") or {}
        out: list[Obj] = []
        placed = False
        entry_for_me = {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": rt.api_version,
            "time": now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": owned,
        }
        for entry in managed:
            if entry.get("manager") == manager and entry.get("operation") == "Apply":
                same = entry.get("fieldsV1") == owned and entry.get("apiVersion") == rt.api_version
                out.append(entry if same else entry_for_me)
                placed = True
                continue
            fields = clone(entry.get("fieldsV1") or {})
            if "f:spec" in owned:
                fields.pop("f:spec", None)
            meta_fields = fields.get("f:metadata") or {}
            for key in ("f:labels", "f:annotations"):
                if key in meta_fields:
                    for label in taken_meta.get(key) or {}:
                        meta_fields[key].pop(label, None)
                    if not meta_fields[key]:
                        del meta_fields[key]
            if "f:metadata" in fields and not fields["f:metadata"]:
                del fields["f:metadata"]
            if fields:
                out.append(
                    entry if fields == entry.get("fieldsV1") else {**entry, "fieldsV1": fields}
                )
        if not placed:
            out.append(entry_for_me)
        return out

    # -- the Python side, for tests and benchmarks --------------------------------------
    def reset(self) -> None:
        """Forget every object, the write counts and the per-object faults (the
        resourceVersion keeps growing, as a real server's does)."""
        with self._store_lock:
            for kind in KINDS:
                self._objects[kind].clear()
                self._keys[kind].clear()
            self.writes.clear()
            self._object_faults.clear()
            self._next_rv()

    def expire_continue_tokens(self) -> None:
        """Every continue token handed out so far now answers 410 Expired, as after
        an etcd compaction."""
        with self._store_lock:
            self._compacted_rv = self._rv + 1
            self._next_rv()

    def objects(self, kind: str, namespace: str | None = None) -> list[Obj]:
        """Deep copies of the stored objects of `kind`, in key (namespace, name) order."""
        rt = resource_type(kind)
        with self._store_lock:
            objects = self._objects[rt.kind]
            keys = self._keys[rt.kind]
            if namespace is not None:
                lo = bisect.bisect_left(keys, f"{namespace}/")
                hi = bisect.bisect_left(keys, namespace + KEY_RANGE_END)
                keys = keys[lo:hi]
            selected = [objects[key].item for key in keys]
        head = {"kind": rt.kind, "apiVersion": rt.api_version}
        return [{**head, **json.loads(item)} for item in selected]

    def get_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        rt = resource_type(kind)
        with self._store_lock:
            return self._load(rt, f"{namespace}/{name}")

    def put_object(
        self,
        kind: str,
        namespace: str,
        obj: Obj,
        *,
        manager: str | None = None,
        validate: bool = True,
    ) -> None:
        """Store `obj` directly, bypassing HTTP (no fault, no write counted), as the
        server would store it: decoded, defaulted, validated (ValueError when invalid,
        unless `validate=False`) and completed with uid, resourceVersion,
        creationTimestamp, generation, status. An object of that name is replaced.
        `manager` records a server-side apply of the object by that field manager
        (as if the orchestrator had applied it); without it the object has no
        managedFields, like one created by a tool that did not record them."""
        rt = resource_type(kind)
        body = clone(obj)
        body.setdefault("apiVersion", rt.api_version)
        body.setdefault("kind", rt.kind)
        try:
            self._check_type(rt, body)
            meta = body.setdefault("metadata", {})
            if meta.get("namespace") not in (None, namespace):
                raise bad_request("the namespace of the object does not match the namespace")
            status = body.pop("status", None)
            owned = self._owned_fields(body) if manager else {}
            with self._store_lock:
                old = self._load(rt, f"{namespace}/{meta.get('name')}")
                if validate:
                    _, missing = self._decode(rt, body, namespace, "Ignore")
                    self._settle(rt, body, old, missing)
                else:
                    BEHAVIOUR[rt.kind][0](body, old, self._alloc)
                managed = meta.get("managedFields") or (
                    self._apply_entries(rt, manager, owned, []) if manager else []
                )
                new = self._finish(rt, body, namespace, old, managed)
                if status is not None:
                    new["status"] = status
                new["metadata"]["resourceVersion"] = self._next_rv()
                self._store(rt.kind, namespace, new)
        except ApiError as error:
            raise ValueError(json.dumps(error.response.body)) from None

    def delete_object(self, kind: str, namespace: str, name: str) -> bool:
        """Remove an object directly; False when there was none."""
        rt = resource_type(kind)
        with self._store_lock:
            key = f"{namespace}/{name}"
            if key not in self._objects[rt.kind]:
                return False
            self._unstore(rt.kind, key)
            self._next_rv()
            return True

    def edit_object(
        self, kind: str, namespace: str, name: str, fn: Callable[[Obj], Obj | None]
    ) -> Obj:
        """Change a stored object behind the orchestrator's back, like `kubectl edit`
        without a field manager: `fn` gets a deep copy to mutate (or returns a
        replacement). No validation; the resourceVersion is bumped if anything changed,
        the generation too if `spec` did. Returns a copy of the stored result."""
        rt = resource_type(kind)
        with self._store_lock:
            key = f"{namespace}/{name}"
            old = self._load(rt, key)
            if old is None:
                raise KeyError(f"{kind} {namespace}/{name} does not exist")
            edited = clone(old)
            replaced = fn(edited)
            new = clone(replaced if replaced is not None else edited)
            if new != old:
                meta = new.setdefault("metadata", {})
                meta["name"], meta["namespace"] = name, namespace
                meta["uid"] = old["metadata"]["uid"]
                if new.get("spec") != old.get("spec"):
                    meta["generation"] = old["metadata"].get("generation", 1) + 1
                meta["resourceVersion"] = self._next_rv()
                self._store(rt.kind, namespace, new)
            return clone(new)  # type: ignore[no-any-return]

    def kubeconfig(self, namespace: str) -> str:
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: standin\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: standin\n  user:\n    token: standin\n"
            "contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n"
            f"    namespace: {namespace}\n"
            "current-context: standin\n"
        )
