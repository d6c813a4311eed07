//! Many nodes on one Redis (PROTOCOL.md §9): `lantern` processes given the same `--redis-url`
//! serve the same workflows, with every guarantee of one node. A real `redis-server` per test
//! (on a free port, in a temp dir) and real child processes, each node with a data dir of its
//! own: everything they share is in Redis, tokens too (minted by `lantern token create
//! --redis-url`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::redis_server::RedisServer;
use crate::common::{is_status, lantern_cli, seqs, spawn_binary, Ended, ServerProcess};

/// Nodes on one Redis: how long a dead node's key may live, a sweep, and slack.
const NODE_DEATH: Duration = Duration::from_secs(20);

struct Cluster {
    /// Held for the test's length: dropping it stops the server.
    _redis: RedisServer,
    url: String,
    nodes: Vec<ServerProcess>,
}

impl Cluster {
    /// `count` nodes on a fresh Redis, each with `extra` flags.
    async fn start(count: usize, extra: &[&str]) -> Self {
        let redis = RedisServer::start();
        let url = redis.url();
        let mut cluster = Self {
            _redis: redis,
            url: url.clone(),
            nodes: Vec::new(),
        };
        let token = cluster.token(&["--user", "admin"]).await;
        let agent_token = cluster.token(&["--user", "admin", "--agent"]).await;
        for _ in 0..count {
            let data = Arc::new(tempfile::tempdir().expect("temp dir"));
            let mut args = vec!["--redis-url", url.as_str()];
            args.extend_from_slice(extra);
            let mut node = spawn_binary(data, &args).await;
            node.server = node.server.with_tokens(token.clone(), agent_token.clone());
            cluster.nodes.push(node);
        }
        cluster
    }

    /// `lantern token create ARGS` on the cluster's Redis.
    async fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token", "create", "--redis-url", self.url.as_str()];
        all.extend_from_slice(args);
        lantern_cli(&all).await.expect("token create")
    }

    fn node(&self, n: usize) -> &crate::common::TestServer {
        &self.nodes[n].server
    }
}

fn thinking(n: usize) -> Value {
    json!({"type": "agent_thinking", "agent": "a", "content": n.to_string(), "id": format!("e{n}")})
}

