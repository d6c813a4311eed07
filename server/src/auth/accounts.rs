//! Users, tokens and sessions: the policy. Where they are kept is an [`AccountStore`]'s
//! (`lantern.db` in the data dir, or Redis for many nodes; see [`super::store`]).
//!
//! Guarantees:
//! - Only hashes of secrets are stored; a lookup finds the row by the credential's id and
//!   compares the secret's hash in constant time ([`super::tokens`]).
//! - A revoked token stops working for new requests at once (every request looks it up), and
//!   its sessions are deleted with it. Each revocation, and each ended session, is also
//!   recorded in the store; [`Accounts::watch_revocations`] reads those records every
//!   [`REVOCATION_POLL`] and announces the ids, so open sockets that used them close (4001)
//!   within that time, even when another process (`lantern token revoke`, another node)
//!   revoked.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::store::{AccountStore, CredentialRow, NewSecret};
use super::tokens;
use crate::error::{LanternError, Result};
use crate::store::now_rfc3339;

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

    /// The kind a store wrote as [`TokenKind::as_str`].
    pub fn from_db(text: &str) -> Result<Self> {
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

/// The caller a looked-up credential row names, if `secret` is the one it was made with.
fn caller_if_matching(
    row: Option<CredentialRow>,
    secret: &str,
    session_id: Option<&str>,
) -> Option<Caller> {
    let row = row?;
    if !tokens::matches(&row.secret_hash, secret) {
        return None;
    }
    Some(Caller {
        user: row.user,
        kind: row.kind,
        token_id: row.token_id,
        session_id: session_id.map(str::to_owned),
    })
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
    store: Arc<dyn AccountStore>,
    session_ttl: Duration,
    /// Ids of revoked tokens and ended sessions, as [`Accounts::watch_revocations`] finds them.
    revoked: broadcast::Sender<Arc<str>>,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Accounts {
    pub fn new(store: Arc<dyn AccountStore>, session_ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            store,
            session_ttl,
            revoked: broadcast::channel(1024).0,
        })
    }

    /// On first start (no users at all): create [`FIRST_USER`] and return a one-time login
    /// code for it (the login link's; see [`Accounts::create_login_code`]).
    pub async fn create_first_user(&self) -> Result<Option<String>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        self.create_login_code(FIRST_USER).await.map(Some)
    }

    /// A new token for `user` (created if new); returns the token text, shown only now.
    pub async fn create_token(&self, user: &str, kind: TokenKind) -> Result<String> {
        check_user_name(user)?;
        let minted = tokens::mint();
        let secret = NewSecret {
            id: &minted.id,
            secret_hash: &minted.secret_hash,
        };
        self.store
            .insert_token(user, secret, kind, &now_rfc3339())
            .await?;
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
        self.store.revoke_token(&id, &now_rfc3339()).await
    }

    /// A one-time login code for `user` (created if new), valid for [`LOGIN_CODE_TTL`]; shown
    /// only now, as `/login?code=…`.
    pub async fn create_login_code(&self, user: &str) -> Result<String> {
        check_user_name(user)?;
        let minted = tokens::mint();
        let now = chrono::Utc::now();
        let ttl = chrono::Duration::from_std(LOGIN_CODE_TTL).unwrap_or(chrono::Duration::days(1));
        let code = NewSecret {
            id: &minted.id,
            secret_hash: &minted.secret_hash,
        };
        self.store
            .insert_login_code(user, code, &rfc3339(now), &rfc3339(now + ttl))
            .await?;
        Ok(minted.text)
    }

    /// Whose login code this is, if it is valid, unused and unexpired (without using it).
    pub async fn login_code_user(&self, code: &str) -> Result<Option<String>> {
        let Some((id, secret)) = tokens::parse(code) else {
            return Ok(None);
        };
        let Some((hash, user)) = self.store.login_code(id, &now_rfc3339()).await? else {
            return Ok(None);
        };
        Ok(tokens::matches(&hash, secret).then_some(user))
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
        let minted = tokens::mint();
        let token = NewSecret {
            id: &minted.id,
            secret_hash: &minted.secret_hash,
        };
        if !self
            .store
            .redeem_login_code(id, &user, token, &now_rfc3339())
            .await?
        {
            return Ok(None);
        }
        Ok(Some(Caller {
            user,
            kind: TokenKind::User,
            token_id: minted.id,
            session_id: None,
        }))
    }

    /// Delete what can no longer be used: expired sessions, used or expired login codes, and
    /// revocation notices old enough that every running server has seen them. Returns how many
    /// went.
    pub async fn prune(&self) -> Result<u64> {
        let day_ago = rfc3339(chrono::Utc::now() - chrono::Duration::days(1));
        self.store.prune(&now_rfc3339(), &day_ago).await
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenSummary>> {
        self.store.list_tokens().await
    }

    /// The caller a token names, if it is valid and not revoked.
    pub async fn by_token(&self, token: &str) -> Result<Option<Caller>> {
        let Some((id, secret)) = tokens::parse(token) else {
            return Ok(None);
        };
        Ok(caller_if_matching(
            self.store.token(id).await?,
            secret,
            None,
        ))
    }

    /// Sign a user in: a new session for `caller`'s token; returns the cookie value.
    pub async fn start_session(&self, caller: &Caller) -> Result<String> {
        let minted = tokens::mint();
        let now = chrono::Utc::now();
        let ttl = chrono::Duration::from_std(self.session_ttl)
            .unwrap_or_else(|_| chrono::Duration::days(30));
        let session = NewSecret {
            id: &minted.id,
            secret_hash: &minted.secret_hash,
        };
        self.store
            .insert_session(
                session,
                &caller.token_id,
                &rfc3339(now),
                &rfc3339(now + ttl),
            )
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
        let row = self.store.session(id, &now_rfc3339()).await?;
        Ok(caller_if_matching(row, secret, Some(id)))
    }

    /// Sign out: the session ends, and its open sockets are closed.
    pub async fn end_session(&self, session_id: &str) -> Result<()> {
        self.store.end_session(session_id, &now_rfc3339()).await
    }

    /// Is this caller's credential still good (used when a socket missed announcements)?
    pub async fn still_valid(&self, caller: &Caller) -> Result<bool> {
        self.store
            .still_valid(&caller.token_id, caller.session_id.as_deref())
            .await
    }

    /// Revoked token and ended session ids, as they are found.
    pub fn revocations(&self) -> broadcast::Receiver<Arc<str>> {
        self.revoked.subscribe()
    }

    /// Poll the store's revocations and announce new ones; runs for the server's life.
    pub async fn watch_revocations(self: Arc<Self>) {
        let mut seen = match self.store.last_revocation().await {
            Ok(last) => last,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch revocations");
                return;
            }
        };
        let mut tick = tokio::time::interval(REVOCATION_POLL);
        loop {
            tick.tick().await;
            match self.store.revocations_after(seen).await {
                Ok(found) => {
                    for (cursor, credential) in found {
                        seen = cursor;
                        // Nobody listening is fine: no socket used it.
                        let _ = self.revoked.send(credential.into());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading revocations failed"),
            }
        }
    }
}
