-- Workflows and their append-only event logs.

CREATE TABLE workflows (
    id          TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    title       TEXT,
    status      TEXT NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- One row per event. `json` is the event exactly as subscribers receive it (serialized once,
-- at append). The retry keys live with the event, so a retry is recognised for as long as
-- the event is kept.
CREATE TABLE events (
    workflow_id    TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    json           TEXT NOT NULL,
    event_id       TEXT,
    client_msg_id  TEXT,
    PRIMARY KEY (workflow_id, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX events_by_event_id ON events (workflow_id, event_id)
    WHERE event_id IS NOT NULL;
CREATE UNIQUE INDEX events_by_client_msg_id ON events (workflow_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
CREATE INDEX workflows_by_status ON workflows (status, updated_at);
