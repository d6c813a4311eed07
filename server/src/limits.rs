//! Limits that keep one client from hurting the others:
//! - [`FrameLimiter`]: frames per second on one connection (token bucket, then close 4029);
//! - [`ConnLimits`]: open sockets and streams per key and openings per second per key (HTTP
//!   429), keyed by client address ([`IpLimits`]) and by user ([`UserLimits`]);
//! - [`WriteLimits`]: HTTP writes per second per user, and ingest requests per second per
//!   agent token (HTTP 429).
//!
//! (TCP connections themselves are capped before any of this, in [`crate::connections`].)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tokens refill at `rate` per second up to `burst`; each frame takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Refill for the time since the last call; true when the bucket is full again (the
    /// client was quiet long enough to earn a whole burst).
    fn refill(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens >= self.burst
    }

    /// Take one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The verdict on one incoming frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Process it.
    Allow,
    /// Drop it and tell the client (`error` `rate_limited`) — once per run of limited frames.
    LimitAndWarn,
    /// Drop it silently; the client was already told.
    Limit,
    /// The client kept on after being told: close with 4029.
    Close,
}

/// A token bucket plus patience: a client over the limit gets one `rate_limited` error, and
/// is closed once `burst` of its frames have been refused without it slowing down — that is,
/// before the bucket filled up again. A frame let through now and then by the refill does not
/// forgive a client that keeps sending faster than the rate: a flood is closed, however fast
/// the bucket refills.
#[derive(Debug, Clone)]
pub struct FrameLimiter {
    /// `None`: no limit (rate 0).
    bucket: Option<TokenBucket>,
    patience: u32,
    /// Frames refused since the client last slowed down (its bucket was full again).
    refused: u32,
}

impl FrameLimiter {
    /// `rate` frames per second with bursts of `burst`; a rate of 0 means no limit.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let bucket = (rate > 0).then(|| TokenBucket::new(rate as f64, burst.max(1) as f64, now));
        Self {
            bucket,
            patience: burst.max(1),
            refused: 0,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let Some(bucket) = &mut self.bucket else {
            return Verdict::Allow;
        };
        if bucket.refill(now) {
            self.refused = 0;
        }
        if bucket.take(now) {
            return Verdict::Allow;
        }
        self.refused += 1;
        match self.refused {
            1 => Verdict::LimitAndWarn,
            n if n > self.patience => Verdict::Close,
            _ => Verdict::Limit,
        }
    }
}

/// HTTP writes per second: a user's (create, input, cancel; at `--client-rate` in bursts of
/// `--client-burst`) and an agent token's ingest requests (at `--agent-rate` / `--agent-burst`),
/// like the frames of their sockets. Over it: `rate_limited` (429). One lock over two small maps,
/// never held across an await; entries idle for a minute are forgotten when a map grows large.
pub struct WriteLimits {
    users: Mutex<HashMap<String, (TokenBucket, Instant)>>,
    agents: Mutex<HashMap<String, (TokenBucket, Instant)>>,
    user_rate: (u32, u32),
    agent_rate: (u32, u32),
}

impl WriteLimits {
    pub fn new(config: &crate::config::Config) -> Arc<Self> {
        Arc::new(Self {
            users: Mutex::default(),
            agents: Mutex::default(),
            user_rate: (config.client_rate, config.client_burst),
            agent_rate: (config.agent_rate, config.agent_burst),
        })
    }

    /// Count one write of `caller`'s; `rate_limited` when over its rate.
    pub fn check(&self, caller: &crate::auth::Caller) -> Result<(), crate::error::LanternError> {
        match caller.kind {
            crate::auth::TokenKind::User => self.check_user(&caller.user),
            crate::auth::TokenKind::Agent => {
                Self::take(&self.agents, &caller.token_id, self.agent_rate)
            }
        }
    }

    /// Count one write of user `user`'s (a page's form, say).
    pub fn check_user(&self, user: &str) -> Result<(), crate::error::LanternError> {
        Self::take(&self.users, user, self.user_rate)
    }

