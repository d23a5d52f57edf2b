"""The Deployment and Service of a team's dedicated agent (SPEC §8), as plain data.

Pure builders, like `desired_cronjob`: provisioning applies them with server-side apply
and deprovisioning deletes them by name. The selector is fixed at creation by the API
server, so it holds only labels that never change for a team.
"""

from __future__ import annotations

from typing import Any

from orchestrator.k8s.naming import (
    AGENT_SERVICE_PORT,
    dedicated_agent_service,
    team_annotations,
    team_labels,
)

COMPONENT_KEY = "app.kubernetes.io/component"
COMPONENT = "dedicated-agent"


def _labels(org_id: str, team_node_id: str) -> dict[str, str]:
    return {**team_labels(org_id, team_node_id), COMPONENT_KEY: COMPONENT}


def desired_agent_deployment(
    org_id: str,
    team_node_id: str,
    *,
    namespace: str,
    image: str,
    replicas: int,
    cpu: str,
    memory: str,
    config_service_url: str,
) -> dict[str, Any]:
    name = dedicated_agent_service(org_id, team_node_id)
    labels = _labels(org_id, team_node_id)
    probe = {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": team_annotations(org_id, team_node_id),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "agent",
                            "image": image,
                            "ports": [{"name": "http", "containerPort": AGENT_SERVICE_PORT}],
                            "env": [
                                {"name": "ORG_ID", "value": org_id},
                                {"name": "TEAM_NODE_ID", "value": team_node_id},
                                {"name": "CONFIG_SERVICE_URL", "value": config_service_url},
                            ],
                            "resources": {
                                "requests": {"cpu": cpu, "memory": memory},
                                "limits": {"memory": memory},
                            },
                            "readinessProbe": probe,
                            "livenessProbe": {**probe, "initialDelaySeconds": 15},
                        }
                    ]
                },
            },
        },
    }


def desired_agent_service(org_id: str, team_node_id: str, *, namespace: str) -> dict[str, Any]:
    labels = _labels(org_id, team_node_id)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": dedicated_agent_service(org_id, team_node_id),
            "namespace": namespace,
            "labels": labels,
            "annotations": team_annotations(org_id, team_node_id),
        },
        "spec": {
            "selector": labels,
            "ports": [{"name": "http", "port": AGENT_SERVICE_PORT, "targetPort": "http"}],
        },
    }
