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

/// How long a login link works (once).
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(24 * 3600);

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
    pub fn as_str(self) -> &'static str {
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

/// A user name is 1 to 64 characters of letters, digits and `._-@`.
fn check_user_name(user: &str) -> Result<()> {
    let valid = !user.is_empty()
        && user.len() <= 64
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if valid {
        Ok(())
    } else {
        Err(LanternError::BadRequest(
            "a user name is 1 to 64 characters of letters, digits and . _ - @".into(),
        ))
    }
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

    /// On first start (no users at all): create [`FIRST_USER`] and return a one-time login
    /// code for it (the login link's; see [`Accounts::create_login_code`]).
    pub async fn create_first_user(&self) -> Result<Option<String>> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.db.writer)
            .await?;
        if users > 0 {
            return Ok(None);
        }
        self.create_login_code(FIRST_USER).await.map(Some)
    }

    /// A new token for `user` (created if new); returns the token text, shown only now.
    pub async fn create_token(&self, user: &str, kind: TokenKind) -> Result<String> {
        check_user_name(user)?;
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

    /// Revoke a token, given whole or by the id `token list` shows: it stops working, its
    /// sessions end, and a running server closes the sockets that used either. False when
    /// there is no such (unrevoked) token.
    pub async fn revoke(&self, token_or_id: &str) -> Result<bool> {
        let token_or_id = token_or_id.trim();
        let id = match tokens::parse(token_or_id) {
            Some(_) => match self.by_token(token_or_id).await? {
                Some(caller) => caller.token_id,
                None => return Ok(false),
            },
            None if tokens::is_id(token_or_id) => token_or_id.to_owned(),
            None => return Ok(false),
        };
        let now = now_rfc3339();
        let mut tx = self.db.writer.begin().await?;
        let revoked =
            sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(&now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        if revoked.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM sessions WHERE token_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO revocations (credential, at) VALUES (?, ?)")
            .bind(&id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A one-time login code for `user` (created if new), valid for [`LOGIN_CODE_TTL`]; shown
    /// only now, as `/login?code=…`.
    pub async fn create_login_code(&self, user: &str) -> Result<String> {
        check_user_name(user)?;
        let minted = tokens::mint();
        let now = chrono::Utc::now();
        let ttl = chrono::Duration::from_std(LOGIN_CODE_TTL).unwrap_or(chrono::Duration::days(1));
        let at = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let mut tx = self.db.writer.begin().await?;
        sqlx::query("INSERT OR IGNORE INTO users (name, created_at) VALUES (?, ?)")
            .bind(user)
            .bind(at(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO login_codes (id, secret_hash, user, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&minted.id)
        .bind(&minted.secret_hash)
        .bind(user)
        .bind(at(now))
        .bind(at(now + ttl))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(minted.text)
    }

    /// Whose login code this is, if it is valid, unused and unexpired (without using it).
    pub async fn login_code_user(&self, code: &str) -> Result<Option<String>> {
        let Some((id, secret)) = tokens::parse(code) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT secret_hash, user FROM login_codes
             WHERE id = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(id)
        .bind(now_rfc3339())
        .fetch_optional(&self.db.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if !tokens::matches(row.try_get("secret_hash")?, secret) {
            return Ok(None);
        }
        Ok(Some(row.try_get("user")?))
    }

    /// Use a login code: once, before it expires. Returns the caller it signs in (a fresh user
    /// token of the code's user, never shown, for the session to hang on), or `None`.
    pub async fn redeem_login_code(&self, code: &str) -> Result<Option<Caller>> {
        let Some(user) = self.login_code_user(code).await? else {
            return Ok(None);
        };
        let Some((id, _)) = tokens::parse(code) else {
            return Ok(None);
        };
        let now = now_rfc3339();
        let minted = tokens::mint();
        let mut tx = self.db.writer.begin().await?;
        // The one use: whoever marks it first wins; a second redemption finds it used.
        let used = sqlx::query(
            "UPDATE login_codes SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(&now)
        .bind(id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO tokens (id, secret_hash, user, kind, created_at) VALUES (?, ?, ?, 'user', ?)",
        )
        .bind(&minted.id)
        .bind(&minted.secret_hash)
        .bind(&user)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Caller {
            user,
            kind: TokenKind::User,
            token_id: minted.id,
            session_id: None,
        }))
    }

    /// Delete what can no longer be used: expired sessions, used or expired login codes, and
    /// revocation notices old enough that every running server has seen them. Returns how many
    /// rows went.
    pub async fn prune(&self) -> Result<u64> {
        let now = now_rfc3339();
        let day_ago = (chrono::Utc::now() - chrono::Duration::days(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut pruned = 0;
        for (sql, at) in [
            ("DELETE FROM sessions WHERE expires_at <= ?", &now),
            (
                "DELETE FROM login_codes WHERE expires_at <= ? OR used_at IS NOT NULL",
                &now,
            ),
            ("DELETE FROM revocations WHERE at <= ?", &day_ago),
        ] {
            pruned += sqlx::query(sql)
                .bind(at)
                .execute(&self.db.writer)
                .await?
                .rows_affected();
        }
        Ok(pruned)
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
