//! An [`EventStore`] in Redis, so that many Lantern nodes can share one set of workflows and
//! logs (issue 24). Not selectable yet (`--store` knows `sqlite` and `memory`): this is the
//! store alone, checked by the same contract as the others against a real `redis-server`.
//!
//! # Guarantees, and how Redis gives them
//!
//! Every write that must be atomic is ONE Lua script: Redis runs a script to its end with no
//! other command in between, on whichever node sent it. Each script makes all of its checks
//! before its first write, so a refused call writes nothing. (Redis does not roll back a script
//! that fails half-way; only a key of the wrong type — someone else writing under our prefix —
//! could make a write fail, and then the store is corrupt anyway.)
//!
//! - **Append is a compare-and-set on the log's end.** [`RedisStore::append_expecting`] is
//!   told where the caller believes the log ends ([`LogEnd`]); the script refuses, writing
//!   nothing, if the log has moved since ([`Appended::Moved`], which carries the new end). So
//!   the `seq`s are known before the script runs: Rust serializes each event ONCE, with its
//!   `seq` in it, and the script only checks and stores. The script also refuses the whole
//!   batch if one of its retry keys is logged already (or repeats within the batch, as SQLite's
//!   unique index would), records each new key with its `seq`, and moves the workflow object
//!   (`last_seq`, `updated_at`, `status`) and the indexes in the same step.
//! - **Many nodes, no lock.** Two nodes appending to one workflow cannot both win a CAS on the
//!   same end: one appends, the other is told `Moved` and tries again after the winner's
//!   events. No distributed lock (with its lease expiries and fencing) is needed. The trait's
//!   [`EventStore::append`] does exactly that loop, with bounded retries; a caller that checks
//!   a batch against the log's state (the hub) appends with [`EventStore::append_if`] instead,
//!   which refuses with `LogMoved` rather than retrying: the caller folds in the newer events
//!   and checks again, since the events it checked against are then not the last ones.
//! - **Timestamps never go back along a log**, even across nodes whose clocks differ: an
//!   append's `ts` is the later of this node's clock and the log end's `updated_at` (the CAS
//!   makes that the time of the event just before).
//! - **Reads** page through the log inside one script too, counting bytes in Redis, so a page
//!   bounded by `max_bytes` never sends the events beyond its bound over the network.
//! - **Durability is the server's**: an append returns once Redis has it in memory. How much of
//!   that survives a crash is Redis's persistence setting (`appendonly yes` with
//!   `appendfsync always` is the counterpart of `--sqlite-sync full`; `everysec` may lose the
//!   last second).
//!
//! # Key layout
//!
//! All under one prefix ([`DEFAULT_PREFIX`] unless told otherwise), so several stores can share
//! one server; [`Keys`] is the only place that names a key. A name that embeds an id or an
//! owner ends with it, after a tag that no other key starts with, so no two can collide.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `wf:{id}` | hash | the workflow: `owner`, `kind`, `title` (absent for none), `status`, `created_at`, `updated_at`, `last_seq` |
//! | `log:{id}` | list | the events' JSON; `seq` n at index n − 1 |
//! | `keys:{id}` | hash | retry key → its `seq`; field `e:{event id}` or `c:{client_msg_id}` |
//! | `workflows` | sorted set | every workflow id, all scored 0 so they sort by id |
//! | `owned:{owner}` | sorted set | the owner's workflow ids, likewise |
//! | `open` | hash | owner → how many of their workflows are open (not terminal) |
//! | `finished` | set | ids of workflows in a terminal status (what retention looks at) |
//!
//! The log is a LIST because `seq` is contiguous from 1 and never reused: `seq` n is simply
//! index n − 1, appending is `RPUSH`, and a page is an `LRANGE`, O(distance from the nearer
//! end + page) — Redis walks the list a node (up to 8 KB of events) at a time, so the page a
//! live viewer wants, near the tail, is cheap, and one deep in a long log costs a walk. (A
//! sorted set scored by `seq` would find any page in O(log n), for a score and a skip-list node
//! per event; a replay from the start, the usual deep read, begins at the head, cheap too.)
//! The log's length must equal `last_seq`: the append script checks it (a mismatch is
//! corruption, not a retry). Events are never removed one by one — retention deletes a whole
//! workflow — so the list never needs a hole.
//!
//! Ids are `wf_` + a ULID, which sorts by creation. A sorted set whose scores are all equal
//! orders its members bytewise, as SQLite's `ORDER BY id` does (ids a caller chose sort among
//! them the same way), so newest first is a reverse range.
//!
//! Needs Redis 6.2 or later (`ZRANGE … BYLEX REV`); not Redis Cluster (the indexes are keys of
//! their own, in other slots than a workflow's).

