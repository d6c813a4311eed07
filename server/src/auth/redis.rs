//! The accounts in Redis ([`AccountStore`]), for many nodes sharing one Redis: a token minted,
//! revoked or signed in with on one node holds on every node at once.
//!
//! Each step that touches several keys and must be atomic (revoking, redeeming a login code,
//! ending a session) is one Lua script that checks before it writes. Sessions and login codes
//! carry their expiry as a key TTL too, so Redis deletes them when they can no longer be used;
//! a redeemed login code is deleted at once. Times are RFC 3339 UTC with milliseconds, all of
//! one width, so comparing them as text compares the times.
//!
//! Keys, under the deployment's prefix: `users` (hash name → created_at), `token:{id}` (hash
//! secret_hash, user, kind, created_at, revoked_at), `tokens` (list of ids, oldest first),
//! `token-sessions:{token id}` (set of its session ids), `session:{id}` (hash secret_hash,
//! token_id, created_at, expires_at), `login:{id}` (hash secret_hash, user, created_at,
//! expires_at), `revocation-seq` (counter) and `revocations` (sorted set scored by that
//! counter; members `seq|at|credential`).

use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::accounts::{TokenKind, TokenSummary};
use super::store::{AccountStore, CredentialRow, NewSecret};
use crate::error::{LanternError, Result};

/// Revoke an unrevoked token: mark it, delete its sessions, record the revocation. Replies 1,
/// or 0 (nothing done) when there is no such unrevoked token.
///
/// KEYS: token, token-sessions, revocation-seq, revocations. ARGV: id, now, prefix.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'revoked_at') == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[2])
for _, s in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', ARGV[3] .. 'session:' .. s) end
redis.call('DEL', KEYS[2])
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[4], seq, seq .. '|' .. ARGV[2] .. '|' .. ARGV[1])
return 1
",
    )
});

/// Use a login code (unexpired; a used one is gone) and create its user's token. Replies 1, or
/// 0 when the code is gone or expired.
///
/// KEYS: login, token, tokens. ARGV: now, user, token id, token secret hash.
static REDEEM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local expires = redis.call('HGET', KEYS[1], 'expires_at')
if not expires or expires <= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'secret_hash', ARGV[4], 'user', ARGV[2], 'kind', 'user',
  'created_at', ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[3])
return 1
",
    )
});

/// End a session and record the revocation of its id.
///
/// KEYS: session, revocation-seq, revocations. ARGV: id, now, prefix.
static END_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local token = redis.call('HGET', KEYS[1], 'token_id')
redis.call('DEL', KEYS[1])
if token then redis.call('SREM', ARGV[3] .. 'token-sessions:' .. token, ARGV[1]) end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, seq .. '|' .. ARGV[2] .. '|' .. ARGV[1])
return 1
",
    )
});

pub struct RedisAccounts {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisAccounts {
    /// The accounts in the Redis at `url`, under key prefix `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn of(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }
}

/// The Unix time in seconds of an RFC 3339 time, for a key's expiry.
fn unix_secs(at: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| t.timestamp() + 1)
        .map_err(|e| LanternError::Storage(format!("bad time {at:?}: {e}")))
}

/// Add to `pipe`: hash `key` with `fields` and its `expires_at`, deleted by Redis then.
fn put_expiring(
    pipe: &mut redis::Pipeline,
    key: &str,
    fields: &[(&str, &[u8])],
    expires_at: &str,
) -> Result<()> {
    pipe.hset_multiple(key, fields)
        .ignore()
        .hset(key, "expires_at", expires_at)
        .ignore()
        .expire_at(key, unix_secs(expires_at)?)
        .ignore();
    Ok(())
}

fn corrupt(what: &str) -> LanternError {
    LanternError::Storage(format!("redis holds a corrupt account value: {what}"))
}

