//! The scenarios. Each runs against one fresh [`Target`] and returns a [`Figure`]; every
//! subscriber checks that it got every event exactly once, in order ([`Sub`]), and any loss,
//! reorder, refusal or timeout makes the figure a failure, not a number.

use std::time::{Duration, Instant};

use futures::future::try_join_all;

use crate::target::{Histogram, Kind, Result, Sub, Target};

/// Events per publish frame.
const BATCH: usize = 100;
/// Sockets opened at once while setting up (a connect storm is its own scenario).
const CONNECT_WAVE: usize = 200;
/// Longest any scenario may take before it counts as failed.
const LIMIT: Duration = Duration::from_secs(180);

/// Scenario sizes: `full` for the report, `quick` for the CI smoke run.
#[derive(Clone, Copy)]
pub struct Sizes {
    pub fanout_small: (usize, u64),
    pub fanout_large: (usize, u64),
    pub many: (usize, usize, u64),
    pub publish: u64,
    pub idle: usize,
    pub storm: (usize, u64),
    pub latency: (usize, u64, u64),
    /// Agents, deltas per second each, viewers each, seconds.
    pub stream: (usize, u64, usize, u64),
    /// Deltas one agent streams as fast as acks allow.
    pub stream_one: u64,
}

impl Sizes {
    pub fn full() -> Self {
        Self {
            fanout_small: (100, 2_000),
            fanout_large: (1_000, 300),
            many: (100, 10, 200),
            publish: 50_000,
            idle: 10_000,
            storm: (1_000, 1_000),
            latency: (100, 150, 10),
            stream: (200, 50, 10, 10),
            stream_one: 50_000,
        }
    }

    pub fn quick() -> Self {
        Self {
            fanout_small: (10, 200),
            fanout_large: (50, 50),
            many: (5, 3, 50),
            publish: 2_000,
            idle: 100,
            storm: (20, 100),
            latency: (10, 150, 1),
            stream: (5, 50, 2, 1),
            stream_one: 2_000,
        }
    }
}

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The number (higher is better unless `lower_is_better`), or why the run failed.
    pub value: std::result::Result<f64, String>,
    /// Extra figures for the report (e.g. the other percentiles).
    pub note: String,
    /// Server CPU seconds used during the scenario.
    pub server_cpu: f64,
}

/// Run `scenario` with a time limit, turning any error into a failed figure.
pub async fn measure<F>(target: &Target, scenario: F) -> Figure
where
    F: std::future::Future<Output = Result<(f64, String)>>,
{
    let cpu = target.cpu_parts();
    let outcome = tokio::time::timeout(LIMIT, scenario).await;
    let used: Vec<(&str, f64)> = target
        .cpu_parts()
        .into_iter()
        .zip(cpu)
        .map(|((name, after), (_, before))| (name, after - before))
        .collect();
    let server_cpu = used.iter().map(|(_, secs)| secs).sum();
    match outcome {
        Ok(Ok((value, note))) if target.kind == Kind::Cluster => {
            // Where a cluster's time went: each process's CPU, and node A's appends (each one
            // a script run in Redis) unless the scenario reported them itself.
            let parts: Vec<String> = used
                .iter()
                .map(|(name, secs)| format!("{name} {secs:.2}"))
                .collect();
            let mut note = format!("{note}; CPU s: {}", parts.join(", "));
            if !note.contains("server append") {
                note.push_str(&server_share(target).await.unwrap_or_default());
            }
            Figure {
                value: Ok(value),
                note,
                server_cpu,
            }
        }
        Ok(Ok((value, note))) => Figure {
            value: Ok(value),
            note,
            server_cpu,
        },
        Ok(Err(e)) => Figure {
            value: Err(e.to_string()),
            note: String::new(),
            server_cpu,
        },
        Err(_) => Figure {
            value: Err(format!("did not finish within {} s", LIMIT.as_secs())),
            note: String::new(),
            server_cpu,
        },
    }
}

/// `n` subscribers of `topic` from `after`, connected in waves.
async fn subscribers(target: &Target, topic: &str, n: usize, after: u64) -> Result<Vec<Sub>> {
    let mut subs = Vec::with_capacity(n);
    while subs.len() < n {
        let wave = CONNECT_WAVE.min(n - subs.len());
        let joined = (0..wave).map(|_| target.subscribe(topic, after));
        subs.extend(try_join_all(joined).await?);
    }
    Ok(subs)
}