#[cfg(test)]
pub(crate) mod test_server;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Script};
use app::protocol::{EventBody, WorkflowInfo, WorkflowStatus};

use super::{now_rfc3339, EventStore, IdempotencyKey, NewEvent, StoredEvent};
use crate::error::{LanternError, Result};

/// The prefix of every key, unless the store is given another.
pub const DEFAULT_PREFIX: &str = "lantern:";

/// How many times [`EventStore::append`] tries again after the log moved under it. Each
/// `Moved` means another append won, so this many in a row means a workflow written by many
/// nodes at once far beyond what one log is for.
const APPEND_ATTEMPTS: u32 = 64;

/// The largest index or count sent to a script. Lua numbers are doubles and Redis turns them
/// back into text for commands, which stays exact far beyond this (and no log gets near it).
const MAX_LUA_INTEGER: u64 = 1 << 40;

/// Every key the store uses, under its prefix: the one place a key is named.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    fn key(&self, tag: &str, tail: &str) -> String {
        format!("{}{tag}{tail}", self.prefix)
    }

    /// The workflow object (a hash).
    pub fn workflow(&self, id: &str) -> String {
        self.key("wf:", id)
    }

    /// The workflow's events, `seq` n at index n − 1 (a list).
    pub fn log(&self, id: &str) -> String {
        self.key("log:", id)
    }

    /// The workflow's retry keys → their `seq` (a hash).
    pub fn retry_keys(&self, id: &str) -> String {
        self.key("keys:", id)
    }

    /// Every workflow id (a sorted set, all scores 0).
    pub fn all(&self) -> String {
        self.key("workflows", "")
    }

    /// The owner's workflow ids (a sorted set, all scores 0).
    pub fn owned(&self, owner: &str) -> String {
        self.key("owned:", owner)
    }

    /// Owner → how many of their workflows are open (a hash).
    pub fn open(&self) -> String {
        self.key("open", "")
    }

    /// Ids of the workflows in a terminal status (a set).
    pub fn finished(&self) -> String {
        self.key("finished", "")
    }
}

/// The field of a retry key in a workflow's `keys:` hash.
fn key_field(key: &IdempotencyKey) -> String {
    match key {
        IdempotencyKey::EventId(id) => format!("e:{id}"),
        IdempotencyKey::ClientMsgId(id) => format!("c:{id}"),
    }
}

/// Where a workflow's log ends, as an append expects to find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEnd {
    /// The last event's `seq` (0 while the log is empty).
    pub last_seq: u64,
    /// The last event's `ts` (the workflow's creation time while the log is empty).
    pub updated_at: String,
}

/// What [`RedisStore::append_expecting`] did.
#[derive(Debug)]
pub enum Appended {
    /// The batch is stored: its events, in order.
    Stored(Vec<Arc<StoredEvent>>),
    /// The log no longer ended where expected (another node appended); nothing was written.
    /// Where it ends now.
    Moved(LogEnd),
}

/// One place where a Redis failure becomes a Lantern error.
impl From<::redis::RedisError> for LanternError {
    fn from(e: ::redis::RedisError) -> Self {
        LanternError::Storage(format!("redis: {e}"))
    }
}

/// A value read back from Redis that is not what the store writes.
fn corrupt(what: impl std::fmt::Display) -> LanternError {
    LanternError::Storage(format!("redis holds a corrupt value: {what}"))
}

fn parse_seq(text: &str, what: &str) -> Result<u64> {
    text.parse()
        .map_err(|_| corrupt(format_args!("{what} is {text:?}, not a seq")))
}

fn parse_status(text: &str) -> Result<WorkflowStatus> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| corrupt(format_args!("unknown status {text:?}")))
}

/// The fields of a workflow hash that make a [`WorkflowInfo`], in the order
/// [`info_from_fields`] takes them.
const INFO_FIELDS: [&str; 6] = [
    "kind",
    "title",
    "status",
    "created_at",
    "updated_at",
    "last_seq",
];

/// The workflow `id` from its hash's [`INFO_FIELDS`]; `None` if it has none (no such workflow).
fn info_from_fields(id: &str, fields: Vec<Option<String>>) -> Result<Option<WorkflowInfo>> {
    let [kind, title, status, created_at, updated_at, last_seq]: [Option<String>; 6] = fields
        .try_into()
        .map_err(|_| corrupt(format_args!("workflow {id}: wrong number of fields")))?;
    let Some(kind) = kind else { return Ok(None) };
    let need = |value: Option<String>, name: &str| {
        value.ok_or_else(|| corrupt(format_args!("workflow {id} has no {name}")))
    };
    Ok(Some(WorkflowInfo {
        id: id.to_owned(),
        kind,
        title,
        status: parse_status(&need(status, "status")?)?,
        last_seq: parse_seq(&need(last_seq, "last_seq")?, "last_seq")?,
        created_at: need(created_at, "created_at")?,
        updated_at: need(updated_at, "updated_at")?,
    }))
}