/// A revocation's member, `seq|at|credential`: its time and its credential.
fn revocation(member: &str) -> Result<(&str, &str)> {
    let mut parts = member.splitn(3, '|');
    let (_, at, credential) = (parts.next(), parts.next(), parts.next());
    at.zip(credential)
        .ok_or_else(|| corrupt(&format!("revocation {member:?}")))
}

#[async_trait::async_trait]
impl AccountStore for RedisAccounts {
    async fn count_users(&self) -> Result<u64> {
        let mut conn = self.conn.clone();
        Ok(conn.hlen(self.key("users")).await?)
    }

    async fn insert_token(
        &self,
        user: &str,
        token: NewSecret<'_>,
        kind: TokenKind,
        now: &str,
    ) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hset_nx(self.key("users"), user, now)
            .ignore()
            .hset_multiple(
                self.of("token", token.id),
                &[
                    ("secret_hash", token.secret_hash),
                    ("user", user.as_bytes()),
                    ("kind", kind.as_str().as_bytes()),
                    ("created_at", now.as_bytes()),
                ],
            )
            .ignore()
            .rpush(self.key("tokens"), token.id)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn revoke_token(&self, id: &str, now: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let done: i64 = REVOKE
            .key(self.of("token", id))
            .key(self.of("token-sessions", id))
            .key(self.key("revocation-seq"))
            .key(self.key("revocations"))
            .arg(id)
            .arg(now)
            .arg(&self.prefix)
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }

    async fn insert_login_code(
        &self,
        user: &str,
        code: NewSecret<'_>,
        created_at: &str,
        expires_at: &str,
    ) -> Result<()> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_nx(self.key("users"), user, created_at)
            .ignore();
        let fields = [
            ("secret_hash", code.secret_hash),
            ("user", user.as_bytes()),
            ("created_at", created_at.as_bytes()),
        ];
        put_expiring(&mut pipe, &self.of("login", code.id), &fields, expires_at)?;
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn login_code(&self, id: &str, now: &str) -> Result<Option<(Vec<u8>, String)>> {
        let mut conn = self.conn.clone();
        let (hash, user, expires): (Option<Vec<u8>>, Option<String>, Option<String>) = conn
            .hget(self.of("login", id), &["secret_hash", "user", "expires_at"])
            .await?;
        match (hash, user, expires) {
            (Some(hash), Some(user), Some(expires)) if expires.as_str() > now => {
                Ok(Some((hash, user)))
            }
            _ => Ok(None),
        }
    }

    async fn redeem_login_code(
        &self,
        id: &str,
        user: &str,
        token: NewSecret<'_>,
        now: &str,
    ) -> Result<bool> {
        let mut conn = self.conn.clone();
        let done: i64 = REDEEM
            .key(self.of("login", id))
            .key(self.of("token", token.id))
            .key(self.key("tokens"))
            .arg(now)
            .arg(user)
            .arg(token.id)
            .arg(token.secret_hash)
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }

    async fn prune(&self, _now: &str, revocations_before: &str) -> Result<u64> {
        // Sessions and login codes expire as keys; only old revocations are left to go.
        let mut conn = self.conn.clone();
        let members: Vec<String> = conn.zrange(self.key("revocations"), 0, -1).await?;
        let mut old = Vec::new();
        for member in &members {
            let (at, _) = revocation(member)?;
            if at <= revocations_before {
                old.push(member.as_str());
            }
        }
        if old.is_empty() {
            return Ok(0);
        }
        let removed: u64 = conn.zrem(self.key("revocations"), &old).await?;
        Ok(removed)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenSummary>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.lrange(self.key("tokens"), 0, -1).await?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(
                self.of("token", id),
                &["user", "kind", "created_at", "revoked_at"],
            );
        }
        type Fields = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Fields> = pipe.query_async(&mut conn).await?;
        ids.into_iter()
            .zip(rows)
            .map(|(id, (user, kind, created_at, revoked_at))| {
                let (Some(user), Some(kind), Some(created_at)) = (user, kind, created_at) else {
                    return Err(corrupt(&format!("token {id}")));
                };
                Ok(TokenSummary {
                    id,
                    user,
                    kind: TokenKind::from_db(&kind)?,
                    created_at,
                    revoked_at,
                })
            })
            .collect()
    }

    async fn token(&self, id: &str) -> Result<Option<CredentialRow>> {
        let mut conn = self.conn.clone();
        let (hash, user, kind, revoked): (
            Option<Vec<u8>>,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = conn
            .hget(
                self.of("token", id),
                &["secret_hash", "user", "kind", "revoked_at"],
            )
            .await?;
        match (hash, user, kind, revoked) {
            (Some(secret_hash), Some(user), Some(kind), None) => Ok(Some(CredentialRow {
                secret_hash,
                token_id: id.to_owned(),
                user,
                kind: TokenKind::from_db(&kind)?,
            })),
            _ => Ok(None),
        }
    }

    async fn insert_session(
        &self,
        session: NewSecret<'_>,
        token_id: &str,
        created_at: &str,
        expires_at: &str,
    ) -> Result<()> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .sadd(self.of("token-sessions", token_id), session.id)
            .ignore();
        let fields = [
            ("secret_hash", session.secret_hash),
            ("token_id", token_id.as_bytes()),
            ("created_at", created_at.as_bytes()),
        ];
        put_expiring(
            &mut pipe,
            &self.of("session", session.id),
            &fields,
            expires_at,
        )?;
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn session(&self, id: &str, now: &str) -> Result<Option<CredentialRow>> {
        let mut conn = self.conn.clone();
        let (hash, token_id, expires): (Option<Vec<u8>>, Option<String>, Option<String>) = conn
            .hget(
                self.of("session", id),
                &["secret_hash", "token_id", "expires_at"],
            )
            .await?;
        let (Some(secret_hash), Some(token_id), Some(expires)) = (hash, token_id, expires) else {
            return Ok(None);
        };
        if expires.as_str() <= now {
            return Ok(None);
        }
        Ok(self.token(&token_id).await?.map(|token| CredentialRow {
            secret_hash,
            ..token
        }))
    }

    async fn end_session(&self, id: &str, now: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = END_SESSION
            .key(self.of("session", id))
            .key(self.key("revocation-seq"))
            .key(self.key("revocations"))
            .arg(id)
            .arg(now)
            .arg(&self.prefix)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn still_valid(&self, token_id: &str, session_id: Option<&str>) -> Result<bool> {
        if let Some(session) = session_id {
            let mut conn = self.conn.clone();
            let of: Option<String> = conn.hget(self.of("session", session), "token_id").await?;
            if of.as_deref() != Some(token_id) {
                return Ok(false);
            }
        }
        Ok(self.token(token_id).await?.is_some())
    }

    async fn last_revocation(&self) -> Result<u64> {
        let mut conn = self.conn.clone();
        let last: Option<u64> = conn.get(self.key("revocation-seq")).await?;
        Ok(last.unwrap_or(0))
    }

    async fn revocations_after(&self, cursor: u64) -> Result<Vec<(u64, String)>> {
        let mut conn = self.conn.clone();
        let found: Vec<(String, f64)> = conn
            .zrangebyscore_withscores(self.key("revocations"), format!("({cursor}"), "+inf")
            .await?;
        found
            .iter()
            .map(|(member, seq)| Ok((*seq as u64, revocation(member)?.1.to_owned())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::RedisAccounts;
    use crate::store::redis::test_server::RedisServer;

    async fn fresh() -> (RedisServer, RedisAccounts) {
        let server = RedisServer::start();
        let store = RedisAccounts::connect(&server.url(), "t:")
            .await
            .expect("connected");
        (server, store)
    }

    crate::auth::contract::account_contract!(fresh());
}