/// Publish `events` to `topic` in frames of [`BATCH`], and wait for every ack.
pub async fn publish(target: &Target, topic: &str, events: u64) -> Result<()> {
    let (mut sink, acks) = target.publisher(topic).await?.split();
    let counted = tokio::spawn(acks.count(events));
    let mut left = events;
    while left > 0 {
        let n = (left as usize).min(BATCH);
        sink.send(n).await?;
        left -= n as u64;
    }
    counted.await??;
    Ok(())
}

/// Every subscriber reads `events` events, in parallel; all their latencies (ms).
async fn read_all(subs: Vec<Sub>, events: u64) -> Result<Vec<f64>> {
    Ok(read_each(subs, events).await?.concat())
}

/// Every subscriber reads `events` events, in parallel; each one's latencies (ms), in event
/// order.
async fn read_each(subs: Vec<Sub>, events: u64) -> Result<Vec<Vec<f64>>> {
    // Collected, so every reader is spawned before any is awaited.
    let readers: Vec<_> = subs
        .into_iter()
        .map(|sub| tokio::spawn(sub.take(events)))
        .collect();
    let mut latencies = Vec::with_capacity(readers.len());
    for reader in readers {
        latencies.push(reader.await??);
    }
    Ok(latencies)
}

/// Per event, the latency of its first delivery (the quickest subscriber): the time before
/// anyone gets it (the server's own path), apart from the spread of writing it to everyone.
fn first_deliveries(per_subscriber: &[Vec<f64>]) -> Vec<f64> {
    let events = per_subscriber.iter().map(Vec::len).min().unwrap_or(0);
    (0..events)
        .map(|e| {
            per_subscriber
                .iter()
                .map(|latencies| latencies[e])
                .fold(f64::INFINITY, f64::min)
        })
        .collect()
}

/// Fan-out: `subs` subscribers of one workflow, `events` published: deliveries per second.
pub async fn fanout(target: &Target, subs: usize, events: u64) -> Result<(f64, String)> {
    let topic = target.topic(0).await?;
    let readers = subscribers(target, &topic, subs, 0).await?;
    let started = Instant::now();
    let reading = tokio::spawn(read_all(readers, events));
    publish(target, &topic, events).await?;
    let latencies = reading.await??;
    let seconds = started.elapsed().as_secs_f64();
    let deliveries = subs as f64 * events as f64;
    Ok((
        deliveries / seconds,
        format!(
            "{deliveries} deliveries in {seconds:.2} s, p99 {:.1} ms",
            percentile(latencies, 0.99)
        ),
    ))
}

