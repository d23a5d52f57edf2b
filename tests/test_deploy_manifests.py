"""The orchestrator's own Kubernetes deployment (`deploy/k8s/`): every manifest is a
valid object, and the numbers and names that must agree — with each other, with the
Procfile, with the settings and with what the code asks of the Kubernetes API — do."""

from __future__ import annotations

import ast
import copy
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from typing import Any

import kubernetes_validate
import pytest
import yaml

from orchestrator.k8s.naming import MANAGED_BY, MANAGED_BY_KEY
from orchestrator.settings import REQUIRED, Settings
from tests.conftest import REPO
from web import gunicorn_conf

DEPLOY = REPO / "deploy" / "k8s"
# The oldest Kubernetes minor these manifests target and the newest one
# kubernetes-validate ships schemas for: valid on both, valid in between.
K8S_VERSIONS = ("1.31", "1.37")
NOT_IN_KUSTOMIZATION = {"kustomization.yaml", "secret.example.yaml", "namespace.yaml"}
VERBS = {"get", "list", "create", "patch", "delete"}
SECRET_NAME = "incidentfox-orchestrator"
SETTING_NAMES = {name.upper() for name in Settings.model_fields}

Doc = dict[str, Any]


# -- loading ----------------------------------------------------------------------------
@cache
def manifests() -> dict[str, list[Doc]]:
    """Every YAML document under deploy/k8s, by file name."""
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        for path in sorted(DEPLOY.glob("*.yaml"))
    }


def objects() -> Iterator[tuple[str, Doc]]:
    """(file, object) for every Kubernetes object (the kustomization is not one)."""
    for name, docs in manifests().items():
        if name != "kustomization.yaml":
            for doc in docs:
                yield name, doc


def kustomization() -> Doc:
    (doc,) = manifests()["kustomization.yaml"]
    return doc


def one(kind: str, name: str) -> Doc:
    found = [d for _, d in objects() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def deployments() -> dict[str, Doc]:
    """Deployments by component (web, worker, scheduler)."""
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for _, d in objects()
        if d["kind"] == "Deployment"
    }


def workloads() -> list[Doc]:
    return [d for _, d in objects() if d["kind"] in ("Deployment", "Job")]


def containers(workload: Doc) -> list[Doc]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_value(container: Doc, name: str) -> str:
    (value,) = [e["value"] for e in container.get("env", []) if e["name"] == name]
    return str(value)


def port_number(container: Doc, port: int | str) -> int:
    """A probe's or Service's port (number or name) as a port this container exposes."""
    ports = {p["containerPort"]: p for p in container.get("ports", [])}
    if isinstance(port, int):
        assert port in ports, f"{container['name']} exposes no port {port}"
        return port
    named = [p["containerPort"] for p in ports.values() if p.get("name") == port]
    assert named, f"{container['name']} has no port named {port!r}"
    return int(named[0])


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def provided_variables(container: Doc) -> set[str]:
    """Every variable the container gets: its env plus the keys of the ConfigMap and the
    Secret (as secret.example.yaml defines it) it reads with envFrom."""
    configmaps = {d["metadata"]["name"]: d for _, d in objects() if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for _, d in objects() if d["kind"] == "Secret"}
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            cm = configmaps[source["configMapRef"]["name"]]
            names |= {k for k, v in cm["data"].items() if str(v).strip()}
        if "secretRef" in source:
            secret = secrets[source["secretRef"]["name"]]
            names |= {k for k, v in secret["stringData"].items() if str(v).strip()}
    return names


