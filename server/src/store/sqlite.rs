//! The embedded, durable [`EventStore`]: SQLite under the data dir, in WAL mode, with
//! migrations applied at open.
//!
//! The event log is written through ONE connection, the [`LogWriter`] (its doc says why not
//! sqlx); appends are committed in groups on the [`CommitThread`] (its doc says why a thread);
//! reads use a sqlx pool of their own and,
//! thanks to WAL, never wait for a write. An `append` returns only after its transaction
//! committed: with `synchronous=NORMAL` (the default) a committed event survives the process
//! being killed (`kill -9`); with `--sqlite-sync full` it also survives a power cut, at the cost
//! of an fsync per commit.
//!
//! No commit checkpoints the WAL (copies it back into the database file): SQLite's automatic
//! checkpoint runs inside whichever commit crosses 1,000 WAL pages and holds that append up for
//! milliseconds, and with it every viewer's copy of the event. A connection of its own copies
//! the bulk in the background instead, and the writer then copies only what was committed
//! meanwhile, between two commits, so that the WAL starts over from its beginning
//! ([`checkpoint_in_background`] says why both are needed).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use app::protocol::{EventBody, WorkflowInfo, WorkflowStatus};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use super::commit_thread::CommitThread;
use super::log_writer::LogWriter;
use super::{now_rfc3339, EventStore, IdempotencyKey, NewEvent, StoredEvent};
use crate::config::SyncMode;
use crate::error::{LanternError, Result};

/// Name of the database file inside the data dir.
pub const DB_FILE: &str = "lantern.db";

pub struct SqliteStore {
    /// Every write to the workflows and their logs goes through it (see the module doc).
    log: Arc<LogWriter>,
    /// Appends waiting to be committed: the commit thread commits all of them in one
    /// transaction (see [`commit_waiting`]).
    waiting: Arc<std::sync::Mutex<Vec<Waiting>>>,
    /// Where each log ends; shared with the commit thread, used only while holding the writer.
    ends: Arc<std::sync::Mutex<LogEnds>>,
    committer: CommitThread,
    readers: SqlitePool,
}

/// Where each workflow's log ends, as committed, for the workflows appended to lately: an
/// append that finds its workflow here skips the `SELECT MAX(seq)` (15 % of the commit
/// thread's time in the 200-agent streaming row). Exact, because every append and every
/// deletion of a workflow goes through the one writer, which updates it only after a commit
/// and drops a workflow when it is deleted. A workflow not here is read from the log.
#[derive(Default)]
struct LogEnds(HashMap<String, u64>);

impl LogEnds {
    /// Entries kept at most; past it the map starts over (a few MB at worst).
    const MAX: usize = 65_536;

    fn get(&self, workflow_id: &str) -> Option<u64> {
        self.0.get(workflow_id).copied()
    }

    fn set(&mut self, workflow_id: &str, last_seq: u64) {
        if self.0.len() >= Self::MAX && !self.0.contains_key(workflow_id) {
            self.0.clear();
        }
        match self.0.get_mut(workflow_id) {
            Some(end) => *end = last_seq,
            None => {
                self.0.insert(workflow_id.to_owned(), last_seq);
            }
        }
    }

    fn forget(&mut self, workflow_id: &str) {
        self.0.remove(workflow_id);
    }
}

/// An append waiting for the next group commit, and where its result goes.
struct Waiting {
    workflow_id: String,
    /// Append only if the log ends here (see `EventStore::append_if`).
    expected_last_seq: Option<u64>,
    events: Vec<NewEvent>,
    done: tokio::sync::oneshot::Sender<Result<Vec<Arc<StoredEvent>>>>,
}

/// `IN` values per lookup statement: far below SQLite's 32,766 variables.
const KEYS_PER_STATEMENT: usize = 200;

/// The workflow object, as `workflow` and `list_workflows` read it: the row, plus the position
/// of its log read off the log itself (an append does not touch the row; see migration 0003).
/// The last event is found by `(workflow_id, seq)` on the events' primary key, one step down
/// the B-tree each; a workflow with no events yet was last updated when it was created.
const SELECT_WORKFLOWS: &str = "SELECT w.id, w.kind, w.title, w.status, w.created_at, \
     COALESCE(last.seq, 0) AS last_seq, \
     COALESCE(json_extract(last.json, '$.ts'), w.status_at) AS updated_at \
     FROM workflows w LEFT JOIN events last ON last.workflow_id = w.id \
     AND last.seq = (SELECT MAX(seq) FROM events WHERE workflow_id = w.id)";

