//! Where users, tokens, login codes, sessions and revocations are kept: [`AccountStore`], with
//! [`SqliteAccounts`] (the data dir's database, the default) and
//! [`super::redis::RedisAccounts`] (shared by every node on one Redis). The policy — minting,
//! hashing, comparing secrets, building a [`super::Caller`] — is [`super::Accounts`]'s; a store
//! sees ids and secret hashes only, never a credential's text.

use sqlx::Row;

use super::accounts::{TokenKind, TokenSummary};
use crate::error::Result;
use crate::store::sqlite::Db;

/// A credential's row as found: what its secret must hash to, and whom it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRow {
    pub secret_hash: Vec<u8>,
    /// The token behind it (itself, or the token a session signed in with).
    pub token_id: String,
    pub user: String,
    pub kind: TokenKind,
}

/// A new token (or login code): its id and the hash of its secret.
#[derive(Clone, Copy, Debug)]
pub struct NewSecret<'a> {
    pub id: &'a str,
    pub secret_hash: &'a [u8],
}

/// Users, tokens, login codes, sessions and revocations.
///
/// Guarantees every implementation gives (times are RFC 3339 UTC with milliseconds, so they
/// compare as text):
/// - A token is found (`token`) until it is revoked, and never after; revoking deletes its
///   sessions and records a revocation, in one atomic step.
/// - A login code is found (`login_code`) only unused and before it expires, and redeemed at
///   most once, however many redeem it at the same time; redeeming creates the user token the
///   session hangs on in the same step.
/// - A session is found only before it expires and while its token is not revoked; ending it
///   records a revocation in the same step.
/// - Revocations get increasing cursors; each is readable (`revocations_after`) by every
///   process sharing the store for at least a day (`prune` keeps younger ones).
/// - Creating a token or a login code for a user that does not exist creates the user.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn count_users(&self) -> Result<u64>;
    async fn insert_token(
        &self,
        user: &str,
        token: NewSecret<'_>,
        kind: TokenKind,
        now: &str,
    ) -> Result<()>;
    /// False when there is no such unrevoked token.
    async fn revoke_token(&self, id: &str, now: &str) -> Result<bool>;
    async fn insert_login_code(
        &self,
        user: &str,
        code: NewSecret<'_>,
        created_at: &str,
        expires_at: &str,
    ) -> Result<()>;
    /// `(secret_hash, user)` of an unused, unexpired login code.
    async fn login_code(&self, id: &str, now: &str) -> Result<Option<(Vec<u8>, String)>>;
    /// Use login code `id` (once, unexpired) and create user token `token` of its user; false
    /// (and nothing done) when it was used or expired meanwhile.
    async fn redeem_login_code(
        &self,
        id: &str,
        user: &str,
        token: NewSecret<'_>,
        now: &str,
    ) -> Result<bool>;
    /// Delete expired sessions, used or expired login codes and revocations older than
    /// `revocations_before`; how many went.
    async fn prune(&self, now: &str, revocations_before: &str) -> Result<u64>;
    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<TokenSummary>>;
    /// An unrevoked token.
    async fn token(&self, id: &str) -> Result<Option<CredentialRow>>;
    async fn insert_session(
        &self,
        session: NewSecret<'_>,
        token_id: &str,
        created_at: &str,
        expires_at: &str,
    ) -> Result<()>;
    /// An unexpired session whose token is not revoked.
    async fn session(&self, id: &str, now: &str) -> Result<Option<CredentialRow>>;
    async fn end_session(&self, id: &str, now: &str) -> Result<()>;
    /// Does token `token_id` (through session `session_id`, when given) still hold?
    async fn still_valid(&self, token_id: &str, session_id: Option<&str>) -> Result<bool>;
    /// The cursor of the latest revocation (0 when none).
    async fn last_revocation(&self) -> Result<u64>;
    /// Revocations after `cursor`, oldest first: `(cursor, revoked token or session id)`.
    async fn revocations_after(&self, cursor: u64) -> Result<Vec<(u64, String)>>;
}

/// The accounts `storage` says: in Redis when it names one, else in the data dir's database
/// (opened here).
pub async fn open(storage: &crate::config::Storage) -> Result<std::sync::Arc<dyn AccountStore>> {
    if let Some(url) = &storage.redis_url {
        let redis = super::redis::RedisAccounts::connect(url, &storage.redis_prefix).await?;
        return Ok(std::sync::Arc::new(redis));
    }
    let db = Db::open(&storage.data_dir, storage.sqlite_sync).await?;
    Ok(std::sync::Arc::new(SqliteAccounts::new(db)))
}

/// The accounts in the data dir's SQLite database (`lantern.db`, beside the event logs).
pub struct SqliteAccounts {
    db: Db,
}

