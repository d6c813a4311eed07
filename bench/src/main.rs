//! `lantern-bench`: Lantern's load generator. One command runs every scenario against the
//! release binary and, in the same run, against a minimal in-memory WebSocket broadcast (the
//! baseline, [`baseline`]: our stand-in for what this machine can do at all), and writes a
//! Markdown table of absolute figures, ratios to the baseline, the issue's targets and the
//! machine's load.
//!
//! - [`target`]: starting each server as its own process (Lantern, a two-node Lantern cluster
//!   on Redis, the baseline); subscribers that check order and exactly-once delivery;
//!   publishers; memory and CPU from `/proc`.
//! - [`redis`]: the cluster's `redis-server`, on a free port in a temp dir.
//! - [`scenarios`]: fan-out, many workflows, publish, idle sockets, reconnect storm, latency,
//!   streaming; the cluster rows run fan-out, publish and latency across two nodes.
//! - [`pages`]: server-side render time of a run page and the size of the WASM.
//! - [`pin`]: `--pin`, the server on one CPU and the load generator on the others.
//!
//! ```text
//! lantern-bench [--quick] [--lantern target/release/lantern] [--site target/site] [--out FILE]
//!               [--only NAME] [--pin] [--stream-agents N]
//! lantern-bench baseline ADDR      (the baseline server; the bench starts it itself)
//! ```
//! Exits 1 when any scenario lost, duplicated or reordered an event (or failed otherwise):
//! such a run is a failure, not a figure. `--quick` is the seconds-long smoke run CI makes.

mod baseline;
mod pages;
mod pin;
mod redis;
mod scenarios;
mod target;

use std::path::PathBuf;

use scenarios::{Figure, Sizes};
use target::{Kind, Target};

/// Lantern's load generator: every scenario against Lantern and the baseline, in one run.
#[derive(clap::Parser)]
#[command(name = "lantern-bench")]
struct Options {
    #[command(subcommand)]
    command: Option<Command>,
    /// The seconds-long smoke run CI makes.
    #[arg(long)]
    quick: bool,
    /// Run only the rows whose name contains this (e.g. `publish`).
    #[arg(long)]
    only: Option<String>,
    /// The Lantern binary under test.
    #[arg(long, default_value = "target/release/lantern")]
    lantern: PathBuf,
    /// The built site (for the page and WASM rows).
    #[arg(long, default_value = "target/site")]
    site: PathBuf,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Server on CPU 0, load generator on the rest (see the `pin` module).
    #[arg(long)]
    pin: bool,
    /// Agents in the streaming row instead of its usual number: to find the load at which
    /// its latency target stops holding (the rate and viewers per agent stay).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    stream_agents: Option<u32>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// The baseline server (the bench starts it itself).
    Baseline {
        #[arg(default_value = "127.0.0.1:0")]
        addr: String,
    },
}

/// How a row's figure is judged.
#[derive(Clone, Copy)]
enum Goal {
    /// Lantern ÷ baseline at least this.
    RatioAtLeast(f64),
    AtLeast(f64),
    AtMost(f64),
    /// Reported, no target.
    None,
}

struct Row {
    name: String,
    unit: &'static str,
    goal: Goal,
    lantern: Figure,
    baseline: Option<Figure>,
    /// A cluster row's single-node figure, measured in the same run (the `lantern` figure is
    /// then the cluster's).
    single: Option<Figure>,
}

fn main() {
    let options = <Options as clap::Parser>::parse();
    if let Some(Command::Baseline { addr }) = &options.command {
        if let Err(e) = runtime().block_on(baseline::run(addr)) {
            eprintln!("baseline: {e}");
            std::process::exit(1);
        }
        return;
    }
    if options.pin {
        // Before the runtime exists, so every worker thread inherits it.
        let cpus = pin::bench_cpus();
        if cpus.is_empty() {
            eprintln!("lantern-bench: --pin needs at least 2 CPUs");
            std::process::exit(2);
        }
        if let Err(e) = pin::restrict_to(&cpus) {
            eprintln!("lantern-bench: --pin: {e}");
            std::process::exit(2);
        }
    }
    runtime().block_on(bench(options));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("lantern-bench: cannot start the runtime: {e}");
            std::process::exit(1);
        })
}