/// Register a workflow, unless its id is taken (replies 0 then, having written nothing).
///
/// KEYS: workflow, all, owned, open, finished, log, retry keys.
/// ARGV: id, owner, kind, status, terminal ('1'/'0'), created_at, updated_at, [title].
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
-- A log or keys left without their workflow would break 'length = last_seq'.
redis.call('UNLINK', KEYS[6], KEYS[7])
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'kind', ARGV[3], 'status', ARGV[4],
  'created_at', ARGV[6], 'updated_at', ARGV[7], 'last_seq', '0')
if ARGV[8] then redis.call('HSET', KEYS[1], 'title', ARGV[8]) end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
if ARGV[5] == '1' then
  redis.call('SADD', KEYS[5], ARGV[1])
else
  redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
end
return 1
",
    )
});

/// Append a batch if the log still ends at the expected `seq` (the CAS; see the module doc).
/// Replies `{'ok', last_seq}`, `{'moved', last_seq, updated_at}`, `{'missing'}` (no such
/// workflow) or `{'logged', field}` (a retry key is logged already). Everything is checked
/// before the first write.
///
/// KEYS: workflow, log, retry keys, open, finished.
/// ARGV: id, expected last seq, ts, new status or '', '1' if that status is terminal,
///       then per event: its JSON, its retry-key field or ''.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local found = redis.call('HMGET', KEYS[1], 'last_seq', 'updated_at', 'owner')
local last, owner = found[1], found[3]
if not last then return {'missing'} end
if tonumber(last) ~= tonumber(ARGV[2]) then return {'moved', last, found[2]} end
-- This node's clock is behind the log's last event: refused like a move (with the same end),
-- so the caller stamps the batch again, no earlier than that event.
if ARGV[3] < found[2] then return {'moved', last, found[2]} end
if not owner or redis.call('LLEN', KEYS[2]) ~= tonumber(last) then
  return redis.error_reply('the log of ' .. ARGV[1] .. ' does not end at its last_seq ' .. last
    .. ', or it has no owner')
end
local n = (#ARGV - 5) / 2
if n == 0 then return {'ok', last} end
-- Retry keys: one HMGET and one HSET per 256 events, not a call per event (most of Redis's
-- time per event went to those calls).
local in_batch, fields = {}, {}
for i = 1, n do
  local field = ARGV[5 + 2 * i]
  if field ~= '' then
    if in_batch[field] then return {'logged', field} end
    in_batch[field] = true
    fields[#fields + 1] = field
  end
end
-- unpack() has a stack limit: every multi-argument call goes in chunks.
for from = 1, #fields, 256 do
  local to = math.min(from + 255, #fields)
  local logged = redis.call('HMGET', KEYS[3], unpack(fields, from, to))
  for j = 1, to - from + 1 do
    if logged[j] then return {'logged', fields[from + j - 1]} end
  end
end
-- Checked: from here on only writes.
local seq = tonumber(last)
local chunk, field_seqs = {}, {}
for i = 1, n do
  seq = seq + 1
  chunk[#chunk + 1] = ARGV[4 + 2 * i]
  local field = ARGV[5 + 2 * i]
  if field ~= '' then
    field_seqs[#field_seqs + 1] = field
    field_seqs[#field_seqs + 1] = string.format('%d', seq)
  end
  if #chunk == 256 or i == n then
    redis.call('RPUSH', KEYS[2], unpack(chunk))
    chunk = {}
    if #field_seqs > 0 then
      redis.call('HSET', KEYS[3], unpack(field_seqs))
      field_seqs = {}
    end
  end
end
local last_seq = string.format('%d', seq)
redis.call('HSET', KEYS[1], 'last_seq', last_seq, 'updated_at', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'status', ARGV[4])
  local was_finished = redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 1
  local now_finished = ARGV[5] == '1'
  if was_finished ~= now_finished then
    local step = 1
    if now_finished then
      redis.call('SADD', KEYS[5], ARGV[1])
      step = -1
    else
      redis.call('SREM', KEYS[5], ARGV[1])
    end
    if redis.call('HINCRBY', KEYS[4], owner, step) <= 0 then
      redis.call('HDEL', KEYS[4], owner)
    end
  end
end
return {'ok', last_seq}
",
    )
});

/// A page of the log: the events after `after`, at most `limit`, while under `max_bytes`
/// (the first always). Replies nil if the page is empty and there is no such workflow.
/// Reads the list a few events at a time, so events past the byte bound stay in Redis.
///
/// KEYS: log, workflow. ARGV: after, limit, max bytes.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local at, limit, max_bytes = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local page, bytes = {}, 0
while #page < limit do
  local want = math.min(limit - #page, 16)
  local chunk = redis.call('LRANGE', KEYS[1], at, at + want - 1)
  for _, json in ipairs(chunk) do
    if #page > 0 and bytes + #json > max_bytes then return page end
    bytes = bytes + #json
    page[#page + 1] = json
  end
  if #chunk < want then break end
  at = at + want
end
if #page == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return false end
return page
",
    )
});

/// Delete a finished workflow with its log, keys and index entries — if it is still finished
/// and still as last seen (same owner, same `updated_at`: nothing appended since the sweep
/// looked). Compares for equality only: Lua's `<` on strings follows the server's locale.
///
/// KEYS: workflow, log, retry keys, all, owned, finished. ARGV: id, owner, updated_at.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SISMEMBER', KEYS[6], ARGV[1]) == 0 then return 0 end
local found = redis.call('HMGET', KEYS[1], 'owner', 'updated_at')
if found[1] ~= ARGV[2] or found[2] ~= ARGV[3] then return 0 end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
return 1
",
    )
});

