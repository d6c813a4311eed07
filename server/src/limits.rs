//! Per-connection frame rate limiting: a token bucket, and what happens to a client that
//! keeps going over it. Pure logic; the socket task asks [`FrameLimiter::check`] per frame.

use std::time::Instant;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