async fn bench(options: Options) {
    let load_before = loadavg();
    let cpu_before = cpu_times();
    let rows = run_all(&options).await;
    let stolen = cpu_before
        .zip(cpu_times())
        .and_then(|(a, b)| a.stolen_share(&b));
    let table = report(&options, &rows, &load_before, stolen);
    println!("{table}");
    if let Some(out) = &options.out {
        if let Err(e) = std::fs::write(out, &table) {
            eprintln!("lantern-bench: cannot write {}: {e}", out.display());
        }
    }
    let failed = rows.iter().any(|r| {
        [Some(&r.lantern), r.baseline.as_ref(), r.single.as_ref()]
            .into_iter()
            .flatten()
            .any(|f| f.value.is_err())
    });
    std::process::exit(i32::from(failed));
}

/// Both targets, fresh for each scenario (so one scenario's memory does not count in the next).
macro_rules! both {
    ($options:expr, |$t:ident| $scenario:expr) => {{
        let baseline = run_on(Kind::Baseline, $options, |$t| {
            Box::pin(async move { $scenario })
        })
        .await;
        let lantern = run_on(Kind::Lantern, $options, |$t| {
            Box::pin(async move { $scenario })
        })
        .await;
        (lantern, Some(baseline))
    }};
}

type Scenario<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = target::Result<(f64, String)>> + Send + 'a>>;

async fn run_on<F>(kind: Kind, options: &Options, scenario: F) -> Figure
where
    F: for<'a> FnOnce(&'a Target) -> Scenario<'a>,
{
    match Target::start(kind, &options.lantern, options.pin).await {
        Ok(target) => scenarios::measure(&target, scenario(&target)).await,
        Err(e) => Figure {
            value: Err(format!("cannot start: {e}")),
            note: String::new(),
            server_cpu: 0.0,
        },
    }
}