def managed_kinds() -> set[tuple[str, str]]:
    """(kind, apiVersion) of every `Kind(...)` orchestrator/k8s/client.py declares, read
    from the source: importing the kubernetes client alone takes seconds."""
    tree = ast.parse((REPO / "orchestrator" / "k8s" / "client.py").read_text())
    kinds = {
        (node.args[0].value, node.args[1].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Kind"
        and all(isinstance(arg, ast.Constant) for arg in node.args[:2])
    }
    assert kinds, "orchestrator/k8s/client.py declares no Kind(...)"
    return kinds


# -- schema ----------------------------------------------------------------------------
def test_every_file_holds_objects() -> None:
    expected = {
        "configmap.yaml",
        "kustomization.yaml",
        "migrate-job.yaml",
        "namespace.yaml",
        "rbac.yaml",
        "scheduler.yaml",
        "secret.example.yaml",
        "serviceaccount.yaml",
        "web.yaml",
        "worker.yaml",
    }
    assert set(manifests()) == expected
    assert all(manifests()[name] for name in expected)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_validates_strictly(version: str) -> None:
    failures = []
    for name, doc in objects():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{name} {doc['kind']}: {exc.message} at {list(exc.path)}")
    assert failures == []


def test_strict_validation_catches_a_misspelt_field() -> None:
    web = copy.deepcopy(deployments()["web"])
    probe = web["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    web["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = probe
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, K8S_VERSIONS[-1], strict=True)


# -- kustomization ---------------------------------------------------------------------
def test_kustomization_lists_every_manifest_but_the_secret_example_and_namespace() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed))
    assert all((DEPLOY / name).is_file() for name in listed)
    assert set(listed) == set(manifests()) - NOT_IN_KUSTOMIZATION
    assert kustomization()["namespace"] == "incidentfox"
    assert [image["name"] for image in kustomization()["images"]] == ["incidentfox-orchestrator"]


def test_every_container_uses_the_one_image_the_kustomization_rewrites() -> None:
    images = {c["image"] for w in workloads() for c in containers(w)}
    assert images == {"incidentfox-orchestrator"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_one_namespace_and_no_secret() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    assert {d["metadata"].get("namespace") for d in docs} == {"incidentfox"}
    assert not [d for d in docs if d["kind"] in ("Secret", "Namespace")]
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    assert {s["namespace"] for s in binding["subjects"]} == {"incidentfox"}
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"incidentfox-orchestrator:latest"}