    fn take(
        map: &Mutex<HashMap<String, (TokenBucket, Instant)>>,
        key: &str,
        (rate, burst): (u32, u32),
    ) -> Result<(), crate::error::LanternError> {
        if rate == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, last)| now.saturating_duration_since(*last) < FORGET_IDLE_IP);
        }
        let (bucket, last) = map
            .entry(key.to_owned())
            .or_insert_with(|| (TokenBucket::new(rate as f64, burst.max(1) as f64, now), now));
        *last = now;
        if bucket.take(now) {
            Ok(())
        } else {
            Err(crate::error::LanternError::RateLimited(format!(
                "too many requests: at most {rate} per second in bursts of {burst}"
            )))
        }
    }
}

/// Why an upgrade was refused; `what` names whose limit it was ("address", "user").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooManyConnections { max: u32, what: &'static str },
    TooManyAttempts { what: &'static str },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooManyConnections { max, what } => {
                write!(
                    f,
                    "too many open connections for this {what} (at most {max})"
                )
            }
            Self::TooManyAttempts { what } => {
                write!(
                    f,
                    "too many connection attempts from this {what}; retry later"
                )
            }
        }
    }
}

/// Per-address socket limits.
pub type IpLimits = ConnLimits<IpAddr>;
/// Per-user socket limits.
pub type UserLimits = ConnLimits<String>;

/// Open sockets and upgrade attempts per key (a client address, a user). One lock over a
/// small map; never held across an await.
pub struct ConnLimits<K> {
    /// Named in refusals: "address", "user".
    what: &'static str,
    /// 0 = no limit.
    max_open: u32,
    attempts_per_sec: u32,
    attempts_burst: u32,
    by_key: Mutex<HashMap<K, KeyState>>,
}

struct KeyState {
    open: u32,
    attempts: TokenBucket,
    last_attempt: Instant,
}

/// Entries of addresses with nothing open are forgotten this long after their last attempt.
const FORGET_IDLE_IP: Duration = Duration::from_secs(60);

impl<K: std::hash::Hash + Eq + Clone> ConnLimits<K> {
    pub fn new(
        what: &'static str,
        max_open: u32,
        attempts_per_sec: u32,
        attempts_burst: u32,
    ) -> Arc<Self> {
        Arc::new(Self {
            what,
            max_open,
            attempts_per_sec,
            attempts_burst,
            by_key: Mutex::default(),
        })
    }

    /// How many keys have at least one socket open (e.g. users connected right now).
    pub fn keys_open(&self) -> usize {
        let by_key = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        by_key.values().filter(|s| s.open > 0).count()
    }

    /// Admit one more socket for `key`, or say why not. The guard releases it when dropped.
    pub fn admit(self: &Arc<Self>, key: K, now: Instant) -> Result<OpenSocket<K>, Refusal> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if by_key.len() > 10_000 {
            by_key.retain(|_, s| {
                s.open > 0 || now.saturating_duration_since(s.last_attempt) < FORGET_IDLE_IP
            });
        }
        let burst = self.attempts_burst.max(1) as f64;
        let state = by_key.entry(key.clone()).or_insert_with(|| KeyState {
            open: 0,
            attempts: TokenBucket::new(self.attempts_per_sec as f64, burst, now),
            last_attempt: now,
        });
        state.last_attempt = now;
        if self.attempts_per_sec > 0 && !state.attempts.take(now) {
            return Err(Refusal::TooManyAttempts { what: self.what });
        }
        if self.max_open > 0 && state.open >= self.max_open {
            return Err(Refusal::TooManyConnections {
                max: self.max_open,
                what: self.what,
            });
        }
        state.open += 1;
        Ok(OpenSocket {
            limits: self.clone(),
            key,
        })
    }
}