/// The event store on a Redis server. Cheap to share: every call clones the one multiplexed
/// connection, which carries many requests at once and reconnects by itself.
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
}

impl RedisStore {
    /// Connect to the Redis at `url` (`redis://host:port/db`), keeping every key under
    /// `prefix` ([`DEFAULT_PREFIX`] normally).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = ::redis::Client::open(url)?;
        // A server that vanished without closing the connection must fail calls, not hang
        // them. A call that times out may still have run: the caller cannot tell (as with any
        // connection lost mid-call).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(10));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            conn,
            keys: Keys::new(prefix),
        })
    }

    /// The key layout this store uses.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Where the log of `workflow_id` ends now; `None` if there is no such workflow.
    pub async fn log_end(&self, workflow_id: &str) -> Result<Option<LogEnd>> {
        let mut conn = self.conn.clone();
        let (last_seq, updated_at): (Option<String>, Option<String>) = conn
            .hmget(self.keys.workflow(workflow_id), &["last_seq", "updated_at"])
            .await?;
        let (Some(last_seq), Some(updated_at)) = (last_seq, updated_at) else {
            return Ok(None);
        };
        Ok(Some(LogEnd {
            last_seq: parse_seq(&last_seq, "last_seq")?,
            updated_at,
        }))
    }

    /// Append `events` to `workflow_id`'s log if it still ends at `expected`: all of them, or
    /// nothing and [`Appended::Moved`] with where it ends now. Refuses a batch holding a
    /// logged retry key ([`LanternError::RetryKeyLogged`]) and a workflow that does not exist
    /// ([`LanternError::WorkflowNotFound`]), writing nothing.
    pub async fn append_expecting(
        &self,
        workflow_id: &str,
        expected: &LogEnd,
        events: &[NewEvent],
    ) -> Result<Appended> {
        // Never before the event it follows, whatever this node's clock says.
        let ts = now_rfc3339().max(expected.updated_at.clone());
        let new_status = events.iter().rev().find_map(|new| match &new.body {
            EventBody::WorkflowStatus { status, .. } => Some(*status),
            _ => None,
        });
        let stored: Vec<Arc<StoredEvent>> = (expected.last_seq + 1..)
            .zip(events)
            .map(|(seq, new)| StoredEvent::serialize(seq, &ts, workflow_id, &new.body))
            .collect();

        let mut call = APPEND.prepare_invoke();
        call.key(self.keys.workflow(workflow_id))
            .key(self.keys.log(workflow_id))
            .key(self.keys.retry_keys(workflow_id))
            .key(self.keys.open())
            .key(self.keys.finished())
            .arg(workflow_id)
            .arg(expected.last_seq)
            .arg(&ts)
            .arg(new_status.map_or("", |s| s.as_str()))
            .arg(if new_status.is_some_and(|s| s.is_terminal()) {
                "1"
            } else {
                "0"
            });
        for (event, new) in stored.iter().zip(events) {
            call.arg(event.json.as_str())
                .arg(new.key.as_ref().map(key_field).unwrap_or_default());
        }
        let mut conn = self.conn.clone();
        let reply: Vec<String> = call.invoke_async(&mut conn).await?;
        match reply.as_slice() {
            [ok, last] if ok == "ok" => {
                let last = parse_seq(last, "the appended last seq")?;
                if last != expected.last_seq + stored.len() as u64 {
                    return Err(corrupt(format_args!(
                        "appended to {workflow_id} up to {last}, expected {}",
                        expected.last_seq + stored.len() as u64
                    )));
                }
                // The fan-out latency is measured from the moment the events exist for readers.
                let committed = std::time::Instant::now();
                Ok(Appended::Stored(
                    stored
                        .into_iter()
                        .map(|mut event| {
                            if let Some(event) = Arc::get_mut(&mut event) {
                                event.appended_at = Some(committed);
                            }
                            event
                        })
                        .collect(),
                ))
            }
            [moved, last, updated_at] if moved == "moved" => Ok(Appended::Moved(LogEnd {
                last_seq: parse_seq(last, "last_seq")?,
                updated_at: updated_at.clone(),
            })),
            [missing] if missing == "missing" => {
                Err(LanternError::WorkflowNotFound(workflow_id.to_owned()))
            }
            [logged, _field] if logged == "logged" => Err(LanternError::RetryKeyLogged),
            other => Err(corrupt(format_args!("the append script replied {other:?}"))),
        }
    }

    /// Append at the log's end wherever it is (the trait's `append`): as often as the log
    /// moves under it, up to [`APPEND_ATTEMPTS`] times.
    async fn append_at_end(
        &self,
        workflow_id: &str,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Arc<StoredEvent>>> {
        let mut end = self
            .log_end(workflow_id)
            .await?
            .ok_or_else(|| LanternError::WorkflowNotFound(workflow_id.to_owned()))?;
        for attempt in 0..APPEND_ATTEMPTS {
            match self.append_expecting(workflow_id, &end, &events).await? {
                Appended::Stored(stored) => return Ok(stored),
                Appended::Moved(now) => {
                    // Another node appended in between: try again at once after its events,
                    // which the refusal says where they end. Losing again and again means
                    // several keep racing: spread them out a little (full jitter, up to a few
                    // ms), then look where the log ends after the wait, not before it.
                    end = now;
                    if attempt >= 2 {
                        let most = 1u64 << attempt.min(5);
                        let wait = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=most);
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        end = self.log_end(workflow_id).await?.ok_or_else(|| {
                            LanternError::WorkflowNotFound(workflow_id.to_owned())
                        })?;
                    }
                }
            }
        }
        Err(LanternError::Storage(format!(
            "an append to {workflow_id} lost to other appends {APPEND_ATTEMPTS} times in a row"
        )))
    }
}

