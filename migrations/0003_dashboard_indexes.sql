-- The job dashboard (issue 6): the reads it makes often, served by indexes.
-- depends: 0002_schedule_sync
-- transactional: false
--
-- The overview counts the last hour's webhook events by source, status and minute.
-- With source and status in the time index, that count is an index-only scan of the
-- hour (no heap visits), whatever the size of the table; the key is unchanged, so the
-- same index still serves the events list's keyset pages. It replaces the narrower
-- index instead of adding one beside it: the events table is written on every
-- webhook, and every extra index costs there. CONCURRENTLY (hence not transactional)
-- keeps webhook ingestion running while a large table is indexed.
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_webhook_events_received_cover
    ON orchestrator_webhook_events (received_at DESC, id DESC) INCLUDE (source, status);

DROP INDEX CONCURRENTLY IF EXISTS ix_webhook_events_received;

-- The schedules page lists every team's schedules newest first (keyset on created_at, id).
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_pipeline_schedules_created
    ON orchestrator_pipeline_schedules (created_at DESC, id DESC);
