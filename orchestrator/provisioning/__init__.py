"""Team provisioning and deprovisioning runs (SPEC §5)."""