/// The page size of a new database (an existing one keeps its own). Smaller than SQLite's
/// 4 KiB default because appends to many workflows at once each change a page of their own
/// (a leaf of the log's B-tree and one of the retry keys' index), and a commit writes every
/// page it changed to the WAL whole: half the bytes to write, checksum and copy back per
/// append. 2 KiB still keeps a row of up to about 480 bytes (a streamed delta, a short
/// message) in its leaf; 1 KiB would spill most rows to an overflow page. Single runs of the
/// bench's 200-agent streaming row: p99 68.3 ms at 4 KiB, 52.0 ms at 2 KiB (server CPU 12.28 s
/// and 11.69 s) — a gain of the order of that row's run-to-run noise, and smaller pages also
/// split more often (see bench/RESULTS.md).
const PAGE_SIZE: u32 = 2048;

/// The WAL size (in pages) above which the writer copies back what the background checkpoint
/// left, so that the WAL starts over (see [`checkpoint_in_background`]): SQLite's own
/// automatic checkpoint threshold, 2 MB at [`PAGE_SIZE`].
const RESTART_ABOVE_FRAMES: i64 = 1000;

/// How often the background checkpoint runs. Each round syncs the WAL written since the last
/// one before copying it back, and that flush slows every other write on the machine while it
/// lasts, so frequent rounds, each flushing little, do best. The bench's 200-agent streaming
/// row writes about 85 MB of WAL a second; with the writer's restarts spaced by
/// [`RESTART_EVERY`], that row's p99 was 14.7 / 15.4 ms with a round every 200 ms against
/// 30.0 / 21.9 ms every 500 ms (alternated), and 55–63 ms every 2 s; every 100 ms was no
/// better than 200 (16.2 / 18.2 ms, unpaired).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The least time between two of the writer's WAL restarts (step 2 of
/// [`checkpoint_in_background`]). Each holds every append up for its two fsyncs, 8–16 ms on
/// the bench's machine; run after every round, they were what the 200-agent streaming row's
/// p99 was made of (with a round every 200 ms: 29.8 / 64.2 / 55.3 ms, against 10.5 / 26.5 /
/// 26.4 ms with this spacing, alternated in one hour). The price is disk: between restarts
/// the WAL grows by every commit's pages — up to 340 MB at that row's 85 MB/s — and keeps
/// that size afterwards, rewritten from its start.
const RESTART_EVERY: Duration = Duration::from_secs(4);

/// Both steps of [`checkpoint_in_background`]; it answers (busy, frames in the WAL, frames
/// copied back).
const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// The values of `keys` of one kind (event ids, or client message ids).
fn key_values<'k>(keys: &[&'k IdempotencyKey], event_ids: bool) -> Vec<&'k str> {
    keys.iter()
        .filter_map(|key| match (key, event_ids) {
            (IdempotencyKey::EventId(id), true) | (IdempotencyKey::ClientMsgId(id), false) => {
                Some(id.as_str())
            }
            _ => None,
        })
        .collect()
}

impl From<sqlx::Error> for LanternError {
    fn from(e: sqlx::Error) -> Self {
        LanternError::Storage(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for LanternError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        LanternError::Storage(format!("migrating the database: {e}"))
    }
}

fn status_from_db(text: &str) -> Result<WorkflowStatus> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| LanternError::Storage(format!("unknown status {text:?} in the database")))
}