#[async_trait::async_trait]
impl EventStore for RedisStore {
    async fn insert_workflow(&self, info: WorkflowInfo, owner: &str) -> Result<WorkflowInfo> {
        let mut call = INSERT.prepare_invoke();
        call.key(self.keys.workflow(&info.id))
            .key(self.keys.all())
            .key(self.keys.owned(owner))
            .key(self.keys.open())
            .key(self.keys.finished())
            .key(self.keys.log(&info.id))
            .key(self.keys.retry_keys(&info.id))
            .arg(&info.id)
            .arg(owner)
            .arg(&info.kind)
            .arg(info.status.as_str())
            .arg(if info.status.is_terminal() { "1" } else { "0" })
            .arg(&info.created_at)
            .arg(&info.updated_at);
        if let Some(title) = &info.title {
            call.arg(title);
        }
        let mut conn = self.conn.clone();
        let inserted: i64 = call.invoke_async(&mut conn).await?;
        if inserted != 1 {
            return Err(LanternError::Conflict(format!(
                "workflow id {} is taken",
                info.id
            )));
        }
        Ok(info)
    }

    async fn workflow(&self, id: &str) -> Result<Option<WorkflowInfo>> {
        let mut conn = self.conn.clone();
        let fields: Vec<Option<String>> = conn.hmget(self.keys.workflow(id), &INFO_FIELDS).await?;
        info_from_fields(id, fields)
    }

    async fn owner(&self, id: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(conn.hget(self.keys.workflow(id), "owner").await?)
    }

    async fn list_workflows(&self, owner: Option<&str>) -> Result<Vec<WorkflowInfo>> {
        let index = match owner {
            Some(owner) => self.keys.owned(owner),
            None => self.keys.all(),
        };
        let mut conn = self.conn.clone();
        // Newest first: every score is 0, so the set is in id order; read it backwards.
        let ids: Vec<String> = ::redis::cmd("ZRANGE")
            .arg(&index)
            .arg("+")
            .arg("-")
            .arg("BYLEX")
            .arg("REV")
            .query_async(&mut conn)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in &ids {
            pipe.hmget(self.keys.workflow(id), &INFO_FIELDS);
        }
        let all: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
        let mut infos = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(all) {
            // None: deleted between the two reads.
            if let Some(info) = info_from_fields(id, fields)? {
                infos.push(info);
            }
        }
        Ok(infos)
    }