# -- RBAC ------------------------------------------------------------------------------
def test_role_grants_exactly_what_the_kubernetes_client_uses() -> None:
    assert not [d for _, d in objects() if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    (role,) = [d for _, d in objects() if d["kind"] == "Role"]
    granted = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames…
        granted |= {
            (group, resource, verb)
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }
    managed = {
        (api_version.rpartition("/")[0], kind.lower() + "s")
        for kind, api_version in managed_kinds()
    }
    assert managed == {("batch", "cronjobs"), ("apps", "deployments"), ("", "services")}
    assert granted == {(g, r, v) for g, r in managed for v in VERBS}


def test_only_worker_and_scheduler_hold_the_rbac_service_account() -> None:
    (role,) = [d for _, d in objects() if d["kind"] == "Role"]
    (binding,) = [d for _, d in objects() if d["kind"] == "RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    (subject,) = binding["subjects"]
    assert subject["kind"] == "ServiceAccount"
    account = one("ServiceAccount", subject["name"])
    assert account["automountServiceAccountToken"] is False  # pods opt in
    for component, deployment in deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        if component in ("worker", "scheduler"):
            assert pod["serviceAccountName"] == subject["name"]
            assert pod["automountServiceAccountToken"] is True
        else:
            assert pod.get("serviceAccountName", "default") != subject["name"]
            assert pod["automountServiceAccountToken"] is False
    job = one("Job", "incidentfox-orchestrator-migrate")["spec"]["template"]["spec"]
    assert job.get("serviceAccountName", "default") != subject["name"]
    assert job["automountServiceAccountToken"] is False


# -- processes -------------------------------------------------------------------------
def test_every_command_is_a_procfile_entry_and_every_entry_runs() -> None:
    procfile = {
        tuple(shlex.split(line.split(":", 1)[1]))
        for line in (REPO / "Procfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert procfile == {
        ("orchestrator", "migrate"),
        ("orchestrator", "web"),
        ("orchestrator", "worker"),
        ("orchestrator", "scheduler"),
    }
    commands = [
        tuple(c.get("command", [])) + tuple(c.get("args", []))
        for w in workloads()
        for c in containers(w)
    ]
    assert set(commands) == procfile, commands
    job = one("Job", "incidentfox-orchestrator-migrate")
    assert containers(job)[0]["command"] == ["orchestrator", "migrate"]
    for component, deployment in deployments().items():
        assert containers(deployment)[0]["command"] == ["orchestrator", component]


def test_every_process_gets_the_variables_spec_10_requires() -> None:
    for workload in workloads():
        for container in containers(workload):
            role = container["command"][1]
            missing = set(REQUIRED[role]) - provided_variables(container)
            assert not missing, f"{workload['metadata']['name']} lacks {sorted(missing)}"


def test_every_variable_is_a_setting_of_the_orchestrator() -> None:
    """A misspelt key would be ignored silently (settings ignore unknown variables)."""
    configmap = one("ConfigMap", "incidentfox-orchestrator")
    secret = one("Secret", SECRET_NAME)
    names = set(configmap["data"]) | set(secret["stringData"])
    names |= {e["name"] for w in workloads() for c in containers(w) for e in c.get("env", [])}
    assert names - SETTING_NAMES == set()


def test_envfrom_reads_the_configmap_and_the_secret_of_the_example() -> None:
    assert one("Secret", SECRET_NAME)  # the example defines the name the pods read
    for deployment in deployments().values():
        sources = containers(deployment)[0]["envFrom"]
        assert {"configMapRef": {"name": "incidentfox-orchestrator"}} in sources
        assert {"secretRef": {"name": SECRET_NAME}} in sources
    # The migrate Job runs first, possibly before the ConfigMap exists: Secret only.
    job = one("Job", "incidentfox-orchestrator-migrate")
    assert containers(job)[0]["envFrom"] == [{"secretRef": {"name": SECRET_NAME}}]


def test_the_secret_example_holds_only_placeholders() -> None:
    (name,) = [n for n, d in objects() if d["kind"] == "Secret"]
    assert name == "secret.example.yaml"
    secret = one("Secret", SECRET_NAME)
    assert "data" not in secret
    assert all("REPLACE_ME" in value for value in secret["stringData"].values())


def test_the_managed_namespace_is_the_pods_own() -> None:
    """K8S_NAMESPACE must be where the Role grants access: the pod's own namespace."""
    assert "K8S_NAMESPACE" not in one("ConfigMap", "incidentfox-orchestrator")["data"]
    for deployment in deployments().values():
        (env,) = [e for e in containers(deployment)[0]["env"] if e["name"] == "K8S_NAMESPACE"]
        assert env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


# -- web -------------------------------------------------------------------------------
def test_web_probes_health_and_ready_on_its_port() -> None:
    (web,) = containers(deployments()["web"])
    port = int(env_value(web, "PORT"))
    assert port == Settings.model_fields["port"].default == 8070
    for probe, path in (
        ("startupProbe", "/ready"),
        ("livenessProbe", "/health"),
        ("readinessProbe", "/health"),
    ):
        get = web[probe]["httpGet"]
        assert get["path"] == path, probe
        assert port_number(web, get["port"]) == port, probe


def test_the_service_selects_the_web_pods_on_a_port_they_expose() -> None:
    service = one("Service", "incidentfox-orchestrator")
    assert service["spec"]["type"] == "ClusterIP"
    selector = service["spec"]["selector"]
    by_component = deployments()
    for component, deployment in by_component.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert matches(selector, labels) == (component == "web"), component
    (web,) = containers(by_component["web"])
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert port_number(web, port["targetPort"]) == int(env_value(web, "PORT"))


def test_web_drains_before_gunicorn_stops_and_within_the_grace_period() -> None:
    pod = deployments()["web"]["spec"]["template"]["spec"]
    (web,) = pod["containers"]
    command = web["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = int(command[1])
    assert pre_stop >= 1
    assert pod["terminationGracePeriodSeconds"] > pre_stop + gunicorn_conf.graceful_timeout


# -- worker and scheduler --------------------------------------------------------------
def test_worker_grace_period_covers_its_shutdown_timeout() -> None:
    pod = deployments()["worker"]["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    timeout = int(env_value(worker, "ORCHESTRATOR_WORKER_SHUTDOWN_TIMEOUT_SECONDS"))
    assert timeout >= 1
    assert pod["terminationGracePeriodSeconds"] > timeout
    configmap = one("ConfigMap", "incidentfox-orchestrator")["data"]
    assert "ORCHESTRATOR_WORKER_SHUTDOWN_TIMEOUT_SECONDS" not in configmap  # one source


@pytest.mark.parametrize(
    ("component", "variable", "default"),
    [
        ("worker", "ORCHESTRATOR_WORKER_METRICS_PORT", 9191),
        ("scheduler", "ORCHESTRATOR_SCHEDULER_METRICS_PORT", 9192),
        ("web", "PORT", 8070),
    ],
)
def test_metrics_ports_agree_with_settings_ports_and_annotations(
    component: str, variable: str, default: int
) -> None:
    template = deployments()[component]["spec"]["template"]
    (container,) = template["spec"]["containers"]
    port = int(env_value(container, variable))
    assert port == default
    name = "http" if component == "web" else "metrics"
    assert port_number(container, name) == port
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_no_port_reaches_the_worker() -> None:
    """$PORT would move the worker's metrics port away from its containerPort."""
    assert "PORT" not in one("ConfigMap", "incidentfox-orchestrator")["data"]
    assert "PORT" not in one("Secret", SECRET_NAME)["stringData"]
    (worker,) = containers(deployments()["worker"])
    assert "PORT" not in {e["name"] for e in worker.get("env", [])}


def test_scheduler_replicas_rely_on_the_advisory_lock_and_shut_down_gracefully() -> None:
    scheduler = deployments()["scheduler"]["spec"]
    if scheduler["replicas"] == 1:
        assert scheduler["strategy"]["type"] == "Recreate"
    else:
        assert scheduler["replicas"] == 2
        assert scheduler["strategy"]["type"] == "RollingUpdate"
    assert scheduler["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


# -- selectors, budgets, resources, hardening ------------------------------------------
def test_each_deployment_selects_its_own_pods_and_only_those() -> None:
    by_component = deployments()
    for component, deployment in by_component.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert set(deployment["spec"]["selector"]) == {"matchLabels"}
        for other, candidate in by_component.items():
            labels = candidate["spec"]["template"]["metadata"]["labels"]
            assert matches(selector, labels) == (other == component), (component, other)
        spread = deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
        for constraint in spread:
            assert constraint["labelSelector"]["matchLabels"] == selector


def test_each_replicated_deployment_has_a_pdb_matching_its_pods() -> None:
    budgets = [d for _, d in objects() if d["kind"] == "PodDisruptionBudget"]
    by_component = deployments()
    covered = set()
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        hits = [
            component
            for component, deployment in by_component.items()
            if matches(selector, deployment["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(hits) == 1, (budget["metadata"]["name"], hits)
        assert budget["spec"]["minAvailable"] == 1
        assert by_component[hits[0]]["spec"]["replicas"] > 1  # else it blocks every drain
        covered.add(hits[0])
    assert covered == {c for c, d in by_component.items() if d["spec"]["replicas"] > 1}
    assert {"web", "worker"} <= covered


def test_every_container_has_resource_requests_and_a_memory_limit() -> None:
    for workload in workloads():
        for container in containers(workload):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
            assert "memory" in resources["limits"], container["name"]


def _quantity(value: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|)", str(value))
    assert match, f"unexpected quantity {value!r}"
    return float(match.group(1)) * units[match.group(2)]


def test_limits_are_not_below_requests() -> None:
    for workload in workloads():
        for container in containers(workload):
            requests, limits = container["resources"]["requests"], container["resources"]["limits"]
            for resource, limit in limits.items():
                assert _quantity(limit) >= _quantity(requests[resource]), container["name"]


def test_every_pod_runs_as_the_images_user_on_a_read_only_root() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    useradd = re.search(r"useradd [^\n]*--uid (\d+)", dockerfile)
    assert useradd, "the Dockerfile creates the user the pods run as"
    uid = int(useradd.group(1))
    for workload in workloads():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["enableServiceLinks"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in containers(workload):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            # gunicorn heartbeats and the prometheus multiprocess dirs live in $TMPDIR.
            (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]]


def test_own_objects_are_not_labelled_as_managed_by_the_orchestrator() -> None:
    """The orchestrator lists, prunes and deletes what carries its managed-by label:
    its own Deployments and Service must never look like a team's objects."""
    for name, doc in objects():
        labels = dict(doc["metadata"].get("labels", {}))
        template = doc.get("spec", {}).get("template", {})
        labels.update(template.get("metadata", {}).get("labels", {}))
        assert labels.get(MANAGED_BY_KEY) != MANAGED_BY, (name, doc["metadata"]["name"])


def test_manifests_directory_is_the_one_the_readme_documents() -> None:
    readme = (REPO / "README.md").read_text()
    assert "## Deploying to Kubernetes" in readme
    assert "kubectl apply -k deploy/k8s" in readme