fn info_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<WorkflowInfo> {
    Ok(WorkflowInfo {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        title: row.try_get("title")?,
        status: status_from_db(row.try_get::<&str, _>("status")?)?,
        last_seq: row.try_get::<i64, _>("last_seq")? as u64,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn event_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Arc<StoredEvent>> {
    let seq = row.try_get::<i64, _>("seq")? as u64;
    Ok(StoredEvent::from_json(seq, row.try_get("json")?))
}

/// The connections to `lantern.db`, shared by the event store and the accounts.
#[derive(Clone)]
pub struct Db {
    /// The accounts' writes (and the migrations). One connection.
    pub writer: SqlitePool,
    pub readers: SqlitePool,
    /// The event log's writes.
    pub log: Arc<LogWriter>,
}

impl Db {
    /// Open (creating if needed) `data_dir/lantern.db` and apply pending migrations.
    /// The dir is created readable by its owner only (0700) and the database file too
    /// (0600; SQLite gives its WAL and shared-memory files the database file's mode): it holds
    /// every log and the hashes of every token.
    pub async fn open(data_dir: &Path, synchronous: SyncMode) -> Result<Self> {
        private_files(data_dir).map_err(|e| {
            LanternError::Storage(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let sync_mode = SqliteSynchronous::from_str(synchronous.as_str()).map_err(|_| {
            LanternError::Storage(format!("unknown sqlite sync mode {synchronous:?}"))
        })?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync_mode)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // No checkpoint inside a commit (see the module's doc).
            .pragma("wal_autocheckpoint", "0")
            .page_size(PAGE_SIZE);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let log = Arc::new(LogWriter::open(&data_dir.join(DB_FILE), sync_mode)?);
        tokio::spawn(checkpoint_in_background(checkpointer, Arc::downgrade(&log)));
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            // A query hands its rows over through a channel this deep: a read that stops at its
            // byte budget leaves at most this many rows read ahead (events may be 1 MiB).
            .connect_with(options.read_only(true).row_buffer_size(4))
            .await?;
        Ok(Self {
            writer,
            readers,
            log,
        })
    }
}

/// Copy the WAL back into the database file every [`CHECKPOINT_EVERY`], for as long as the
/// runtime runs, in two steps:
///
/// 1. The bulk, on `pool`'s own connection, beside the appends. `PASSIVE`: it never waits for,
///    nor blocks, the writer or a reader; what it cannot copy yet (a reader still needs it)
///    waits for the next round.
/// 2. What was committed during step 1, on the writer's connection between two commits — when
///    the WAL holds more than [`RESTART_ABOVE_FRAMES`], and at most every [`RESTART_EVERY`].
///
/// Step 2 is what bounds the WAL. SQLite starts the WAL over from its beginning only when
/// a write begins with *every* frame copied back; under a steady stream of appends a commit
/// always lands while step 1 runs, so with step 1 alone the WAL never started over: it grew by
/// every page of every commit (1 GB in the 10 s of the bench's 200-agent streaming row), and
/// each frame was written past the end of the file, where the filesystem must allocate and
/// zero a block first: the WAL's writes were 19 % of the server's CPU in that row, 7 % once it
/// started over. After step 2 the next commit finds nothing left to copy and writes over the
/// start of the file, in pages already cached. Step 2 copies only the pages changed during
/// step 1, but it holds appends up for its two fsyncs (the WAL's before the copy, the database
/// file's after), hence no more often than [`RESTART_EVERY`].
/// It stops once the store is gone (`log` cannot be upgraded).
async fn checkpoint_in_background(pool: SqlitePool, log: std::sync::Weak<LogWriter>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut restarted: Option<tokio::time::Instant> = None;
    loop {
        every.tick().await;
        if log.strong_count() == 0 {
            return;
        }
        let step_1 = sqlx::query_as::<_, (i64, i64, i64)>(CHECKPOINT)
            .fetch_one(&pool)
            .await;
        match step_1 {
            // A WAL this small starts over by itself: a light load leaves gaps between commits
            // for step 1 to catch up in. Sparing the writer then also spares the memory step 2
            // cost: 0.7 KiB more RSS per socket in the bench's idle row when it ran every round
            // (most likely the thread hand-off of a `long` run).
            Ok((_, frames, _)) if frames < RESTART_ABOVE_FRAMES => continue,
            Ok(_) if restarted.is_some_and(|at| at.elapsed() < RESTART_EVERY) => continue,
            Ok(_) => restarted = Some(tokio::time::Instant::now()),
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; trying again later");
                continue;
            }
        }
        let Some(log) = log.upgrade() else { return };
        // `long`: it syncs the files, which may take milliseconds on a slow disk.
        let rest = log.run(true, |conn| {
            conn.query_row(CHECKPOINT, [], |_| Ok(()))?;
            Ok(())
        });
        if let Err(e) = rest.await {
            tracing::warn!(error = %e, "WAL checkpoint failed; trying again later");
        }
    }
}

/// Create `data_dir` (0700) and its database file (0600) if they are missing; a database file
/// that others may read is made private.
fn private_files(data_dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)?;
        let file = data_dir.join(DB_FILE);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&file)?;
        for name in [DB_FILE, "lantern.db-wal", "lantern.db-shm"] {
            let path = data_dir.join(name);
            if let Ok(meta) = std::fs::metadata(&path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
            }
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(data_dir)?;
    Ok(())
}

impl SqliteStore {
    /// Open the database under `data_dir` just for the event log.
    pub async fn open(data_dir: &Path, synchronous: SyncMode) -> Result<Self> {
        Self::new(&Db::open(data_dir, synchronous).await?)
    }

    pub fn new(db: &Db) -> Result<Self> {
        let waiting: Arc<std::sync::Mutex<Vec<Waiting>>> = Arc::default();
        let ends: Arc<std::sync::Mutex<LogEnds>> = Arc::default();
        let (log, queue, log_ends) = (db.log.clone(), waiting.clone(), ends.clone());
        let committer = CommitThread::spawn(move || {
            if lock(&queue).is_empty() {
                return false;
            }
            // `commit_waiting` answers every append itself, errors included.
            let _ = log.run_blocking(|conn| {
                commit_waiting(conn, &queue, &mut lock(&log_ends));
                Ok(())
            });
            true
        })
        .map_err(|e| LanternError::Storage(format!("cannot start the commit thread: {e}")))?;
        Ok(Self {
            log: db.log.clone(),
            waiting,
            ends,
            committer,
            readers: db.readers.clone(),
        })
    }
}

#[async_trait::async_trait]
impl EventStore for SqliteStore {
    async fn insert_workflow(&self, info: WorkflowInfo, owner: &str) -> Result<WorkflowInfo> {
        let owner = owner.to_owned();
        self.log
            .run(false, |conn| {
                // The one writer runs this: nothing can take the id between check and insert.
                let taken = conn
                    .prepare_cached("SELECT 1 FROM workflows WHERE id = ?")?
                    .exists(params![info.id])?;
                if taken {
                    return Err(LanternError::Conflict(format!(
                        "workflow id {} is taken",
                        info.id
                    )));
                }
                conn.prepare_cached(
                    "INSERT INTO workflows (id, kind, title, status, created_at, status_at, \
                     owner) VALUES (?, ?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![
                    info.id,
                    info.kind,
                    info.title,
                    info.status.as_str(),
                    info.created_at,
                    info.updated_at,
                    owner
                ])?;
                Ok(())
            })
            .await?;
        Ok(info)
    }

    async fn workflow(&self, id: &str) -> Result<Option<WorkflowInfo>> {
        let row = sqlx::query(&format!("{SELECT_WORKFLOWS} WHERE w.id = ?"))
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(info_from_row).transpose()
    }

    async fn owner(&self, id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT owner FROM workflows WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.readers)
                .await?,
        )
    }

    async fn list_workflows(&self, owner: Option<&str>) -> Result<Vec<WorkflowInfo>> {
        let rows = match owner {
            Some(owner) => {
                sqlx::query(&format!(
                    "{SELECT_WORKFLOWS} WHERE w.owner = ? ORDER BY w.id DESC"
                ))
                .bind(owner)
                .fetch_all(&self.readers)
                .await?
            }
            None => {
                sqlx::query(&format!("{SELECT_WORKFLOWS} ORDER BY w.id DESC"))
                    .fetch_all(&self.readers)
                    .await?
            }
        };
        rows.iter().map(info_from_row).collect()
    }

    async fn append_if(
        &self,
        workflow_id: &str,
        expected_last_seq: Option<u64>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Arc<StoredEvent>>> {
        // Group commit: queue the append and wake the commit thread, which commits every
        // append queued by then in one transaction — so appends to many workflows at once cost
        // one commit, not one each — and answers this one on `done`.
        let (done, result) = tokio::sync::oneshot::channel();
        let job = Waiting {
            workflow_id: workflow_id.to_owned(),
            expected_last_seq,
            events,
            done,
        };
        lock(&self.waiting).push(job);
        self.committer.wake();
        // Dropping this wait is safe: the append is committed (or not) all the same.
        let mut stored = result
            .await
            .map_err(|_| LanternError::Storage("an append was lost".into()))??;
        // The fan-out latency is measured from the moment the events exist for readers.
        let committed = std::time::Instant::now();
        for event in &mut stored {
            if let Some(event) = Arc::get_mut(event) {
                event.appended_at = Some(committed);
            }
        }
        Ok(stored)
    }

    async fn read(
        &self,
        workflow_id: &str,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<StoredEvent>>> {
        use futures::TryStreamExt;
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        // Rows are taken one at a time and the query dropped once the page is full, so a page
        // never holds more than its byte budget (and one event).
        let mut rows = sqlx::query(
            "SELECT seq, json FROM events WHERE workflow_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(workflow_id)
        .bind(after)
        .bind(sql_limit)
        .fetch(&self.readers);
        let mut page = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.try_next().await? {
            let event = event_from_row(&row)?;
            if !page.is_empty() && bytes + event.json.len() > max_bytes {
                break;
            }
            bytes += event.json.len();
            page.push(event);
        }
        drop(rows);
        // Only an empty page needs to tell "no events yet" from "no such workflow".
        if page.is_empty() && self.workflow(workflow_id).await?.is_none() {
            return Err(LanternError::WorkflowNotFound(workflow_id.to_owned()));
        }
        Ok(page)
    }

    async fn open_workflows(&self, owner: &str) -> Result<usize> {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM workflows WHERE owner = ? \
             AND status NOT IN ('completed', 'failed', 'cancelled')",
        )
        .bind(owner)
        .fetch_one(&self.readers)
        .await?;
        Ok(usize::try_from(open).unwrap_or(0))
    }

    async fn delete_finished_before(&self, cutoff: &str) -> Result<Vec<String>> {
        let ids = self
            .log
            .run(true, |conn| {
                let mut delete = conn.prepare_cached(
                    "DELETE FROM workflows WHERE status IN ('completed','failed','cancelled') \
                     AND status_at < ? RETURNING id",
                )?;
                let ids = delete.query_map([cutoff], |row| row.get::<_, String>(0))?;
                let ids = ids.collect::<rusqlite::Result<Vec<_>>>()?;
                let mut ends = lock(&self.ends);
                for id in &ids {
                    ends.forget(id);
                }
                Ok(ids)
            })
            .await?;
        Ok(ids)
    }

    async fn seqs_of_keys(
        &self,
        workflow_id: &str,
        keys: &[&IdempotencyKey],
    ) -> Result<HashMap<IdempotencyKey, u64>> {
        // Through the writer: the caller holds the workflow's writer lock and must see every
        // event committed before it.
        self.log
            .run(false, |conn| keys_in_log(conn, workflow_id, keys))
            .await
    }
}

/// Commit every append in `waiting` in one transaction, each all or nothing on its own, so that
/// one that fails (a retry key logged already, a workflow gone) is rolled back alone and gets
/// its own error; each gets its result once the transaction committed. Never fails itself: if
/// the transaction cannot begin or commit, every append gets that error.
fn commit_waiting(
    conn: &mut rusqlite::Connection,
    waiting: &std::sync::Mutex<Vec<Waiting>>,
    ends: &mut LogEnds,
) {
    let jobs = std::mem::take(&mut *lock(waiting));
    if jobs.is_empty() {
        return;
    }
    let ts = now_rfc3339();
    let mut results = Vec::with_capacity(jobs.len());
    // Where the logs end within this transaction; into `ends` once it committed.
    let mut moved: HashMap<&str, u64> = HashMap::new();
    let committed = (|| -> Result<()> {
        // IMMEDIATE: take the write lock now, so the transaction cannot fail half-way for it.
        // Dropped without a commit (an error below), the transaction rolls back.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for job in &jobs {
            // An append that writes one row needs no savepoint: its checks come before the
            // write, and a failed INSERT takes back its own changes (SQLite's default conflict
            // resolution, ABORT, undoes the statement, not the transaction). A streamed delta
            // is such an append; the two statements saved are a fair part of its cost.
            let one_write = job.events.len() == 1 && status_after(&job.events).is_none();
            if !one_write {
                tx.prepare_cached("SAVEPOINT job")?.execute([])?;
            }
            let known_end = moved
                .get(job.workflow_id.as_str())
                .copied()
                .or_else(|| ends.get(&job.workflow_id));
            let result = append_in(
                &tx,
                &job.workflow_id,
                known_end,
                job.expected_last_seq,
                &job.events,
                &ts,
            );
            match &result {
                Ok(stored) => {
                    if let Some(last) = stored.last() {
                        moved.insert(&job.workflow_id, last.seq);
                    }
                }
                Err(e) => {
                    if tx.is_autocommit() {
                        // SQLite took the whole transaction back (an I/O error, a full disk):
                        // nothing of the group is logged, and nothing more may run outside it.
                        return Err(LanternError::Storage(e.to_string()));
                    }
                    // Whatever went wrong, the next append reads where the log ends afresh.
                    moved.remove(job.workflow_id.as_str());
                    ends.forget(&job.workflow_id);
                }
            }
            if !one_write {
                if result.is_err() {
                    tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
                }
                tx.prepare_cached("RELEASE job")?.execute([])?;
            }
            results.push(result);
        }
        tx.commit()?;
        for (workflow_id, last_seq) in moved {
            ends.set(workflow_id, last_seq);
        }
        Ok(())
    })();
    match committed {
        Ok(()) => {
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.done.send(result);
            }
        }
        Err(e) => {
            let why = e.to_string();
            for job in jobs {
                let _ = job.done.send(Err(LanternError::Storage(why.clone())));
            }
        }
    }
}

