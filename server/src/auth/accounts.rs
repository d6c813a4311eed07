//! Users, tokens and sessions, kept in `lantern.db` next to the event logs.
//!
//! Guarantees:
//! - Only hashes of secrets are stored; a lookup finds the row by the credential's id and
//!   compares the secret's hash in constant time ([`super::tokens`]).
//! - A revoked token stops working for new requests at once (every request looks it up), and
//!   its sessions are deleted with it. Each revocation, and each ended session, is also
//!   written to the `revocations` table; [`Accounts::watch_revocations`] reads that table
//!   every [`REVOCATION_POLL`] and announces the ids, so open sockets that used them close
//!   (4001) within that time, even when another process (`lantern token revoke`) revoked.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::broadcast;

use super::tokens;
use crate::error::{LanternError, Result};
use crate::store::now_rfc3339;
use crate::store::sqlite::Db;

/// How often a running server looks for revocations made by other processes.
pub const REVOCATION_POLL: Duration = Duration::from_millis(250);

/// The user created on first start, when there are no users.
pub const FIRST_USER: &str = "admin";

/// What a token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A person (browser or program): pages, the API, subscriber sockets.
    User,
    /// An external agent: may only publish to, and read the input of, its user's workflows.
    Agent,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
        }
    }

    fn from_db(text: &str) -> Result<Self> {
        match text {
            "user" => Ok(Self::User),
            "agent" => Ok(Self::Agent),
            other => Err(LanternError::Storage(format!(
                "unknown token kind {other:?}"
            ))),
        }
    }
}

/// Who is calling, once their credential checked out.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: String,
    pub kind: TokenKind,
    /// The token behind the request (directly, or through the session it signed in).
    pub token_id: String,
    /// The browser session, when the credential was a session cookie.
    pub session_id: Option<String>,
}

impl Caller {
    /// Did this caller authenticate with the revoked credential `id`?
    pub fn uses(&self, id: &str) -> bool {
        self.token_id == id || self.session_id.as_deref() == Some(id)
    }
}

