//! The event log's writer: one SQLite connection whose statements run on the task (or, for the
//! group commits, the thread) that waits for them, not on a thread of the connection's own.
//!
//! Why not sqlx for this: sqlx runs each SQLite connection on a dedicated thread, and every
//! statement (and BEGIN and COMMIT) is a round trip to it. An append was five of them — the
//! retry-key lookup, BEGIN, UPDATE, INSERT, COMMIT — and on a quiet machine each hand-off is a
//! thread wake-up of roughly 70–150 µs: most of the time between an agent's event arriving and
//! its first viewer getting it. Here an append is a few microseconds of locking plus SQLite's
//! own work, with no hand-off at all.
//!
//! Guarantees:
//! - One writer at a time: [`LogWriter::run`] holds an async mutex, so callers queue without
//!   blocking a thread (the commit thread takes the same mutex with
//!   [`LogWriter::run_blocking`]), and each piece of work sees everything committed before it.
//! - A piece of work runs to its end once started: it is synchronous, so dropping the caller's
//!   future cannot cut a transaction in half (a `rusqlite::Transaction` that is not committed
//!   rolls back when dropped).
//! - Work that may take long (a commit that fsyncs with `--sqlite-sync full`, a retention sweep)
//!   runs under `block_in_place`: the runtime hands this thread's other tasks to another
//!   thread meanwhile.
//!
//! The accounts write through sqlx's connection (rare, short transactions); SQLite serialises
//! the two writers, and each waits for the other with `busy_timeout`.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use sqlx::sqlite::SqliteSynchronous;

use crate::error::{LanternError, Result};

impl From<rusqlite::Error> for LanternError {
    fn from(e: rusqlite::Error) -> Self {
        LanternError::Storage(e.to_string())
    }
}

/// How long a write waits for the other writer (the accounts) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The writer's page cache, in KiB (see [`LogWriter::open`]).
const WRITER_CACHE_KIB: i64 = 4 * 1024;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

pub struct LogWriter {
    conn: tokio::sync::Mutex<Connection>,
    /// Commits fsync (`synchronous` is `full` or `extra`): any write may take milliseconds.
    commits_fsync: bool,
}

impl LogWriter {
    /// Open the database file (already created and migrated) for writing the event log.
    pub fn open(file: &Path, synchronous: SqliteSynchronous) -> Result<Self> {
        let (synchronous, commits_fsync) = match synchronous {
            SqliteSynchronous::Off => ("off", false),
            SqliteSynchronous::Normal => ("normal", false),
            SqliteSynchronous::Full => ("full", true),
            SqliteSynchronous::Extra => ("extra", true),
        };
        let conn = Connection::open(file)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The append's statements, plus retry-key lookups of a few batch sizes.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "journal_mode", "wal")?;
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.pragma_update(None, "foreign_keys", "on")?;
        // No checkpoint inside a commit (see the sqlite module's doc).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // The pages a group commit touches stay cached: with SQLite's default 2 MiB, appends
        // to a few hundred workflows at once evicted each other's pages and read them back
        // (a model of that load, 200 workflows in groups of 180 appends: 2.7 preads per
        // append at 2 MiB, 0.8 at 4 MiB, 0.5 at 64 MiB). Twice the default: the cache is
        // resident memory once used (tests/it/slow_consumer.rs bounds the server's growth).
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        Ok(Self {
            conn: tokio::sync::Mutex::new(conn),
            commits_fsync,
        })
    }

    /// Run `work` on the connection, alone, from a thread outside the runtime (the group
    /// commits' own thread, see `commit_thread`).
    pub fn run_blocking<T>(&self, work: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.blocking_lock();
        work(&mut conn)
    }

    /// Run `work` on the connection, alone. `long`: it may take long even without fsync.
    pub async fn run<T>(
        &self,
        long: bool,
        work: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn.lock().await;
        if (long || self.commits_fsync) && may_block_in_place() {
            tokio::task::block_in_place(|| work(&mut conn))
        } else {
            work(&mut conn)
        }
    }
}

/// `block_in_place` needs the multi-threaded runtime (the server's); a single-threaded one
/// (most tests) just runs the work.
fn may_block_in_place() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|rt| rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}