/// The batch's last status change, if it has one: the workflow's status after it.
fn status_after(events: &[NewEvent]) -> Option<WorkflowStatus> {
    events.iter().rev().find_map(|new| match &new.body {
        EventBody::WorkflowStatus { status, .. } => Some(*status),
        _ => None,
    })
}

/// Append `events` to `workflow_id`'s log inside the caller's transaction, at time `ts` — if
/// the log ends at `expected_last_seq`, when one is given. `known_end`: where the log ends, if
/// the caller knows ([`LogEnds`]). Checks first, then writes.
fn append_in(
    tx: &rusqlite::Connection,
    workflow_id: &str,
    known_end: Option<u64>,
    expected_last_seq: Option<u64>,
    events: &[NewEvent],
    ts: &str,
) -> Result<Vec<Arc<StoredEvent>>> {
    let new_status = status_after(events);
    let last_seq = match known_end {
        // The workflow exists: the INSERT checks it again (the foreign key).
        Some(end) => end,
        // Finds the workflow and where its log ends. Only reads: the row is written only when
        // the status changes (migration 0003 says why).
        None => tx
            .prepare_cached(
                "SELECT COALESCE((SELECT MAX(seq) FROM events WHERE workflow_id = ?1), 0) \
                 FROM workflows WHERE id = ?1",
            )?
            .query_row([workflow_id], |row| row.get::<_, i64>(0))
            .optional()?
            .ok_or_else(|| LanternError::WorkflowNotFound(workflow_id.to_owned()))?
            as u64,
    };
    if expected_last_seq.is_some_and(|expected| expected != last_seq) {
        return Err(LanternError::LogMoved { last_seq });
    }
    if let Some(status) = new_status {
        tx.prepare_cached("UPDATE workflows SET status = ?, status_at = ? WHERE id = ?")?
            .execute(params![status.as_str(), ts, workflow_id])?;
    }
    let first_seq = last_seq + 1;
    let mut stored = Vec::with_capacity(events.len());
    {
        // One prepared statement, run per row: without a round trip per statement, many rows
        // per statement would gain nothing.
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (workflow_id, seq, json, event_id, client_msg_id) \
             VALUES (?, ?, ?, ?, ?)",
        )?;
        for (seq, NewEvent { body, key }) in (first_seq..).zip(events) {
            let (event_id, client_msg_id) = match &key {
                Some(IdempotencyKey::EventId(id)) => (Some(id.as_str()), None),
                Some(IdempotencyKey::ClientMsgId(id)) => (None, Some(id.as_str())),
                None => (None, None),
            };
            let event = StoredEvent::serialize(seq, ts, workflow_id, body);
            insert
                .execute(params![
                    workflow_id,
                    seq as i64,
                    event.json.as_str(),
                    event_id,
                    client_msg_id
                ])
                .map_err(|e| insert_failed(e, workflow_id))?;
            stored.push(event);
        }
    }
    Ok(stored)
}

