-- The orchestrator's tables (SPEC §6). Later issues add columns in new files.
-- depends:

CREATE TABLE orchestrator_provisioning_runs (
    id               UUID PRIMARY KEY,
    kind             VARCHAR(16)  NOT NULL DEFAULT 'provision'
                     CHECK (kind IN ('provision', 'deprovision')),
    org_id           VARCHAR(64)  NOT NULL,
    team_node_id     VARCHAR(64)  NOT NULL,
    idempotency_key  VARCHAR(128),
    status           VARCHAR(32)  NOT NULL
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    request          JSONB        NOT NULL DEFAULT '{}'::jsonb,
    request_hash     VARCHAR(64),
    steps            JSONB        NOT NULL DEFAULT '[]'::jsonb,
    error            TEXT,
    -- a freshly issued team token, Fernet-encrypted until its one delivering read
    team_token_encrypted TEXT,
    team_token_delivered_at TIMESTAMP,
    attempts         INTEGER      NOT NULL DEFAULT 0,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    created_at       TIMESTAMP    NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMP    NOT NULL DEFAULT NOW(),
    CONSTRAINT uq_provisioning_runs_idempotency UNIQUE (org_id, team_node_id, idempotency_key)
);
CREATE INDEX ix_provisioning_runs_created ON orchestrator_provisioning_runs (created_at DESC, id DESC);
CREATE INDEX ix_provisioning_runs_team ON orchestrator_provisioning_runs (org_id, team_node_id, created_at DESC);
CREATE INDEX ix_provisioning_runs_status ON orchestrator_provisioning_runs (status, updated_at);

CREATE TABLE orchestrator_pipeline_schedules (
    id               UUID PRIMARY KEY,
    org_id           VARCHAR(64)  NOT NULL,
    team_node_id     VARCHAR(64)  NOT NULL,
    schedule_type    VARCHAR(32)  NOT NULL,
    cron_expression  VARCHAR(64)  NOT NULL,
    timezone         VARCHAR(64)  NOT NULL DEFAULT 'UTC',
    k8s_cronjob_name VARCHAR(128),
    enabled          BOOLEAN      NOT NULL DEFAULT TRUE,
    sync_status      VARCHAR(16)  NOT NULL DEFAULT 'pending'
                     CHECK (sync_status IN ('pending', 'synced', 'error')),
    sync_error       TEXT,
    last_synced_at   TIMESTAMP,
    last_run_at      TIMESTAMP,
    created_at       TIMESTAMP    NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMP    NOT NULL DEFAULT NOW(),
    CONSTRAINT uq_pipeline_schedules_team_type UNIQUE (org_id, team_node_id, schedule_type)
);
CREATE INDEX ix_pipeline_schedules_sync ON orchestrator_pipeline_schedules (sync_status);

CREATE TABLE orchestrator_webhook_events (
    id               UUID PRIMARY KEY,
    source           VARCHAR(32)  NOT NULL,
    delivery_key     VARCHAR(256) NOT NULL,
    event_type       VARCHAR(128),
    status           VARCHAR(32)  NOT NULL
                     CHECK (status IN ('received', 'queued', 'ignored', 'unroutable',
                                       'throttled', 'dispatched', 'failed')),
    status_history   JSONB        NOT NULL DEFAULT '[]'::jsonb,
    headers          JSONB        NOT NULL DEFAULT '{}'::jsonb,
    payload          JSONB,
    routing_identifiers JSONB     NOT NULL DEFAULT '{}'::jsonb,
    org_id           VARCHAR(64),
    team_node_id     VARCHAR(64),
    matched_by       VARCHAR(64),
    attempts         INTEGER      NOT NULL DEFAULT 0,
    last_error       TEXT,
    agent_run_id     UUID,
    received_at      TIMESTAMP    NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMP    NOT NULL DEFAULT NOW(),
    CONSTRAINT uq_webhook_events_delivery UNIQUE (source, delivery_key)
);
CREATE INDEX ix_webhook_events_received ON orchestrator_webhook_events (received_at DESC, id DESC);
CREATE INDEX ix_webhook_events_status ON orchestrator_webhook_events (status, updated_at);
CREATE INDEX ix_webhook_events_team ON orchestrator_webhook_events (org_id, team_node_id, received_at DESC);

CREATE TABLE orchestrator_agent_runs (
    id               UUID PRIMARY KEY,
    org_id           VARCHAR(64)  NOT NULL,
    team_node_id     VARCHAR(64)  NOT NULL,
    agent_name       VARCHAR(128) NOT NULL,
    trigger_source   VARCHAR(32)  NOT NULL
                     CHECK (trigger_source IN ('slack', 'github', 'pagerduty', 'incidentio',
                                               'coralogix', 'generic', 'api')),
    event_id         UUID REFERENCES orchestrator_webhook_events (id) ON DELETE SET NULL,
    status           VARCHAR(32)  NOT NULL
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    request          JSONB        NOT NULL DEFAULT '{}'::jsonb,
    result           JSONB,
    error            TEXT,
    attempts         INTEGER      NOT NULL DEFAULT 0,
    created_at       TIMESTAMP    NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMP    NOT NULL DEFAULT NOW(),
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP
);
CREATE INDEX ix_agent_runs_created ON orchestrator_agent_runs (created_at DESC, id DESC);
CREATE INDEX ix_agent_runs_team ON orchestrator_agent_runs (org_id, team_node_id, created_at DESC);
CREATE INDEX ix_agent_runs_status ON orchestrator_agent_runs (status, updated_at);
CREATE INDEX ix_agent_runs_event ON orchestrator_agent_runs (event_id);

CREATE TABLE orchestrator_audit_log (
    id               BIGSERIAL PRIMARY KEY,
    at               TIMESTAMP    NOT NULL DEFAULT NOW(),
    actor            VARCHAR(256) NOT NULL,
    action           VARCHAR(64)  NOT NULL,
    org_id           VARCHAR(64),
    team_node_id     VARCHAR(64),
    subject          VARCHAR(256),
    request_id       VARCHAR(128),
    detail           JSONB        NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX ix_audit_log_at ON orchestrator_audit_log (at DESC, id DESC);
CREATE INDEX ix_audit_log_org ON orchestrator_audit_log (org_id, at DESC);
CREATE INDEX ix_audit_log_subject ON orchestrator_audit_log (subject);

CREATE TABLE orchestrator_job_failures (
    message_id       VARCHAR(64)  PRIMARY KEY,
    actor            VARCHAR(128) NOT NULL,
    queue            VARCHAR(64)  NOT NULL,
    arguments        JSONB        NOT NULL DEFAULT '{}'::jsonb,
    retries          INTEGER      NOT NULL DEFAULT 0,
    error            TEXT,
    traceback        TEXT,
    failed_at        TIMESTAMP    NOT NULL DEFAULT NOW()
);
CREATE INDEX ix_job_failures_failed_at ON orchestrator_job_failures (failed_at DESC);