/// Many: `workflows` workflows × `subs` subscribers, all published at once: deliveries/s.
pub async fn many(
    target: &Target,
    workflows: usize,
    subs: usize,
    events: u64,
) -> Result<(f64, String)> {
    let mut topics = Vec::new();
    let mut readers = Vec::new();
    for n in 0..workflows {
        let topic = target.topic(n).await?;
        readers.push(subscribers(target, &topic, subs, 0).await?);
        topics.push(topic);
    }
    let started = Instant::now();
    let reading: Vec<_> = readers
        .into_iter()
        .map(|subs| tokio::spawn(read_all(subs, events)))
        .collect();
    try_join_all(topics.iter().map(|topic| publish(target, topic, events))).await?;
    for r in reading {
        r.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let deliveries = (workflows * subs) as f64 * events as f64;
    Ok((
        deliveries / seconds,
        format!("{deliveries} deliveries in {seconds:.2} s"),
    ))
}

/// Publish: one publisher, `events` acked appends (durable for Lantern): events per second.
pub async fn publish_rate(target: &Target, events: u64) -> Result<(f64, String)> {
    let topic = target.topic(0).await?;
    let started = Instant::now();
    publish(target, &topic, events).await?;
    let seconds = started.elapsed().as_secs_f64();
    // Durability check for Lantern: the log holds them all (in a cluster, as node B reads it).
    if target.kind != Kind::Baseline {
        let reader = target.subscribe(&topic, events - 1).await?;
        reader.take(1).await?;
    }
    Ok((
        events as f64 / seconds,
        format!("{events} events in {seconds:.2} s"),
    ))
}

/// Idle: `n` open subscriber sockets: server memory per socket (KiB).
pub async fn idle(target: &Target, n: usize) -> Result<(f64, String)> {
    let topic = target.topic(0).await?;
    // Warm up what every connection shares, so it is not counted per socket.
    let warm = subscribers(target, &topic, 10, 0).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = target.rss_kib();
    let open = subscribers(target, &topic, n, 0).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = target.rss_kib();
    let per_socket = after.saturating_sub(before) as f64 / n as f64;
    drop((warm, open));
    Ok((per_socket, format!("RSS {} → {} KiB", before, after)))
}

/// Reconnect storm: `subs` subscribers resume at once with a backlog of `backlog` events:
/// seconds until all have caught up.
pub async fn storm(target: &Target, subs: usize, backlog: u64) -> Result<(f64, String)> {
    let topic = target.topic(0).await?;
    publish(target, &topic, backlog).await?;
    let started = Instant::now();
    let joined = (0..subs).map(|_| async {
        let sub = target.subscribe(&topic, 0).await?;
        sub.take(backlog).await
    });
    try_join_all(joined).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((seconds, format!("{subs} × {backlog} events")))
}

/// Publish `events` to `topic` at `rate` a second, one per frame, and wait for every ack.
async fn publish_steadily(target: &Target, topic: &str, rate: u64, events: u64) -> Result<()> {
    let (mut sink, acks) = target.publisher(topic).await?.split();
    let counted = tokio::spawn(acks.count(events));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    for _ in 0..events {
        tick.tick().await;
        sink.send(1).await?;
    }
    counted.await?
}

/// Latency: `subs` subscribers, `rate` events per second for `secs` seconds, one event per
/// frame: p99 from send to receipt (ms); p50 and p99.9 in the note.
pub async fn latency(target: &Target, subs: usize, rate: u64, secs: u64) -> Result<(f64, String)> {
    let topic = target.topic(0).await?;
    let events = rate * secs;
    let readers = subscribers(target, &topic, subs, 0).await?;
    let reading = tokio::spawn(read_each(readers, events));
    publish_steadily(target, &topic, rate, events).await?;
    let per_subscriber = reading.await??;
    let first = first_deliveries(&per_subscriber);
    let latencies = per_subscriber.concat();
    let mut note = format!(
        "p50 {:.2} ms, p99.9 {:.2} ms, {} samples; each event's first delivery: p50 {:.2} ms, \
         p99 {:.2} ms",
        percentile(latencies.clone(), 0.5),
        percentile(latencies.clone(), 0.999),
        latencies.len(),
        percentile(first.clone(), 0.5),
        percentile(first, 0.99),
    );
    note.push_str(&server_share(target).await?);
    Ok((percentile(latencies, 0.99), note))
}

/// Latency across nodes: as [`latency`], but half the subscribers are on the publisher's node
/// and half where [`Target::subscribe`] puts them — in a cluster, the other node; elsewhere the
/// same server, so the halves differ only by chance. The note gives each half's first
/// deliveries: in a cluster, their difference is the hop between nodes (a notice through Redis
/// pub/sub, then the events read from Redis).
pub async fn latency_across(
    target: &Target,
    subs: usize,
    rate: u64,
    secs: u64,
) -> Result<(f64, String)> {
    let topic = target.topic(0).await?;
    let events = rate * secs;
    let mut beside = Vec::with_capacity(subs / 2);
    for _ in 0..subs / 2 {
        beside.push(target.subscribe_beside_publisher(&topic, 0).await?);
    }
    let other = subscribers(target, &topic, subs - subs / 2, 0).await?;
    let reading_beside = tokio::spawn(read_each(beside, events));
    let reading_other = tokio::spawn(read_each(other, events));
    publish_steadily(target, &topic, rate, events).await?;
    let (beside, other) = (reading_beside.await??, reading_other.await??);
    let (first_beside, first_other) = (first_deliveries(&beside), first_deliveries(&other));
    let latencies = [beside.concat(), other.concat()].concat();
    let mut note = format!(
        "p50 {:.2} ms, p99.9 {:.2} ms, {} samples; each event's first delivery on the \
         publisher's node: p50 {:.2} ms, p99 {:.2} ms; on the other: p50 {:.2} ms, p99 {:.2} ms",
        percentile(latencies.clone(), 0.5),
        percentile(latencies.clone(), 0.999),
        latencies.len(),
        percentile(first_beside.clone(), 0.5),
        percentile(first_beside, 0.99),
        percentile(first_other.clone(), 0.5),
        percentile(first_other, 0.99),
    );
    note.push_str(&server_share(target).await?);
    Ok((percentile(latencies, 0.99), note))
}

/// Streaming: `agents` agents, each streaming one answer as `text_delta`s (one per frame, each
/// acked) at `rate` deltas/s for `secs` seconds to its own workflow with `viewers` viewers:
/// p99 from a delta's send to its receipt by a viewer (ms); deltas/s held, deliveries/s and the
/// other percentiles in the note. Every viewer checks each delta arrives once, in order.
pub async fn stream(
    target: &Target,
    agents: usize,
    rate: u64,
    viewers: usize,
    secs: u64,
) -> Result<(f64, String)> {
    let deltas = rate * secs;
    let mut topics = Vec::with_capacity(agents);
    let mut reading = Vec::with_capacity(agents);
    for n in 0..agents {
        let topic = target.topic(n).await?;
        let readers = subscribers(target, &topic, viewers, 0).await?;
        reading.push(tokio::spawn(read_each(readers, deltas)));
        topics.push(topic);
    }
    let mut publishers = Vec::with_capacity(agents);
    for topic in &topics {
        publishers.push(target.publisher(topic).await?.split());
    }
    let started = Instant::now();
    let streaming = publishers
        .into_iter()
        .enumerate()
        .map(|(n, (mut sink, acks))| {
            tokio::spawn(async move {
                let counted = tokio::spawn(acks.count(deltas));
                // Agents start spread over one period, as they would, not in lockstep.
                let period = Duration::from_secs_f64(1.0 / rate as f64);
                tokio::time::sleep(period.mul_f64(n as f64 / agents as f64)).await;
                let mut tick = tokio::time::interval(period);
                let message_id = format!("m{n}");
                for _ in 0..deltas {
                    tick.tick().await;
                    sink.send_delta(&message_id).await?;
                }
                counted.await?
            })
        });
    for agent in try_join_all(streaming).await? {
        agent?;
    }
    let held = Instant::now() - started;
    let mut latencies = Vec::new();
    for r in reading {
        for per_viewer in r.await?? {
            latencies.extend(per_viewer);
        }
    }
    let seconds = held.as_secs_f64();
    let total = (agents as u64 * deltas) as f64;
    let mut note = format!(
        "{:.0} deltas/s in (all acked), {:.0} deliveries/s out, over {seconds:.2} s; p50 {:.2} ms, \
         p99.9 {:.2} ms, {} samples",
        total / seconds,
        total * viewers as f64 / seconds,
        percentile(latencies.clone(), 0.5),
        percentile(latencies.clone(), 0.999),
        latencies.len(),
    );
    note.push_str(&server_share(target).await?);
    Ok((percentile(latencies, 0.99), note))
}

/// One agent streaming `deltas` deltas, one per frame, as fast as the acks come back (the
/// frames pipelined, every one acked; for Lantern that means committed): deltas per second.
pub async fn stream_one(target: &Target, deltas: u64) -> Result<(f64, String)> {
    let topic = target.topic(0).await?;
    let (mut sink, acks) = target.publisher(&topic).await?.split();
    let started = Instant::now();
    let counted = tokio::spawn(acks.count(deltas));
    for _ in 0..deltas {
        sink.send_delta("m").await?;
    }
    counted.await??;
    let seconds = started.elapsed().as_secs_f64();
    // Every delta is in the log, in order: a viewer reads them all back.
    let reader = target.subscribe(&topic, 0).await?;
    reader.take(deltas).await?;
    Ok((
        deltas as f64 / seconds,
        format!("{deltas} deltas in {seconds:.2} s"),
    ))
}

/// Lantern's own share of the latency, from its histograms (p99 as a bucket bound, so "≤"):
/// the durable append, then its commit → written to (or queued on) each subscriber's socket.
/// Empty for the baseline.
async fn server_share(target: &Target) -> Result<String> {
    let Some(metrics) = target.metrics().await? else {
        return Ok(String::new());
    };
    let mut share = String::new();
    for (name, what) in [
        ("lantern_append_seconds", "append"),
        ("lantern_fanout_seconds", "commit → written or queued"),
    ] {
        // (A cluster's node A delivers nothing when every subscriber is on node B.)
        if let Some(h) = Histogram::parse(&metrics, name).filter(|h| h.count() > 0.0) {
            share.push_str(&format!(
                ", server {what}: mean {:.2} ms, p99 ≤ {} ms",
                h.mean_ms(),
                h.quantile_bound_ms(0.99)
            ));
        }
    }
    Ok(share)
}

/// The `q` quantile (0–1) of `values`.
pub fn percentile(mut values: Vec<f64>, q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::{first_deliveries, percentile};

    #[test]
    fn an_events_first_delivery_is_its_quickest_subscriber() {
        let per_subscriber = vec![vec![3.0, 1.0, 5.0], vec![2.0, 4.0, 6.0]];
        assert_eq!(first_deliveries(&per_subscriber), [2.0, 1.0, 5.0]);
        assert!(first_deliveries(&[]).is_empty());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(values.clone(), 0.5), 50.0);
        assert_eq!(percentile(values.clone(), 0.99), 99.0);
        assert_eq!(percentile(values.clone(), 0.999), 100.0);
        assert_eq!(percentile(vec![3.0], 0.5), 3.0);
        assert!(percentile(Vec::new(), 0.5).is_nan());
    }
}