/// An event's INSERT failed. The only UNIQUE indexes of `events` are the two of retry keys (a
/// clash of `(workflow_id, seq)` fails as PRIMARYKEY instead), so a UNIQUE failure means the
/// event's key is logged already; a FOREIGNKEY failure means the workflow is gone.
fn insert_failed(e: rusqlite::Error, workflow_id: &str) -> LanternError {
    match e.sqlite_error().map(|cause| cause.extended_code) {
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE) => LanternError::RetryKeyLogged,
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
            LanternError::WorkflowNotFound(workflow_id.to_owned())
        }
        _ => e.into(),
    }
}

/// A std mutex's guard, poisoned or not: what it guards stays consistent across a panic here
/// (each holder replaces or reads it whole).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `seq` of each of `keys` already in `workflow_id`'s log.
fn keys_in_log(
    conn: &mut rusqlite::Connection,
    workflow_id: &str,
    keys: &[&IdempotencyKey],
) -> Result<HashMap<IdempotencyKey, u64>> {
    let mut found = HashMap::new();
    for (column, wanted) in [
        ("event_id", key_values(keys, true)),
        ("client_msg_id", key_values(keys, false)),
    ] {
        for chunk in wanted.chunks(KEYS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut lookup = conn.prepare_cached(&format!(
                "SELECT {column}, seq FROM events WHERE workflow_id = ? AND {column} IN ({marks})"
            ))?;
            let values = std::iter::once(&workflow_id).chain(chunk);
            let mut rows = lookup.query(rusqlite::params_from_iter(values))?;
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                let seq = row.get::<_, i64>(1)? as u64;
                let key = if column == "event_id" {
                    IdempotencyKey::EventId(key)
                } else {
                    IdempotencyKey::ClientMsgId(key)
                };
                found.insert(key, seq);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::{self, thinking};
    use app::protocol::LoggedEvent;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_waiting_together_are_committed_together_and_a_bad_one_fails_alone() {
        a_bad_append_among_many_fails_alone(2).await; // each in a savepoint
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_one_event_append_fails_alone_without_a_savepoint() {
        a_bad_append_among_many_fails_alone(1).await;
    }

    /// 40 appends of `events` events each, committed together, one of which repeats a logged
    /// retry key: that one is refused and leaves nothing, every other one is in the log.
    async fn a_bad_append_among_many_fails_alone(events: usize) {
        let (_dir, store) = fresh_store().await;
        let store = Arc::new(store);
        let mut ids = Vec::new();
        for _ in 0..40 {
            let info = store
                .create_workflow("external", None, "u")
                .await
                .expect("created");
            ids.push(info.id);
        }
        store
            .append(&ids[0], vec![thinking(Some("k"))])
            .await
            .expect("first");
        let appends = ids.iter().enumerate().map(|(n, id)| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let key = if n == 0 { Some("k") } else { None };
                let mut batch = vec![thinking(None); events - 1];
                batch.push(thinking(key));
                store.append(&id, batch).await
            })
        });
        let results = futures::future::join_all(appends).await;
        for (n, result) in results.into_iter().enumerate() {
            match result.expect("joined") {
                Ok(stored) => {
                    assert_ne!(n, 0, "the repeated key is refused");
                    let seqs: Vec<u64> = stored.iter().map(|e| e.seq()).collect();
                    assert_eq!(seqs, (1..=events as u64).collect::<Vec<_>>());
                }
                Err(e) => {
                    assert_eq!(n, 0, "only the repeated key is refused: {e}");
                    assert!(matches!(e, LanternError::RetryKeyLogged), "{e}");
                }
            }
        }
        let first = store
            .workflow(&ids[0])
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(first.last_seq, 1, "the refused append left nothing");
        let other = store
            .workflow(&ids[39])
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(other.last_seq, events as u64);
    }

    #[test]
    fn an_event_serialized_from_its_parts_is_the_logged_event() {
        let body = contract::thinking(None).body;
        let whole = StoredEvent::new(&LoggedEvent {
            seq: 3,
            ts: "t".into(),
            workflow_id: "w".into(),
            body: body.clone(),
        });
        let parts = StoredEvent::serialize(3, "t", "w", &body);
        assert_eq!(whole.json, parts.json);
        assert_eq!(parts.kind(), "agent_thinking");
    }

    /// A store in a fresh data dir (dropped with the dir), with one empty workflow.
    async fn store_with_a_workflow(
        synchronous: SyncMode,
    ) -> (tempfile::TempDir, SqliteStore, WorkflowInfo) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path(), synchronous)
            .await
            .expect("open");
        let info = store
            .create_workflow("external", None, "u")
            .await
            .expect("created");
        (dir, store, info)
    }

    /// A store in a fresh data dir (kept as long as the dir).
    async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path(), SyncMode::Normal)
            .await
            .expect("open");
        (dir, store)
    }

    /// The writer knows where a log ends without reading it; a workflow deleted behind its
    /// back (another connection) is still refused as not found, by the foreign key, and the
    /// append leaves nothing.
    #[tokio::test]
    async fn an_append_to_a_workflow_deleted_behind_the_writers_back_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path(), SyncMode::Normal).await.expect("db");
        let store = SqliteStore::new(&db).expect("store");
        // The writer now knows where this log ends.
        let id = workflow_of_one_event(&store).await;
        sqlx::query("DELETE FROM workflows WHERE id = ?")
            .bind(&id)
            .execute(&db.writer)
            .await
            .expect("deleted");
        let refused = store.append(&id, vec![thinking(None)]).await;
        assert!(
            matches!(refused, Err(LanternError::WorkflowNotFound(_))),
            "{refused:?}"
        );
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&db.readers)
            .await
            .expect("count");
        assert_eq!(rows, 0);
    }

    /// A new workflow holding one event: its id.
    async fn workflow_of_one_event(store: &SqliteStore) -> String {
        let info = store
            .create_workflow("external", None, "u")
            .await
            .expect("created");
        store
            .append(&info.id, vec![thinking(None)])
            .await
            .expect("appended");
        info.id
    }

    // Among them, a batch whose third event repeats a logged retry key: the unique index
    // refuses it after the first two rows went in, and the whole transaction must go.
    contract::store_contract!(fresh_store());

    #[cfg(unix)]
    #[tokio::test]
    async fn the_data_dir_and_the_database_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().expect("temp dir");
        let dir = parent.path().join("data");
        let store = SqliteStore::open(&dir, SyncMode::Normal)
            .await
            .expect("open");
        workflow_of_one_event(&store).await;
        let mode = |path: &std::path::Path| {
            std::fs::metadata(path)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&dir), 0o700);
        for name in [DB_FILE, "lantern.db-wal", "lantern.db-shm"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
    }

    /// A database written before migration 0003, when the workflow row held `last_seq` and
    /// `updated_at`: once migrated, each workflow is where its log says, and appends go on
    /// from there.
    #[tokio::test]
    async fn a_database_from_before_0003_keeps_each_workflow_where_it_was() {
        let dir = tempfile::tempdir().expect("temp dir");
        let old_migrations = tempfile::tempdir().expect("temp dir");
        for name in ["0001_event_log.sql", "0002_accounts.sql"] {
            let from = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(name);
            std::fs::copy(from, old_migrations.path().join(name)).expect("copied");
        }
        let old = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(dir.path().join(DB_FILE))
                    .create_if_missing(true),
            )
            .await
            .expect("old database");
        let migrator = sqlx::migrate::Migrator::new(old_migrations.path()).await;
        migrator
            .expect("old migrations")
            .run(&old)
            .await
            .expect("migrated");
        let (created, second) = ("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:02.000Z");
        sqlx::query(
            "INSERT INTO workflows (id, kind, status, last_seq, created_at, updated_at) \
             VALUES ('wf_a', 'external', 'running', 2, ?1, ?2), \
             ('wf_b', 'external', 'pending', 0, ?1, ?1)",
        )
        .bind(created)
        .bind(second)
        .execute(&old)
        .await
        .expect("workflows");
        for (seq, ts) in [(1, "2026-01-01T00:00:01.000Z"), (2, second)] {
            let body = contract::thinking(None).body;
            let workflow_id = "wf_a".to_owned();
            let ts = ts.to_owned();
            let event = StoredEvent::new(&LoggedEvent {
                seq,
                ts,
                workflow_id,
                body,
            });
            sqlx::query("INSERT INTO events (workflow_id, seq, json) VALUES ('wf_a', ?, ?)")
                .bind(seq as i64)
                .bind(event.json.as_str())
                .execute(&old)
                .await
                .expect("event");
        }
        old.close().await;

        let store = SqliteStore::open(dir.path(), SyncMode::Normal)
            .await
            .expect("open");
        let a = store.workflow("wf_a").await.expect("read").expect("exists");
        assert_eq!((a.last_seq, a.updated_at.as_str()), (2, second));
        assert_eq!(
            (a.status, a.created_at.as_str()),
            (WorkflowStatus::Running, created)
        );
        let b = store.workflow("wf_b").await.expect("read").expect("exists");
        assert_eq!((b.last_seq, b.updated_at.as_str()), (0, created));
        let next = store
            .append("wf_a", vec![thinking(None)])
            .await
            .expect("appended");
        assert_eq!(next[0].seq(), 3);
    }

    #[tokio::test]
    async fn an_append_to_an_unknown_workflow_is_refused_as_such() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path(), SyncMode::Normal)
            .await
            .expect("open");
        let refused = store.append("wf_nope", vec![thinking(None)]).await;
        assert!(
            matches!(refused, Err(LanternError::WorkflowNotFound(_))),
            "{refused:?}"
        );
    }

    /// With fsync per commit the writer steps out of the runtime's way (`block_in_place`),
    /// which only the multi-threaded runtime allows: both flavours must append.
    async fn appends_with_fsync_per_commit() {
        let (_dir, store, info) = store_with_a_workflow(SyncMode::Full).await;
        let stored = store
            .append(&info.id, vec![thinking(None)])
            .await
            .expect("appended");
        assert_eq!(stored[0].seq(), 1);
        assert_eq!(
            store.delete_finished_before("9999").await.expect("swept"),
            Vec::<String>::new()
        );
    }

    #[tokio::test]
    async fn fsync_per_commit_on_a_single_threaded_runtime() {
        appends_with_fsync_per_commit().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fsync_per_commit_on_the_multi_threaded_runtime() {
        appends_with_fsync_per_commit().await;
    }

    fn db_file_len(dir: &Path) -> u64 {
        std::fs::metadata(dir.join(DB_FILE)).map_or(0, |m| m.len())
    }

    /// The WAL header's checkpoint sequence number: SQLite adds one each time the WAL starts
    /// over from its beginning.
    fn wal_start_overs(dir: &Path) -> Option<u32> {
        use std::io::Read;
        let mut header = [0u8; 16];
        let mut wal = std::fs::File::open(dir.join("lantern.db-wal")).ok()?;
        wal.read_exact(&mut header).ok()?;
        Some(u32::from_be_bytes([
            header[12], header[13], header[14], header[15],
        ]))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_while_appends_never_stop() {
        let (dir, store) = fresh_store().await;
        let store = Arc::new(store);
        let mut ids = Vec::new();
        for _ in 0..20 {
            let info = store.create_workflow("external", None, "u").await;
            ids.push(info.expect("created").id);
        }
        // Twenty appenders that never pause: there is always a commit after the background
        // checkpoint's last copied frame, so the WAL starts over only if the writer copies the
        // rest itself.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let appenders: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let (store, stop) = (store.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        store
                            .append(&id, vec![thinking(None)])
                            .await
                            .expect("appended");
                    }
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let first = loop {
            if let Some(n) = wal_start_overs(dir.path()) {
                break n;
            }
            assert!(std::time::Instant::now() < deadline, "no WAL was written");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        while wal_start_overs(dir.path()).is_none_or(|n| n < first + 2) {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL never started over under a steady stream of appends (it grows without bound)"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for appender in appenders {
            appender.await.expect("appender");
        }
    }

    #[tokio::test]
    async fn the_wal_is_checkpointed_in_the_background_not_by_the_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path(), SyncMode::Normal).await.expect("open");
        let autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&db.writer)
            .await
            .expect("pragma");
        assert_eq!(autocheckpoint, 0, "a commit must never checkpoint");

        let store = SqliteStore::new(&db).expect("store");
        let info = store
            .create_workflow("external", None, "u")
            .await
            .expect("created");
        let before = db_file_len(dir.path());
        let content = "x".repeat(4000);
        for _ in 0..20 {
            let events = (0..50)
                .map(|_| NewEvent {
                    body: EventBody::AgentThinking {
                        agent: "a".into(),
                        content: Some(content.clone()),
                        message_id: None,
                    },
                    key: None,
                })
                .collect();
            store.append(&info.id, events).await.expect("appended");
        }
        // ~4 MB written to the WAL; only the background checkpoint moves it into the file.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while db_file_len(dir.path()) < before + 1_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file did not grow: nothing checkpointed the WAL"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
