-- Users, their tokens, browser sessions, and who owns each workflow.

CREATE TABLE users (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL
);

-- A token is `lantern_<id>_<secret>`. Only the id (to find the row) and the SHA-256 of the
-- secret are kept; the secret itself is shown once, when the token is created.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    secret_hash  BLOB NOT NULL,
    user         TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('user', 'agent')),
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);

-- A browser session made by signing in with a user token; it dies with that token.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    secret_hash  BLOB NOT NULL,
    token_id     TEXT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);

-- Every revoked token and ended session, in order. A running server polls this table (the
-- `lantern token revoke` command is another process) and closes the sockets that used them.
CREATE TABLE revocations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    credential  TEXT NOT NULL,
    at          TEXT NOT NULL
);

-- Workflows made before accounts existed belong to the first user, admin.
ALTER TABLE workflows ADD COLUMN owner TEXT NOT NULL DEFAULT 'admin';
CREATE INDEX workflows_by_owner ON workflows (owner, id);