    async fn append_if(
        &self,
        workflow_id: &str,
        expected_last_seq: Option<u64>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Arc<StoredEvent>>> {
        let Some(expected) = expected_last_seq else {
            return self.append_at_end(workflow_id, events).await;
        };
        // One round trip when this node's clock is not behind the log's last event (the usual
        // case); if it is, the script says where the log ends and when, and the batch is
        // stamped again with that time.
        let mut end = LogEnd {
            last_seq: expected,
            updated_at: String::new(),
        };
        loop {
            match self.append_expecting(workflow_id, &end, &events).await? {
                Appended::Stored(stored) => return Ok(stored),
                Appended::Moved(now)
                    if now.last_seq == expected && now.updated_at > end.updated_at =>
                {
                    end = now;
                }
                Appended::Moved(now) => {
                    return Err(LanternError::LogMoved {
                        last_seq: now.last_seq,
                    })
                }
            }
        }
    }

    async fn read(
        &self,
        workflow_id: &str,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<StoredEvent>>> {
        let after = after.min(MAX_LUA_INTEGER);
        let limit = (limit as u64).min(MAX_LUA_INTEGER);
        let max_bytes = (max_bytes as u64).min(MAX_LUA_INTEGER);
        let mut conn = self.conn.clone();
        let page: Option<Vec<String>> = READ
            .key(self.keys.log(workflow_id))
            .key(self.keys.workflow(workflow_id))
            .arg(after)
            .arg(limit)
            .arg(max_bytes)
            .invoke_async(&mut conn)
            .await?;
        let page = page.ok_or_else(|| LanternError::WorkflowNotFound(workflow_id.to_owned()))?;
        // `seq` n is at index n - 1, and the page starts at index `after`.
        Ok((after + 1..)
            .zip(page)
            .map(|(seq, json)| StoredEvent::from_json(seq, json))
            .collect())
    }

    async fn open_workflows(&self, owner: &str) -> Result<usize> {
        let mut conn = self.conn.clone();
        let open: Option<i64> = conn.hget(self.keys.open(), owner).await?;
        let open = open.unwrap_or(0);
        usize::try_from(open)
            .map_err(|_| corrupt(format_args!("{owner} has {open} open workflows")))
    }

    async fn seqs_of_keys(
        &self,
        workflow_id: &str,
        keys: &[&IdempotencyKey],
    ) -> Result<HashMap<IdempotencyKey, u64>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let fields: Vec<String> = keys.iter().map(|key| key_field(key)).collect();
        let mut conn = self.conn.clone();
        // One HMGET for the whole batch.
        let seqs: Vec<Option<String>> = ::redis::cmd("HMGET")
            .arg(self.keys.retry_keys(workflow_id))
            .arg(&fields)
            .query_async(&mut conn)
            .await?;
        let mut found = HashMap::new();
        for (key, seq) in keys.iter().zip(seqs) {
            if let Some(seq) = seq {
                found.insert((*key).clone(), parse_seq(&seq, "a retry key's seq")?);
            }
        }
        Ok(found)
    }

    async fn delete_finished_before(&self, cutoff: &str) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        // Retention runs now and then: reading the finished set whole is fine.
        let finished: Vec<String> = conn.smembers(self.keys.finished()).await?;
        if finished.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in &finished {
            pipe.hmget(self.keys.workflow(id), &["owner", "updated_at"]);
        }
        let seen: Vec<(Option<String>, Option<String>)> = pipe.query_async(&mut conn).await?;
        let mut deleted = Vec::new();
        for (id, seen) in finished.into_iter().zip(seen) {
            // Compared here (bytewise, as the other stores do), not in Lua (see DELETE).
            let (Some(owner), Some(updated_at)) = seen else {
                continue;
            };
            if updated_at.as_str() >= cutoff {
                continue;
            }
            let gone: i64 = DELETE
                .key(self.keys.workflow(&id))
                .key(self.keys.log(&id))
                .key(self.keys.retry_keys(&id))
                .key(self.keys.all())
                .key(self.keys.owned(&owner))
                .key(self.keys.finished())
                .arg(&id)
                .arg(&owner)
                .arg(&updated_at)
                .invoke_async(&mut conn)
                .await?;
            if gone == 1 {
                deleted.push(id);
            }
        }
        deleted.sort();
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::RedisServer;
    use super::*;
    use crate::store::contract::{self, thinking};

    /// A store on a `redis-server` of its own (stopped when the first is dropped).
    async fn fresh_store() -> (RedisServer, RedisStore) {
        let server = RedisServer::start();
        let store = RedisStore::connect(&server.url(), DEFAULT_PREFIX)
            .await
            .expect("connected");
        (server, store)
    }

    contract::store_contract!(fresh_store());

    /// An event whose content names it, with that name as its retry key.
    fn named(name: &str) -> NewEvent {
        NewEvent {
            body: EventBody::AgentThinking {
                agent: "a".into(),
                content: Some(name.into()),
                message_id: None,
            },
            key: Some(IdempotencyKey::EventId(name.into())),
        }
    }

    fn content_of(event: &StoredEvent) -> String {
        match event.event().expect("parses").body {
            EventBody::AgentThinking {
                content: Some(c), ..
            } => c,
            other => panic!("not a named event: {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_append_expecting_a_moved_log_writes_nothing_and_says_where_it_ends() {
        let (_server, store) = fresh_store().await;
        let info = store
            .create_workflow("external", None, "u")
            .await
            .expect("created");
        let stale = store
            .log_end(&info.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(stale.last_seq, 0);
        store
            .append(&info.id, vec![thinking(None)])
            .await
            .expect("another node appended");

        let moved = store
            .append_expecting(&info.id, &stale, &[named("late"), named("later")])
            .await
            .expect("answered");
        let now = store
            .log_end(&info.id)
            .await
            .expect("read")
            .expect("exists");
        match moved {
            Appended::Moved(end) => assert_eq!(end, now),
            Appended::Stored(s) => panic!("appended on a moved log: {s:?}"),
        }
        assert_eq!(now.last_seq, 1);
        let log = store
            .read(&info.id, 0, 100, usize::MAX)
            .await
            .expect("read");
        assert_eq!(log.len(), 1, "nothing of the refused batch");
        let keys = [&IdempotencyKey::EventId("late".into())];
        assert!(store
            .seqs_of_keys(&info.id, &keys)
            .await
            .expect("keys")
            .is_empty());

        // Expecting the right end, it appends after it.
        let Appended::Stored(stored) = store
            .append_expecting(&info.id, &now, &[named("late")])
            .await
            .expect("appended")
        else {
            panic!("the log did not move this time");
        };
        assert_eq!(stored[0].seq(), 2);
        assert!(ts_of(&stored[0]) >= now.updated_at);
    }

    fn ts_of(event: &StoredEvent) -> String {
        event.event().expect("parses").ts
    }

    /// Two nodes (two stores on one Redis) appending to one workflow at once, with no lock
    /// between them: the log ends up with every event once, `seq` 1 to 400 with no gap, and
    /// each retry key at its own event's `seq`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_appending_to_one_workflow_get_a_contiguous_log() {
        let server = RedisServer::start();
        let node = || async {
            Arc::new(
                RedisStore::connect(&server.url(), DEFAULT_PREFIX)
                    .await
                    .expect("connected"),
            )
        };
        let (a, b) = (node().await, node().await);
        let info = a
            .create_workflow("external", None, "u")
            .await
            .expect("created");
        let appender = |store: Arc<RedisStore>, name: &'static str| {
            let id = info.id.clone();
            tokio::spawn(async move {
                for n in 0..200 {
                    store
                        .append(&id, vec![named(&format!("{name}-{n}"))])
                        .await
                        .expect("appended");
                }
            })
        };
        let (ra, rb) = tokio::join!(appender(a.clone(), "a"), appender(b.clone(), "b"));
        ra.expect("node a");
        rb.expect("node b");

        let log = b.read(&info.id, 0, 1000, usize::MAX).await.expect("read");
        let seqs: Vec<u64> = log.iter().map(|e| e.seq()).collect();
        assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
        let mut names: Vec<String> = log.iter().map(|e| content_of(e)).collect();
        for (event, name) in log.iter().zip(&names) {
            assert_eq!(event.event().expect("parses").seq, event.seq(), "{name}");
        }
        let keys: Vec<IdempotencyKey> = names
            .iter()
            .map(|n| IdempotencyKey::EventId(n.clone()))
            .collect();
        let key_refs: Vec<&IdempotencyKey> = keys.iter().collect();
        let logged = a.seqs_of_keys(&info.id, &key_refs).await.expect("keys");
        for (event, key) in log.iter().zip(&keys) {
            assert_eq!(logged.get(key), Some(&event.seq()), "{key:?}");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 400, "each event once");
        let after = a.workflow(&info.id).await.expect("read").expect("exists");
        assert_eq!(after.last_seq, 400);
        // Timestamps never go back along the log.
        let stamps: Vec<String> = log.iter().map(|e| ts_of(e)).collect();
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    }

    #[tokio::test]
    async fn stores_under_other_prefixes_share_a_server_without_seeing_each_other() {
        let server = RedisServer::start();
        let one = RedisStore::connect(&server.url(), "one:")
            .await
            .expect("one");
        let two = RedisStore::connect(&server.url(), "two:")
            .await
            .expect("two");
        let mut info = crate::store::new_workflow("echo", None);
        info.id = "same-id".into();
        one.insert_workflow(info.clone(), "u").await.expect("one");
        two.insert_workflow(info, "u")
            .await
            .expect("the id is free in two");
        one.append("same-id", vec![thinking(None)])
            .await
            .expect("appended");
        assert_eq!(
            two.read("same-id", 0, 10, usize::MAX)
                .await
                .expect("read")
                .len(),
            0
        );
        assert_eq!(one.list_workflows(None).await.expect("listed").len(), 1);
        assert_eq!(two.open_workflows("u").await.expect("count"), 1);
    }

    /// Retention deletes everything of a workflow: once the last one is swept, no key is left
    /// under the prefix.
    #[tokio::test]
    async fn sweeping_every_workflow_leaves_no_key_behind() {
        let (server, store) = fresh_store().await;
        for owner in ["u", "v"] {
            let info = store
                .create_workflow("external", Some("t".into()), owner)
                .await
                .expect("created");
            store
                .append(
                    &info.id,
                    vec![
                        named(&format!("{owner}-1")),
                        contract::status(WorkflowStatus::Completed),
                    ],
                )
                .await
                .expect("finished");
        }
        assert_eq!(store.open_workflows("u").await.expect("count"), 0);
        let swept = store.delete_finished_before("9999").await.expect("swept");
        assert_eq!(swept.len(), 2);
        let mut conn = server.connection().await;
        let left: Vec<String> = conn.keys("*").await.expect("keys");
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn an_unknown_workflow_is_not_found_and_has_no_keys() {
        let (_server, store) = fresh_store().await;
        let refused = store.append("wf_nope", vec![thinking(None)]).await;
        assert!(
            matches!(refused, Err(LanternError::WorkflowNotFound(_))),
            "{refused:?}"
        );
        let read = store.read("wf_nope", 0, 10, usize::MAX).await;
        assert!(
            matches!(read, Err(LanternError::WorkflowNotFound(_))),
            "{read:?}"
        );
        let keys = [&IdempotencyKey::ClientMsgId("m".into())];
        let found = store.seqs_of_keys("wf_nope", &keys).await.expect("keys");
        assert!(found.is_empty());
        assert_eq!(store.owner("wf_nope").await.expect("owner"), None);
    }

    /// As SQLite's unique index does: a batch naming one retry key twice is refused whole.
    #[tokio::test]
    async fn a_batch_repeating_a_key_within_itself_is_refused() {
        let (_server, store) = fresh_store().await;
        let info = store
            .create_workflow("external", None, "u")
            .await
            .expect("created");
        let refused = store
            .append(&info.id, vec![named("k"), thinking(None), named("k")])
            .await;
        assert!(
            matches!(refused, Err(LanternError::RetryKeyLogged)),
            "{refused:?}"
        );
        let now = store
            .workflow(&info.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(now.last_seq, 0);
    }

    /// A value in Redis that the store did not write that way is a storage error, not a panic.
    #[tokio::test]
    async fn a_corrupt_value_is_a_storage_error() {
        let (server, store) = fresh_store().await;
        let info = store
            .create_workflow("external", None, "u")
            .await
            .expect("created");
        let mut conn = server.connection().await;
        let () = conn
            .hset(store.keys().workflow(&info.id), "last_seq", "many")
            .await
            .expect("spoiled");
        let read = store.workflow(&info.id).await;
        assert!(matches!(read, Err(LanternError::Storage(_))), "{read:?}");
        let () = conn
            .hset(store.keys().workflow(&info.id), "last_seq", "3")
            .await
            .expect("spoiled");
        // The log holds 0 events but the workflow says 3: appending would leave a gap.
        let append = store.append(&info.id, vec![thinking(None)]).await;
        assert!(
            matches!(append, Err(LanternError::Storage(_))),
            "{append:?}"
        );
    }

    #[tokio::test]
    async fn an_append_from_a_node_whose_clock_is_behind_is_stamped_no_earlier_than_the_log() {
        let (server, store) = fresh_store().await;
        let info = store
            .create_workflow("external", None, "u")
            .await
            .expect("created");
        store
            .append_if(&info.id, Some(0), vec![thinking(None)])
            .await
            .expect("first");
        // As if the last event came from a node whose clock is far ahead of this one's.
        let ahead = "2999-01-01T00:00:00.000Z";
        let mut conn = server.connection().await;
        let () = conn
            .hset(store.keys().workflow(&info.id), "updated_at", ahead)
            .await
            .expect("moved the clock");
        let stored = store
            .append_if(&info.id, Some(1), vec![thinking(None)])
            .await
            .expect("appended where expected");
        assert_eq!(stored[0].seq(), 2);
        assert_eq!(stored[0].event().expect("parses").ts, ahead);
    }
}