fn contents(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "agent_thinking")
        .map(|e| e["content"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn an_agent_on_one_node_reaches_viewers_on_both_once_and_in_order() {
    let cluster = Cluster::start(2, &[]).await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    let id = a.create("external").await;
    let mut on_a = a.subscribe(&id, 0).await;
    let mut on_b = b.subscribe(&id, 0).await;
    let mut agent = a.agent(&id, "").await;
    for n in 1..=300 {
        agent.send_json(thinking(n)).await;
    }
    let sent: Vec<String> = (1..=300).map(|n| n.to_string()).collect();
    for viewer in [&mut on_a, &mut on_b] {
        let events = viewer.events(300).await;
        assert_eq!(seqs(&events), (1..=300).collect::<Vec<u64>>());
        assert_eq!(contents(&events), sent);
    }
    // A viewer moving from A to B with `after` resumes where it was.
    let mut moved = b.subscribe(&id, 120).await;
    let rest = moved.events(180).await;
    assert_eq!(seqs(&rest), (121..=300).collect::<Vec<u64>>());
}

/// 40 batches of 5 events numbered from `from`, one after another, over HTTP ingest.
async fn publish_batches(node: &crate::common::TestServer, id: &str, from: usize) {
    for batch in 0..40 {
        let first = from + batch * 5;
        let events: Vec<Value> = (first..first + 5).map(thinking).collect();
        node.publish(id, Value::Array(events)).await;
    }
}

#[tokio::test]
async fn publishers_on_two_nodes_make_one_contiguous_log_and_share_the_rules() {
    let cluster = Cluster::start(2, &[]).await;
    let (a, b) = (cluster.node(0), cluster.node(1));
    let id = a.create("external").await;
    tokio::join!(publish_batches(a, &id, 0), publish_batches(b, &id, 1000));
    let log = a.log(&id).await;
    assert_eq!(
        seqs(&log),
        (1..=400).collect::<Vec<u64>>(),
        "no seq lost or repeated"
    );
    for from in [0, 1000] {
        let mine: Vec<String> = contents(&log)
            .into_iter()
            .filter(|c| {
                c.parse::<usize>()
                    .is_ok_and(|n| (from..from + 200).contains(&n))
            })
            .collect();
        let sent: Vec<String> = (from..from + 200).map(|n| n.to_string()).collect();
        assert_eq!(mine, sent, "each node's batches once, in their order");
    }

    // A tool opened on A is closed on B; a second close, on A, is a conflict.
    let tool = |kind: &str| {
        json!([{"type": kind, "agent": "a", "tool": "search", "call_id": "c1",
                "input": {}, "ok": true, "duration_ms": 1}])
    };
    a.publish(&id, tool("tool_executing")).await;
    b.publish(&id, tool("tool_completed")).await;
    let (status, body) = a.ingest(&id, tool("tool_completed")).await;
    assert_eq!(status, 409, "{body}");
    // A retry of an id logged through A, sent to B, gets the seq it was logged at (which
    // depends on how the two nodes' first batches interleaved).
    let logged_at = log
        .iter()
        .find(|e| e["type"] == "agent_thinking" && e["content"] == "3")
        .and_then(|e| e["seq"].as_u64())
        .expect("event e3 is in the log");
    let again = b.publish(&id, json!([thinking(3)])).await;
    assert_eq!(again, [logged_at]);
}

#[tokio::test]
async fn an_agent_cut_off_by_a_killed_node_carries_on_at_another_and_nothing_is_lost() {
    let mut cluster = Cluster::start(2, &[]).await;
    let id = cluster.node(0).create("external").await;
    let mut watcher = cluster.node(1).subscribe(&id, 0).await;
    let mut agent = cluster.node(0).agent(&id, "").await;
    for n in 1..=100 {
        agent.send_json(thinking(n)).await;
    }
    // Some acks in; then node A dies (SIGKILL) with the rest in flight.
    let acked = agent.next_control().await;
    assert_eq!(acked["type"], "ack", "{acked}");
    cluster.nodes[0].child.kill().await.expect("SIGKILL");
    // The agent reconnects to B and sends again everything it has no ack for — here, all.
    let b = cluster.node(1);
    let mut agent = b.agent(&id, "").await;
    for n in 1..=100 {
        agent.send_json(thinking(n)).await;
    }
    let mut acks = Vec::new();
    while acks.len() < 100 {
        let frame = agent.next_control().await;
        assert_eq!(frame["type"], "ack", "{frame}");
        acks.push(frame["seq"].as_u64().expect("seq"));
    }
    assert_eq!(
        acks,
        (1..=100).collect::<Vec<u64>>(),
        "each id acked with its one seq"
    );
    let seen = watcher.events(100).await;
    assert_eq!(seqs(&seen), (1..=100).collect::<Vec<u64>>());
    let sent: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
    assert_eq!(
        contents(&b.log(&id).await),
        sent,
        "each event once, in order"
    );
}

#[tokio::test]
async fn a_dead_nodes_workflows_are_failed_once_by_another_node() {
    let mut cluster = Cluster::start(2, &["--agent-grace-secs", "1"]).await;
    let a = cluster.node(0);
    // An external workflow whose agent is on A, and a built-in `echo` that A runs.
    let external = a.create("external").await;
    let echo = a.create("echo").await;
    let mut agent = a.agent(&external, "").await;
    agent
        .send_json(json!({"type": "workflow_status", "status": "running", "id": "s1"}))
        .await;
    assert_eq!(agent.next_control().await["type"], "ack");
    let b = cluster.node(1);
    let mut external_on_b = b.subscribe(&external, 0).await;
    let mut echo_on_b = b.subscribe(&echo, 0).await;
    cluster.nodes[0].child.kill().await.expect("SIGKILL");

    let b = cluster.node(1);
    for (viewer, detail) in [
        (&mut echo_on_b, "the node running this workflow stopped"),
        (
            &mut external_on_b,
            "the agent disconnected and did not come back within 1 s",
        ),
    ] {
        let events =
            tokio::time::timeout(NODE_DEATH, viewer.events_until(|e| is_status(e, "failed")))
                .await
                .expect("failed by the other node in time");
        assert_eq!(events.last().expect("the failure")["detail"], detail);
    }
    for id in [&external, &echo] {
        let failures = b
            .log(id)
            .await
            .into_iter()
            .filter(|e| is_status(e, "failed"))
            .count();
        assert_eq!(failures, 1, "failed exactly once");
    }
}

#[tokio::test]
async fn a_token_revoked_once_closes_its_sockets_on_every_node() {
    let cluster = Cluster::start(2, &[]).await;
    let viewer_token = cluster.token(&["--user", "admin"]).await;
    let id = cluster.node(0).create("external").await;
    let mut sockets = Vec::new();
    for n in 0..2 {
        let mut socket = cluster.node(n).subscribe_as(&viewer_token, &id, 0).await;
        socket.hello_and_backlog().await;
        sockets.push(socket);
    }
    lantern_cli(&[
        "token",
        "revoke",
        &viewer_token,
        "--redis-url",
        &cluster.url,
    ])
    .await
    .expect("revoked");
    let started = tokio::time::Instant::now();
    for socket in &mut sockets {
        let (ended, _) = socket.until_end().await;
        assert_eq!(ended, Ended::Closed(4001));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed within 2 s on every node: {:?}",
        started.elapsed()
    );
    // And the token no longer opens anything, anywhere.
    for n in 0..2 {
        let status = cluster
            .node(n)
            .refused_upgrade_as(Some(&viewer_token), &format!("/ws/workflow/{id}?after=0"))
            .await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn viewers_cut_at_random_and_moved_between_three_nodes_end_with_exactly_the_log() {
    use rand::{Rng, SeedableRng};
    const EVENTS: usize = 200;
    // One address opens every socket here: no per-address or per-user limits in the way.
    let unlimited = [
        "--conn-attempts-per-ip",
        "0",
        "--max-conns-per-ip",
        "0",
        "--max-conns-per-user",
        "0",
    ];
    let cluster = Arc::new(Cluster::start(3, &unlimited).await);
    let id = cluster.node(0).create("external").await;
    let publisher = {
        let (cluster, id) = (cluster.clone(), id.clone());
        tokio::spawn(async move {
            let mut agent = cluster.node(0).agent(&id, "").await;
            for n in 1..=EVENTS {
                agent.send_json(thinking(n)).await;
                // A steady stream, so viewers are cut while it goes on.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Done when every event is acked, i.e. in the log: only then is the log whole.
            for _ in 1..=EVENTS {
                let frame = agent.next_control().await;
                assert_eq!(frame["type"], "ack", "{frame}");
            }
            agent
        })
    };
    let viewers: Vec<_> = (0..100u64)
        .map(|v| {
            let (cluster, id) = (cluster.clone(), id.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(v);
                let mut held: Vec<Value> = Vec::new();
                while held.len() < EVENTS {
                    let node = cluster.node(rng.gen_range(0..3));
                    let after = held.len() as u64;
                    let mut socket = node.subscribe(&id, after).await;
                    let take = rng.gen_range(1..=60).min(EVENTS - held.len());
                    held.extend(socket.events(take).await);
                    // Cut: the socket is dropped without a close, as a network fault would.
                }
                held
            })
        })
        .collect();
    let _agent = publisher.await.expect("published");
    let log = cluster.node(2).log(&id).await;
    assert_eq!(seqs(&log), (1..=EVENTS as u64).collect::<Vec<u64>>());
    for viewer in viewers {
        let held = viewer.await.expect("viewer");
        assert_eq!(held, log, "each viewer holds exactly the log");
    }
}
