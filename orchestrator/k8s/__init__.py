"""The Kubernetes layer: names and labels of the objects the orchestrator manages."""
