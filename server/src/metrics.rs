//! What the server counts, for `GET /api/v1/websocket/stats` (JSON) and `GET /metrics`
//! (Prometheus text, written by the `prometheus` crate's encoder). One [`Metrics`] per server,
//! shared by the hub and the sockets; counters only go up, gauges follow open connections
//! through [`ConnectionGauge`] guards, so a connection that ends any way at all is uncounted.

use std::sync::Arc;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts, Registry,
};

/// What an open connection is (plain HTTP requests are not counted here).
#[derive(Clone, Copy, Debug)]
pub enum ConnectionKind {
    /// A viewer's socket.
    Subscriber,
    /// An agent's socket.
    Agent,
    /// A Server-Sent Events stream (the live workflow list).
    Stream,
}

pub struct Metrics {
    registry: Registry,
    pub events_appended: IntCounter,
    pub events_delivered: IntCounter,
    /// Backlogs served to subscribers (one per socket that replayed at least one event).
    pub replays: IntCounter,
    pub slow_consumer_closes: IntCounter,
    pub rate_limit_closes: IntCounter,
    /// Sockets dropped because the peer missed two pings (PROTOCOL.md §4).
    pub dead_peer_closes: IntCounter,
    /// TCP connections closed at once because a connection cap was reached.
    pub connections_refused: IntCounter,
    /// Time from the start of an append (lock, checks, store) to its broadcast.
    pub append_seconds: Histogram,
    /// Time from an event's append (serialized, then committed) to it being queued on a
    /// subscriber's socket, per subscriber (live events only; replays are not timed).
    pub fanout_seconds: Histogram,
    connections: IntGauge,
    by_kind: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    // Registering a fresh, uniquely named metric into a fresh registry cannot fail.
    let _ = registry.register(Box::new(counter.clone()));
    counter
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let connections = IntGauge::new(
            "lantern_connections",
            "open WebSocket connections and event streams",
        )
        .unwrap_or_else(|e| panic!("metric: {e}"));
        let _ = registry.register(Box::new(connections.clone()));
        let by_kind = IntGaugeVec::new(
            Opts::new(
                "lantern_connections_by_kind",
                "open WebSocket connections and event streams by kind",
            ),
            &["kind"],
        )
        .unwrap_or_else(|e| panic!("metric: {e}"));
        let _ = registry.register(Box::new(by_kind.clone()));
        let buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
        ];
        let histogram = |name: &str, help: &str| {
            let histogram =
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.clone()))
                    .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            let _ = registry.register(Box::new(histogram.clone()));
            histogram
        };
        let append_seconds = histogram("lantern_append_seconds", "durable append latency");
        let fanout_seconds = histogram(
            "lantern_fanout_seconds",
            "from the commit of an event's append to it being written to, or queued on, each subscriber socket",
        );
        Arc::new(Self {
            events_appended: counter(
                &registry,
                "lantern_events_appended_total",
                "events appended to workflow logs",
            ),
            events_delivered: counter(
                &registry,
                "lantern_events_delivered_total",
                "events queued to subscriber sockets",
            ),
            replays: counter(
                &registry,
                "lantern_replays_total",
                "backlogs replayed to subscribers",
            ),
            slow_consumer_closes: counter(
                &registry,
                "lantern_slow_consumer_closes_total",
                "sockets closed 4008 (too slow)",
            ),
            rate_limit_closes: counter(
                &registry,
                "lantern_rate_limit_closes_total",
                "sockets closed 4029 (rate limited)",
            ),
            dead_peer_closes: counter(
                &registry,
                "lantern_dead_peer_closes_total",
                "sockets dropped after the peer missed two pings",
            ),
            connections_refused: counter(
                &registry,
                "lantern_connections_refused_total",
                "TCP connections closed at once because a connection cap was reached",
            ),
            append_seconds,
            fanout_seconds,
            connections,
            by_kind,
            registry,
        })
    }

    /// Count one more open connection of `kind` until the guard is dropped.
    pub fn open(self: &Arc<Self>, kind: ConnectionKind) -> ConnectionGauge {
        self.connections.inc();
        self.by_kind.with_label_values(&[kind.label()]).inc();
        ConnectionGauge {
            metrics: self.clone(),
            kind,
        }
    }

    pub fn connections(&self, kind: ConnectionKind) -> i64 {
        self.by_kind.with_label_values(&[kind.label()]).get()
    }

    /// Everything, in the Prometheus text format.
    pub fn prometheus_text(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl ConnectionKind {
    fn label(self) -> &'static str {
        match self {
            Self::Subscriber => "subscriber",
            Self::Agent => "agent",
            Self::Stream => "stream",
        }
    }
}

/// One open connection, counted until dropped.
pub struct ConnectionGauge {
    metrics: Arc<Metrics>,
    kind: ConnectionKind,
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.metrics.connections.dec();
        self.metrics
            .by_kind
            .with_label_values(&[self.kind.label()])
            .dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_follow_guards_and_the_text_names_every_metric() {
        let metrics = Metrics::new();
        let a = metrics.open(ConnectionKind::Subscriber);
        let b = metrics.open(ConnectionKind::Agent);
        metrics.events_appended.inc_by(3);
        assert_eq!(metrics.connections(ConnectionKind::Subscriber), 1);
        drop(a);
        assert_eq!(metrics.connections(ConnectionKind::Subscriber), 0);
        let text = metrics.prometheus_text();
        for line in [
            "lantern_events_appended_total 3",
            "lantern_connections 1",
            "lantern_events_delivered_total 0",
            "lantern_connections_by_kind{kind=\"agent\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        drop(b);
    }
}