/// One row of `lantern token list`.
#[derive(Debug)]
pub struct TokenSummary {
    pub id: String,
    pub user: String,
    pub kind: TokenKind,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The caller a looked-up credential row (`secret_hash`, `token_id`, `user`, `kind`) names,
/// if `secret` is the one it was made with.
fn caller_if_matching(
    row: Option<sqlx::sqlite::SqliteRow>,
    secret: &str,
    session_id: Option<&str>,
) -> Result<Option<Caller>> {
    let Some(row) = row else { return Ok(None) };
    if !tokens::matches(row.try_get("secret_hash")?, secret) {
        return Ok(None);
    }
    Ok(Some(Caller {
        user: row.try_get("user")?,
        kind: TokenKind::from_db(row.try_get("kind")?)?,
        token_id: row.try_get("token_id")?,
        session_id: session_id.map(str::to_owned),
    }))
}

pub struct Accounts {
    db: Db,
    session_ttl: Duration,
    /// Ids of revoked tokens and ended sessions, as [`Accounts::watch_revocations`] finds them.
    revoked: broadcast::Sender<Arc<str>>,
}

impl Accounts {
    pub fn new(db: Db, session_ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            db,
            session_ttl,
            revoked: broadcast::channel(1024).0,
        })
    }

    /// On first start (no users at all): create [`FIRST_USER`] and return a user token for it.
    pub async fn create_first_user(&self) -> Result<Option<String>> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.db.writer)
            .await?;
        if users > 0 {
            return Ok(None);
        }
        self.create_token(FIRST_USER, TokenKind::User)
            .await
            .map(Some)
    }

    /// A new token for `user` (created if new); returns the token text, shown only now.
    pub async fn create_token(&self, user: &str, kind: TokenKind) -> Result<String> {
        let valid = !user.is_empty()
            && user.len() <= 64
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if !valid {
            return Err(LanternError::BadRequest(
                "a user name is 1 to 64 characters of letters, digits and . _ - @".into(),
            ));
        }
        let now = now_rfc3339();
        let minted = tokens::mint();
        let mut tx = self.db.writer.begin().await?;
        sqlx::query("INSERT OR IGNORE INTO users (name, created_at) VALUES (?, ?)")
            .bind(user)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tokens (id, secret_hash, user, kind, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&minted.id)
        .bind(&minted.secret_hash)
        .bind(user)
        .bind(kind.as_str())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(minted.text)
    }

    /// Revoke `token`: it stops working, its sessions end, and a running server closes the
    /// sockets that used either. False when there is no such (unrevoked) token.
    pub async fn revoke(&self, token: &str) -> Result<bool> {
        let Some(caller) = self.by_token(token).await? else {
            return Ok(false);
        };
        let now = now_rfc3339();
        let mut tx = self.db.writer.begin().await?;
        sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ?")
            .bind(&now)
            .bind(&caller.token_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE token_id = ?")
            .bind(&caller.token_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO revocations (credential, at) VALUES (?, ?)")
            .bind(&caller.token_id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenSummary>> {
        let rows = sqlx::query(
            "SELECT id, user, kind, created_at, revoked_at FROM tokens ORDER BY created_at",
        )
        .fetch_all(&self.db.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenSummary {
                    id: row.try_get("id")?,
                    user: row.try_get("user")?,
                    kind: TokenKind::from_db(row.try_get("kind")?)?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// The caller a token names, if it is valid and not revoked.
    pub async fn by_token(&self, token: &str) -> Result<Option<Caller>> {
        let Some((id, secret)) = tokens::parse(token) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT secret_hash, id AS token_id, user, kind FROM tokens
             WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.db.readers)
        .await?;
        caller_if_matching(row, secret, None)
    }

    /// Sign a user in: a new session for `caller`'s token; returns the cookie value.
    pub async fn start_session(&self, caller: &Caller) -> Result<String> {
        let minted = tokens::mint();
        let now = chrono::Utc::now();
        let ttl = chrono::Duration::from_std(self.session_ttl)
            .unwrap_or_else(|_| chrono::Duration::days(30));
        let expires = (now + ttl).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, token_id, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&minted.id)
        .bind(&minted.secret_hash)
        .bind(&caller.token_id)
        .bind(now_rfc3339())
        .bind(expires)
        .execute(&self.db.writer)
        .await?;
        Ok(minted.text)
    }

    /// How long a session lasts.
    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// The caller a session cookie names, if the session exists, has not expired, and its
    /// token is not revoked.
    pub async fn by_session(&self, cookie: &str) -> Result<Option<Caller>> {
        let Some((id, secret)) = tokens::parse(cookie) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT s.secret_hash, s.token_id, t.user, t.kind FROM sessions s
             JOIN tokens t ON t.id = s.token_id
             WHERE s.id = ? AND s.expires_at > ? AND t.revoked_at IS NULL",
        )
        .bind(id)
        .bind(now_rfc3339())
        .fetch_optional(&self.db.readers)
        .await?;
        caller_if_matching(row, secret, Some(id))
    }

    /// Sign out: the session ends, and its open sockets are closed.
    pub async fn end_session(&self, session_id: &str) -> Result<()> {
        let mut tx = self.db.writer.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO revocations (credential, at) VALUES (?, ?)")
            .bind(session_id)
            .bind(now_rfc3339())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Is this caller's credential still good (used when a socket missed announcements)?
    pub async fn still_valid(&self, caller: &Caller) -> Result<bool> {
        let sql = match &caller.session_id {
            Some(_) => {
                "SELECT COUNT(*) FROM sessions s JOIN tokens t ON t.id = s.token_id
                 WHERE s.id = ?1 AND t.id = ?2 AND t.revoked_at IS NULL"
            }
            None => {
                "SELECT COUNT(*) FROM tokens WHERE ?1 IS NULL AND id = ?2 AND revoked_at IS NULL"
            }
        };
        let found: i64 = sqlx::query_scalar(sql)
            .bind(&caller.session_id)
            .bind(&caller.token_id)
            .fetch_one(&self.db.readers)
            .await?;
        Ok(found > 0)
    }

    /// Revoked token and ended session ids, as they are found.
    pub fn revocations(&self) -> broadcast::Receiver<Arc<str>> {
        self.revoked.subscribe()
    }

    /// Poll the `revocations` table and announce new entries; runs for the server's life.
    pub async fn watch_revocations(self: Arc<Self>) {
        let mut seen: i64 = match sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM revocations")
            .fetch_one(&self.db.readers)
            .await
        {
            Ok(max) => max,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch revocations");
                return;
            }
        };
        let mut tick = tokio::time::interval(REVOCATION_POLL);
        loop {
            tick.tick().await;
            let rows =
                sqlx::query("SELECT id, credential FROM revocations WHERE id > ? ORDER BY id")
                    .bind(seen)
                    .fetch_all(&self.db.readers)
                    .await;
            match rows {
                Ok(rows) => {
                    for row in rows {
                        let (Ok(id), Ok(credential)) = (
                            row.try_get::<i64, _>("id"),
                            row.try_get::<String, _>("credential"),
                        ) else {
                            continue;
                        };
                        seen = id;
                        // Nobody listening is fine: no socket used it.
                        let _ = self.revoked.send(credential.into());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading revocations failed"),
            }
        }
    }
}
