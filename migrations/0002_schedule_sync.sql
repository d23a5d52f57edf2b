-- Schedules: what the reconciler needs to tell "in sync" from "edited behind our back"
-- depends: 0001_initial
-- without reading objects one by one, and a notification so a change reaches the
-- cluster within seconds instead of at the next interval (SPEC §7).

-- metadata.generation of the CronJob as the orchestrator last wrote it: a spec edit by
-- anybody else bumps it, so a converged pass compares two integers per object.
ALTER TABLE orchestrator_pipeline_schedules ADD COLUMN k8s_generation BIGINT;

CREATE INDEX ix_pipeline_schedules_team
    ON orchestrator_pipeline_schedules (org_id, team_node_id, created_at);

-- Only changes of what the CronJob is built from wake the reconciler; its own sync
-- status writes must not, or every pass would trigger the next one.
CREATE FUNCTION orchestrator_schedules_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('orchestrator_schedules', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trg_pipeline_schedules_insert_delete
    AFTER INSERT OR DELETE ON orchestrator_pipeline_schedules
    FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_schedules_changed();

CREATE TRIGGER trg_pipeline_schedules_update
    AFTER UPDATE ON orchestrator_pipeline_schedules
    FOR EACH ROW
    WHEN (OLD.cron_expression IS DISTINCT FROM NEW.cron_expression
          OR OLD.timezone IS DISTINCT FROM NEW.timezone
          OR OLD.enabled IS DISTINCT FROM NEW.enabled
          OR OLD.org_id IS DISTINCT FROM NEW.org_id
          OR OLD.team_node_id IS DISTINCT FROM NEW.team_node_id
          OR OLD.schedule_type IS DISTINCT FROM NEW.schedule_type)
    EXECUTE FUNCTION orchestrator_schedules_changed();