async fn run_all(options: &Options) -> Vec<Row> {
    let s = if options.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let mut rows = Vec::new();
    let wanted = |name: &str| {
        options
            .only
            .as_ref()
            .is_none_or(|only| name.contains(only.as_str()))
    };
    let mut row = |name: String, unit, goal, (lantern, baseline, single)| {
        eprintln!("{name}: done");
        rows.push(Row {
            name,
            unit,
            goal,
            lantern,
            baseline,
            single,
        });
    };
    // A row run on both targets, unless `--only` leaves it out.
    macro_rules! compared {
        ($name:expr, $unit:expr, $goal:expr, |$t:ident| $scenario:expr) => {{
            let name = $name;
            if wanted(&name) {
                let (lantern, baseline) = both!(options, |$t| $scenario);
                row(name, $unit, $goal, (lantern, baseline, None));
            }
        }};
    }
    // A row run on the baseline, one node and a cluster of two, fresh for each.
    macro_rules! clustered {
        ($name:expr, $unit:expr, $goal:expr, |$t:ident| $scenario:expr) => {{
            let name = $name;
            if wanted(&name) {
                let (single, baseline) = both!(options, |$t| $scenario);
                let cluster = run_on(Kind::Cluster, options, |$t| {
                    Box::pin(async move { $scenario })
                })
                .await;
                row(name, $unit, $goal, (cluster, baseline, Some(single)));
            }
        }};
    }
    for (subs, events) in [s.fanout_small, s.fanout_large] {
        compared!(
            format!("fan-out: 1 workflow × {subs} subscribers, {events} events"),
            "deliveries/s",
            Goal::RatioAtLeast(0.7),
            |t| scenarios::fanout(t, subs, events).await
        );
    }
    let (workflows, subs, events) = s.many;
    compared!(
        format!("many: {workflows} workflows × {subs} subscribers, {events} events each"),
        "deliveries/s",
        Goal::None,
        |t| scenarios::many(t, workflows, subs, events).await
    );
    let events = s.publish;
    compared!(
        format!("publish: 1 agent, {events} acked events (Lantern: durable)"),
        "events/s",
        Goal::AtLeast(20_000.0),
        |t| scenarios::publish_rate(t, events).await
    );
    let (subs, rate, secs) = s.latency;
    compared!(
        format!("latency: {subs} subscribers × {rate} events/s for {secs} s, p99"),
        "ms",
        Goal::AtMost(2.0),
        |t| scenarios::latency(t, subs, rate, secs).await
    );
    let (agents, rate, viewers, secs) = s.stream;
    let agents = options.stream_agents.map_or(agents, |n| n as usize);
    compared!(
        format!(
            "streaming: {agents} agents × {rate} deltas/s × {viewers} viewers each for {secs} s, p99"
        ),
        "ms",
        Goal::AtMost(25.0),
        |t| scenarios::stream(t, agents, rate, viewers, secs).await
    );
    let deltas = s.stream_one;
    compared!(
        format!("streaming: 1 agent, {deltas} deltas as fast as acks allow"),
        "deltas/s",
        Goal::AtLeast(20_000.0),
        |t| scenarios::stream_one(t, deltas).await
    );
    let n = s.idle;
    compared!(
        format!("idle: {n} subscriber sockets, server RSS per socket"),
        "KiB",
        Goal::AtMost(8.0),
        |t| scenarios::idle(t, n).await
    );
    let (subs, backlog) = s.storm;
    compared!(
        format!("reconnect storm: {subs} subscribers resume with {backlog} events behind"),
        "s",
        Goal::AtMost(2.0),
        |t| scenarios::storm(t, subs, backlog).await
    );
    let (subs, events) = s.fanout_small;
    clustered!(
        format!(
            "cluster: fan-out across nodes, 1 workflow × {subs} subscribers on node B, {events} \
             events published on node A"
        ),
        "deliveries/s",
        Goal::None,
        |t| scenarios::fanout(t, subs, events).await
    );
    let events = s.publish;
    clustered!(
        format!("cluster: publish: 1 agent, {events} acked events (durable in Redis)"),
        "events/s",
        Goal::None,
        |t| scenarios::publish_rate(t, events).await
    );
    let (subs, rate, secs) = s.latency;
    clustered!(
        format!(
            "cluster: latency: {subs} subscribers (half on node A, half on B) × {rate} events/s \
             on node A for {secs} s, p99"
        ),
        "ms",
        Goal::None,
        |t| scenarios::latency_across(t, subs, rate, secs).await
    );
    let site = options.site.clone();
    let name = String::from("run page server-side render (20 events), p50");
    if wanted(&name) {
        row(
            name,
            "ms",
            Goal::AtMost(5.0),
            (
                run_on(Kind::Lantern, options, |t| {
                    Box::pin(async move { pages::ssr_p50(t).await })
                })
                .await,
                None,
                None,
            ),
        );
    }
    let name = String::from("release WASM, gzip -9");
    if wanted(&name) {
        row(
            name,
            "KB",
            Goal::AtMost(275.0),
            (pages::wasm_gzip_kb(&site), None, None),
        );
    }
    rows
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The machine's CPU time so far, from the `cpu` line of `/proc/stat` (in clock ticks).
#[derive(Debug, PartialEq)]
struct CpuTimes {
    /// Every field summed: user, nice, system, idle, iowait, irq, softirq, steal.
    total: u64,
    /// Time the hypervisor gave this virtual machine's CPUs to someone else: on a shared host
    /// it slows both servers alike, and explains figures that differ between runs.
    steal: u64,
}

impl CpuTimes {
    fn parse(proc_stat: &str) -> Option<Self> {
        let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        Some(Self {
            total: ticks.iter().sum(),
            steal: *ticks.get(7)?,
        })
    }

    /// The share of CPU time stolen between `self` and `later`, in percent.
    fn stolen_share(&self, later: &Self) -> Option<f64> {
        let total = later.total.checked_sub(self.total).filter(|t| *t > 0)?;
        let steal = later.steal.checked_sub(self.steal)?;
        Some(100.0 * steal as f64 / total as f64)
    }
}

fn cpu_times() -> Option<CpuTimes> {
    CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn report(options: &Options, rows: &[Row], load_before: &str, stolen: Option<f64>) -> String {
    let cores = pin::online_cpus();
    let pinned = if options.pin {
        format!(
            " Pinned (`--pin`): each server (a cluster's nodes and Redis) on CPU {}, the load \
         generator on CPUs {:?}.",
            pin::SERVER_CPU,
            pin::bench_cpus()
        )
    } else {
        " Not pinned: the servers and the load generator share every core.".into()
    };
    let stolen = stolen.map_or_else(|| "an unknown share".to_owned(), |p| format!("{p:.1} %"));
    let mut out = format!(
        "# Lantern benchmark{}\n\nMachine: {cores} cores; load average {load_before} before, {} after; \
         {stolen} of the CPU time stolen by the hypervisor during the run.{pinned} \
         Lantern: `{}` (SQLite, durable appends); baseline: `lantern-bench baseline` (in-memory \
         broadcast, no durability, auth or validation). Rows named `cluster:` run on two \
         Lantern nodes sharing one `redis-server` (AOF, `appendfsync everysec`; each node its \
         own data dir): their Lantern column is the cluster's, and the note gives the single \
         node's figure from the same run. Ratio = Lantern ÷ baseline. CPU = server process CPU \
         seconds during the scenario (a cluster's: both nodes and Redis).\n\n\
         | scenario | Lantern | baseline | ratio | target | met | Lantern CPU s | baseline CPU s | notes |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        if options.quick { " (quick smoke run)" } else { "" },
        loadavg(),
        options.lantern.display(),
    );
    for row in rows {
        out.push_str(&row_line(row));
    }
    out
}

fn row_line(row: &Row) -> String {
    let show = |f: &Figure| match &f.value {
        Ok(v) => format!("{} {}", pretty(*v), row.unit),
        Err(e) => format!("FAILED: {e}"),
    };
    let lantern = row.lantern.value.as_ref().ok().copied();
    let base = row
        .baseline
        .as_ref()
        .and_then(|b| b.value.as_ref().ok().copied());
    let ratio = lantern.zip(base).map(|(l, b)| l / b);
    let (target, met) = match row.goal {
        Goal::RatioAtLeast(min) => (format!("ratio ≥ {min}"), ratio.map(|r| r >= min)),
        Goal::AtLeast(min) => (
            format!("≥ {} {}", pretty(min), row.unit),
            lantern.map(|v| v >= min),
        ),
        Goal::AtMost(max) => (
            format!("≤ {} {}", pretty(max), row.unit),
            lantern.map(|v| v <= max),
        ),
        Goal::None => ("—".into(), None),
    };
    let mut notes: Vec<String> = vec![row.lantern.note.clone()];
    if let Some(single) = &row.single {
        let versus = single
            .value
            .as_ref()
            .ok()
            .zip(lantern)
            .map_or(String::new(), |(s, l)| {
                format!(" (cluster ÷ single node {:.2})", l / s)
            });
        notes.push(format!(
            "single node (SQLite) in this run: {}{versus}, {:.2} CPU s, {}",
            show(single),
            single.server_cpu,
            single.note
        ));
    }
    if let Some(baseline) = &row.baseline {
        notes.push(format!("baseline: {}", baseline.note));
    }
    notes.retain(|n| !n.is_empty() && n != "baseline: ");
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} |\n",
        row.name,
        show(&row.lantern),
        row.baseline.as_ref().map_or("—".into(), show),
        ratio.map_or("—".into(), |r| format!("{r:.2}")),
        target,
        met.map_or("—", |m| if m { "yes" } else { "**no**" }),
        row.lantern.server_cpu,
        row.baseline
            .as_ref()
            .map_or("—".into(), |b| format!("{:.2}", b.server_cpu)),
        notes.join("; "),
    )
}

/// A figure with sensible precision.
fn pretty(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0}", v)
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::CpuTimes;

    #[test]
    fn steal_share_comes_from_the_cpu_line() {
        let before = "cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\n";
        let after = "cpu  200 0 100 1500 10 0 0 190 0 0\n";
        let (a, b) = (
            CpuTimes::parse(before).unwrap(),
            CpuTimes::parse(after).unwrap(),
        );
        assert_eq!(
            a,
            CpuTimes {
                total: 1000,
                steal: 40
            }
        );
        // 1000 ticks passed, 150 of them stolen.
        assert_eq!(a.stolen_share(&b), Some(15.0));
        assert_eq!(b.stolen_share(&a), None);
        assert_eq!(CpuTimes::parse("intr 1 2 3\n"), None);
        assert_eq!(CpuTimes::parse("cpu  1 2 3\n"), None);
    }
}