impl SqliteAccounts {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// Create user `user` at `at` in `tx`, unless there is one.
async fn ensure_user(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user: &str,
    at: &str,
) -> Result<()> {
    sqlx::query("INSERT OR IGNORE INTO users (name, created_at) VALUES (?, ?)")
        .bind(user)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Record that `credential` (a token or session id) stopped working at `now`, in `tx`: what
/// every process's revocation watch reads.
async fn record_revocation(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    credential: &str,
    now: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO revocations (credential, at) VALUES (?, ?)")
        .bind(credential)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn row_credential(row: Option<sqlx::sqlite::SqliteRow>) -> Result<Option<CredentialRow>> {
    let Some(row) = row else { return Ok(None) };
    Ok(Some(CredentialRow {
        secret_hash: row.try_get("secret_hash")?,
        token_id: row.try_get("token_id")?,
        user: row.try_get("user")?,
        kind: TokenKind::from_db(row.try_get("kind")?)?,
    }))
}

#[async_trait::async_trait]
impl AccountStore for SqliteAccounts {
    async fn count_users(&self) -> Result<u64> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.db.writer)
            .await?;
        Ok(users.max(0) as u64)
    }

    async fn insert_token(
        &self,
        user: &str,
        token: NewSecret<'_>,
        kind: TokenKind,
        now: &str,
    ) -> Result<()> {
        let mut tx = self.db.writer.begin().await?;
        ensure_user(&mut tx, user, now).await?;
        sqlx::query(
            "INSERT INTO tokens (id, secret_hash, user, kind, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token.id)
        .bind(token.secret_hash)
        .bind(user)
        .bind(kind.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_token(&self, id: &str, now: &str) -> Result<bool> {
        let mut tx = self.db.writer.begin().await?;
        let revoked =
            sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if revoked.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM sessions WHERE token_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record_revocation(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_login_code(
        &self,
        user: &str,
        code: NewSecret<'_>,
        created_at: &str,
        expires_at: &str,
    ) -> Result<()> {
        let mut tx = self.db.writer.begin().await?;
        ensure_user(&mut tx, user, created_at).await?;
        sqlx::query(
            "INSERT INTO login_codes (id, secret_hash, user, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(code.id)
        .bind(code.secret_hash)
        .bind(user)
        .bind(created_at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn login_code(&self, id: &str, now: &str) -> Result<Option<(Vec<u8>, String)>> {
        let row = sqlx::query(
            "SELECT secret_hash, user FROM login_codes
             WHERE id = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.db.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((row.try_get("secret_hash")?, row.try_get("user")?)))
    }

    async fn redeem_login_code(
        &self,
        id: &str,
        user: &str,
        token: NewSecret<'_>,
        now: &str,
    ) -> Result<bool> {
        let mut tx = self.db.writer.begin().await?;
        // The one use: whoever marks it first wins; a second redemption finds it used.
        let used = sqlx::query(
            "UPDATE login_codes SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(now)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO tokens (id, secret_hash, user, kind, created_at) VALUES (?, ?, ?, 'user', ?)",
        )
        .bind(token.id)
        .bind(token.secret_hash)
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn prune(&self, now: &str, revocations_before: &str) -> Result<u64> {
        let mut pruned = 0;
        for (sql, at) in [
            ("DELETE FROM sessions WHERE expires_at <= ?", now),
            (
                "DELETE FROM login_codes WHERE expires_at <= ? OR used_at IS NOT NULL",
                now,
            ),
            ("DELETE FROM revocations WHERE at <= ?", revocations_before),
        ] {
            pruned += sqlx::query(sql)
                .bind(at)
                .execute(&self.db.writer)
                .await?
                .rows_affected();
        }
        Ok(pruned)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenSummary>> {
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

    async fn token(&self, id: &str) -> Result<Option<CredentialRow>> {
        let row = sqlx::query(
            "SELECT secret_hash, id AS token_id, user, kind FROM tokens
             WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.db.readers)
        .await?;
        row_credential(row)
    }

    async fn insert_session(
        &self,
        session: NewSecret<'_>,
        token_id: &str,
        created_at: &str,
        expires_at: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, token_id, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(session.id)
        .bind(session.secret_hash)
        .bind(token_id)
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.db.writer)
        .await?;
        Ok(())
    }

    async fn session(&self, id: &str, now: &str) -> Result<Option<CredentialRow>> {
        let row = sqlx::query(
            "SELECT s.secret_hash, s.token_id, t.user, t.kind FROM sessions s
             JOIN tokens t ON t.id = s.token_id
             WHERE s.id = ? AND s.expires_at > ? AND t.revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.db.readers)
        .await?;
        row_credential(row)
    }

    async fn end_session(&self, id: &str, now: &str) -> Result<()> {
        let mut tx = self.db.writer.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        record_revocation(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn still_valid(&self, token_id: &str, session_id: Option<&str>) -> Result<bool> {
        let sql = match session_id {
            Some(_) => {
                "SELECT COUNT(*) FROM sessions s JOIN tokens t ON t.id = s.token_id
                 WHERE s.id = ?1 AND t.id = ?2 AND t.revoked_at IS NULL"
            }
            None => {
                "SELECT COUNT(*) FROM tokens WHERE ?1 IS NULL AND id = ?2 AND revoked_at IS NULL"
            }
        };
        let found: i64 = sqlx::query_scalar(sql)
            .bind(session_id)
            .bind(token_id)
            .fetch_one(&self.db.readers)
            .await?;
        Ok(found > 0)
    }

    async fn last_revocation(&self) -> Result<u64> {
        let max: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM revocations")
            .fetch_one(&self.db.readers)
            .await?;
        Ok(max.max(0) as u64)
    }

    async fn revocations_after(&self, cursor: u64) -> Result<Vec<(u64, String)>> {
        let rows = sqlx::query("SELECT id, credential FROM revocations WHERE id > ? ORDER BY id")
            .bind(cursor as i64)
            .fetch_all(&self.db.readers)
            .await?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get("id")?;
                Ok((id.max(0) as u64, row.try_get("credential")?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteAccounts;
    use crate::config::SyncMode;
    use crate::store::sqlite::Db;

    async fn fresh() -> (tempfile::TempDir, SqliteAccounts) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path(), SyncMode::Normal).await.expect("open");
        (dir, SqliteAccounts::new(db))
    }

    crate::auth::contract::account_contract!(fresh());
}