/// One admitted socket; dropping it frees its place.
pub struct OpenSocket<K: std::hash::Hash + Eq + Clone> {
    limits: Arc<ConnLimits<K>>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Clone> Drop for OpenSocket<K> {
    fn drop(&mut self) {
        let mut by_key = self.limits.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = by_key.get_mut(&self.key) {
            state.open = state.open.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sockets_per_ip_are_capped_and_freed_on_drop() {
        let t0 = Instant::now();
        let limits = IpLimits::new("address", 2, 0, 0);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        let a = limits.admit(ip, t0).expect("first");
        let _b = limits.admit(ip, t0).expect("second");
        assert_eq!(
            limits.admit(ip, t0).err(),
            Some(Refusal::TooManyConnections {
                max: 2,
                what: "address"
            })
        );
        assert!(
            limits.admit(other, t0).is_ok(),
            "another address is not affected"
        );
        drop(a);
        assert!(limits.admit(ip, t0).is_ok());
    }

    #[test]
    fn attempts_per_ip_are_rate_limited() {
        let t0 = Instant::now();
        let limits = IpLimits::new("address", 0, 1, 2);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(limits.admit(ip, t0).is_ok());
        assert!(limits.admit(ip, t0).is_ok());
        assert_eq!(
            limits.admit(ip, t0).err(),
            Some(Refusal::TooManyAttempts { what: "address" })
        );
        assert!(limits.admit(ip, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 3.0, t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(
            b.take(t0 + Duration::from_millis(100)),
            "one token refilled after 1/rate"
        );
        assert!(!b.take(t0 + Duration::from_millis(100)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.take(later)));
        assert!(!b.take(later));
    }

    #[test]
    fn limiter_warns_once_then_closes_a_client_that_keeps_on() {
        let t0 = Instant::now();
        let mut l = FrameLimiter::new(1, 2, t0);
        assert_eq!(l.check(t0), Verdict::Allow);
        assert_eq!(l.check(t0), Verdict::Allow);
        assert_eq!(l.check(t0), Verdict::LimitAndWarn);
        assert_eq!(l.check(t0), Verdict::Limit);
        assert_eq!(l.check(t0), Verdict::Close);
    }

    #[test]
    fn limiter_forgives_a_client_that_slows_down() {
        let t0 = Instant::now();
        let mut l = FrameLimiter::new(1, 1, t0);
        assert_eq!(l.check(t0), Verdict::Allow);
        assert_eq!(l.check(t0), Verdict::LimitAndWarn);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(l.check(t1), Verdict::Allow);
        assert_eq!(
            l.check(t1),
            Verdict::LimitAndWarn,
            "warned again after being let through"
        );
    }

    #[test]
    fn a_flood_is_closed_though_the_refill_lets_a_frame_through_now_and_then() {
        // 1,000 frames/s in bursts of 2,000, and a client sending ten times that: a token
        // comes back every millisecond, so one frame in ten passes; the other nine count.
        let t0 = Instant::now();
        let mut l = FrameLimiter::new(1000, 2000, t0);
        let mut verdicts = Vec::new();
        for n in 0..10_000u64 {
            let at = t0 + Duration::from_micros(n * 100);
            verdicts.push(l.check(at));
            if verdicts.last() == Some(&Verdict::Close) {
                break;
            }
        }
        assert_eq!(verdicts.last(), Some(&Verdict::Close), "never closed");
        let warned = verdicts
            .iter()
            .filter(|v| **v == Verdict::LimitAndWarn)
            .count();
        assert_eq!(warned, 1, "warned once");
        assert!(
            verdicts.len() < 5000,
            "closed after {} frames",
            verdicts.len()
        );
    }

    #[test]
    fn write_limits_count_per_user_and_per_agent_token() {
        let config = crate::config::Config {
            client_rate: 1,
            client_burst: 2,
            agent_rate: 1,
            agent_burst: 1,
            ..crate::config::Config::default()
        };
        let limits = WriteLimits::new(&config);
        let caller = |user: &str, kind, token: &str| crate::auth::Caller {
            user: user.into(),
            kind,
            token_id: token.into(),
            session_id: None,
        };
        let alice = caller("alice", crate::auth::TokenKind::User, "t1");
        assert!(limits.check(&alice).is_ok() && limits.check(&alice).is_ok());
        assert!(limits.check(&alice).is_err(), "a burst of two");
        let bob = caller("bob", crate::auth::TokenKind::User, "t2");
        assert!(limits.check(&bob).is_ok(), "another user is not affected");
        let agent = caller("alice", crate::auth::TokenKind::Agent, "t3");
        assert!(limits.check(&agent).is_ok(), "agents count apart");
        assert!(limits.check(&agent).is_err());
        let other_token = caller("alice", crate::auth::TokenKind::Agent, "t4");
        assert!(limits.check(&other_token).is_ok(), "per agent token");
    }

    #[test]
    fn rate_zero_means_no_limit() {
        let t0 = Instant::now();
        let mut l = FrameLimiter::new(0, 0, t0);
        assert!((0..10_000).all(|_| l.check(t0) == Verdict::Allow));
    }
}
