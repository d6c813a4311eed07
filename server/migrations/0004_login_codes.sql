-- One-time login links: `/login?code=lantern_<id>_<secret>`. A link signs one browser in as
-- `user`, once, before `expires_at`; the long-lived token never appears in a URL. Redeeming
-- one makes a fresh user token (never shown) for the session to hang on, so revoking that
-- token signs that browser out.
CREATE TABLE login_codes (
    id           TEXT PRIMARY KEY NOT NULL,
    secret_hash  BLOB NOT NULL,
    user         TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT
);
-- Sessions are pruned by age.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
