//! Limits that keep one client from hurting the others:
//! - [`FrameLimiter`]: frames per second on one connection (token bucket, then close 4029);
//! - [`IpLimits`]: open sockets per IP and socket upgrades per second per IP (HTTP 429).

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

    /// Take one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
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
/// is closed if it sends `burst` more frames before the bucket lets one through again.
#[derive(Debug, Clone)]
pub struct FrameLimiter {
    /// `None`: no limit (rate 0).
    bucket: Option<TokenBucket>,
    patience: u32,
    /// Frames refused since the last one allowed.
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
        if bucket.take(now) {
            self.refused = 0;
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

/// Why an upgrade was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooManyConnections(u32),
    TooManyAttempts,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooManyConnections(max) => {
                write!(
                    f,
                    "too many open connections from this address (at most {max})"
                )
            }
            Self::TooManyAttempts => {
                f.write_str("too many connection attempts from this address; retry later")
            }
        }
    }
}

/// Per-IP socket limits. One lock over a small map; never held across an await.
pub struct IpLimits {
    /// 0 = no limit.
    max_open: u32,
    attempts_per_sec: u32,
    attempts_burst: u32,
    by_ip: Mutex<HashMap<IpAddr, IpState>>,
}

struct IpState {
    open: u32,
    attempts: TokenBucket,
    last_attempt: Instant,
}

/// Entries of addresses with nothing open are forgotten this long after their last attempt.
const FORGET_IDLE_IP: Duration = Duration::from_secs(60);

impl IpLimits {
    pub fn new(max_open: u32, attempts_per_sec: u32, attempts_burst: u32) -> Arc<Self> {
        Arc::new(Self {
            max_open,
            attempts_per_sec,
            attempts_burst,
            by_ip: Mutex::default(),
        })
    }

    /// Admit one more socket from `ip`, or say why not. The guard releases it when dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<OpenSocket, Refusal> {
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if by_ip.len() > 10_000 {
            by_ip.retain(|_, s| {
                s.open > 0 || now.saturating_duration_since(s.last_attempt) < FORGET_IDLE_IP
            });
        }
        let burst = self.attempts_burst.max(1) as f64;
        let state = by_ip.entry(ip).or_insert_with(|| IpState {
            open: 0,
            attempts: TokenBucket::new(self.attempts_per_sec as f64, burst, now),
            last_attempt: now,
        });
        state.last_attempt = now;
        if self.attempts_per_sec > 0 && !state.attempts.take(now) {
            return Err(Refusal::TooManyAttempts);
        }
        if self.max_open > 0 && state.open >= self.max_open {
            return Err(Refusal::TooManyConnections(self.max_open));
        }
        state.open += 1;
        Ok(OpenSocket {
            limits: self.clone(),
            ip,
        })
    }
}

/// One admitted socket; dropping it frees its place.
pub struct OpenSocket {
    limits: Arc<IpLimits>,
    ip: IpAddr,
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        let mut by_ip = self.limits.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = by_ip.get_mut(&self.ip) {
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
        let limits = IpLimits::new(2, 0, 0);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        let a = limits.admit(ip, t0).expect("first");
        let _b = limits.admit(ip, t0).expect("second");
        assert_eq!(
            limits.admit(ip, t0).err(),
            Some(Refusal::TooManyConnections(2))
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
        let limits = IpLimits::new(0, 1, 2);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(limits.admit(ip, t0).is_ok());
        assert!(limits.admit(ip, t0).is_ok());
        assert_eq!(limits.admit(ip, t0).err(), Some(Refusal::TooManyAttempts));
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
    fn rate_zero_means_no_limit() {
        let t0 = Instant::now();
        let mut l = FrameLimiter::new(0, 0, t0);
        assert!((0..10_000).all(|_| l.check(t0) == Verdict::Allow));
    }
}
