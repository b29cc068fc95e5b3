//! Task dispatch through a Redis Streams consumer group (`aosc worker`
//! with `AOS_REDIS_URL`).
//!
//! A task that becomes ready is first committed to PostgreSQL's task table
//! (the truth), then added (XADD) to the stream [`TASKS`]. Workers read it
//! with XREADGROUP in the group [`GROUP`] (one consumer per worker), claim
//! the task's row in PostgreSQL (`FOR UPDATE SKIP LOCKED`: a duplicate or
//! stale entry finds the row taken or gone and is acknowledged at once),
//! run it, and XACK the entry after the result is committed. A worker's
//! heartbeat resets the idle time of the entries it holds (XCLAIM to
//! itself); an entry idle past the lease (its worker died) is taken over
//! with XAUTOCLAIM by another worker, whose claim of the row then succeeds
//! because the dead worker's lease expired too. Entries that never made it
//! to Redis (Redis down) are found by the workers' periodic sweep of the
//! task table: Redis only makes dispatch fast, it is never needed for
//! correctness.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

/// The stream of ready tasks.
pub const TASKS: &str = "aos:tasks";
/// The consumer group of the workers.
pub const GROUP: &str = "aos:workers";
/// About how many entries [`TASKS`] keeps (`MAXLEN ~`); a task whose entry
/// was trimmed unread is found by the sweep.
pub const TASKS_MAXLEN: u64 = 100_000;

/// Which task an entry is about (the row's key in the task table).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskRef {
    pub run_id: String,
    pub step: i32,
    pub item: i32,
}

impl TaskRef {
    /// The task "decide about this run" (step and item -1).
    pub fn decide(run_id: &str) -> TaskRef {
        TaskRef { run_id: run_id.to_string(), step: -1, item: -1 }
    }
}

/// An entry delivered to this consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The stream entry id (for XACK).
    pub id: String,
    /// `None` for an entry that is not a task (acknowledged and ignored).
    pub task: Option<TaskRef>,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("AOS_REDIS_URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis: no answer in {0:?}")]
    Timeout(Duration),
}

type Result<T> = std::result::Result<T, DispatchError>;

/// A handle on the task stream; connections are made on first use and again
/// after a failure.
pub struct Dispatch {
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    blocking: Mutex<Option<MultiplexedConnection>>,
    autoclaim_cursor: Mutex<String>,
}

const ANSWER: Duration = Duration::from_secs(2);

async fn timed<T>(d: Duration, f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T> {
    match tokio::time::timeout(d, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(DispatchError::Timeout(d)),
    }
}

fn task_of(e: &StreamId) -> Delivered {
    let task = (|| Some(TaskRef { run_id: e.get("run_id")?, step: e.get("step")?, item: e.get("item")? }))();
    Delivered { id: e.id.clone(), task }
}

impl Dispatch {
    /// A handle for `url` (nothing is connected yet).
    pub fn new(url: &str) -> Result<Dispatch> {
        let client = redis::Client::open(url).map_err(|e| DispatchError::BadUrl { url: url.to_string(), reason: e.to_string() })?;
        Ok(Dispatch { client, conn: Mutex::new(None), blocking: Mutex::new(None), autoclaim_cursor: Mutex::new("0-0".into()) })
    }

    fn cached(slot: &Mutex<Option<MultiplexedConnection>>) -> Option<MultiplexedConnection> {
        slot.lock().ok().and_then(|g| g.clone())
    }

    fn forget(slot: &Mutex<Option<MultiplexedConnection>>) {
        if let Ok(mut g) = slot.lock() {
            *g = None;
        }
    }

    async fn connect(&self, slot: &Mutex<Option<MultiplexedConnection>>, response: Duration) -> Result<MultiplexedConnection> {
        if let Some(c) = Self::cached(slot) {
            return Ok(c);
        }
        let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(Some(response)).set_connection_timeout(Some(ANSWER));
        let mut c = timed(ANSWER * 2, self.client.get_multiplexed_async_connection_with_config(&cfg)).await?;
        // The group (and the stream) exist from the first connection on; a
        // new group reads the stream from its start (entries added before
        // any worker ran are not lost; stale ones are acknowledged at once).
        let made: redis::RedisResult<()> =
            redis::cmd("XGROUP").arg("CREATE").arg(TASKS).arg(GROUP).arg("0").arg("MKSTREAM").query_async(&mut c).await;
        if let Err(e) = made
            && e.code() != Some("BUSYGROUP")
        {
            return Err(e.into());
        }
        if let Ok(mut g) = slot.lock() {
            *g = Some(c.clone());
        }
        Ok(c)
    }

    /// Runs `f` on the shared connection; forgets it on failure.
    async fn with_conn<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let c = self.connect(&self.conn, ANSWER).await?;
        let out = timed(ANSWER, f(c)).await;
        if out.is_err() {
            Self::forget(&self.conn);
        }
        out
    }

    /// Adds ready tasks (one pipelined XADD each). Call after the commit
    /// that made them ready.
    pub async fn add(&self, tasks: &[TaskRef]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        // One MULTI/EXEC: a blocked XREADGROUP is served after the whole
        // batch, so a reader gets the commit's tasks in one read, not one.
        let mut p = redis::pipe();
        p.atomic();
        for t in tasks {
            p.cmd("XADD")
                .arg(TASKS)
                .arg("MAXLEN")
                .arg("~")
                .arg(TASKS_MAXLEN)
                .arg("*")
                .arg("run_id")
                .arg(&t.run_id)
                .arg("step")
                .arg(t.step)
                .arg("item")
                .arg(t.item)
                .ignore();
        }
        self.with_conn(|mut c| async move { p.query_async::<()>(&mut c).await }).await
    }

    /// New entries for `consumer` (XREADGROUP … `>`), waiting up to `block`
    /// for one when there are none.
    pub async fn read(&self, consumer: &str, count: usize, block: Duration) -> Result<Vec<Delivered>> {
        let c = self.connect(&self.blocking, block + ANSWER).await?;
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX);
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(GROUP).arg(consumer).arg("COUNT").arg(count.max(1)).arg("BLOCK").arg(block_ms).arg("STREAMS").arg(TASKS).arg(">");
        let mut c2 = c.clone();
        let out = timed(block + ANSWER, async move { cmd.query_async::<Option<StreamReadReply>>(&mut c2).await }).await;
        match out {
            Ok(reply) => Ok(reply.map(|r| r.keys.iter().flat_map(|k| k.ids.iter().map(task_of)).collect()).unwrap_or_default()),
            Err(e) => {
                Self::forget(&self.blocking);
                Err(e)
            }
        }
    }

    /// Acknowledges entries (their task was committed, or was not ours).
    pub async fn ack(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.with_conn(|mut c| async move { redis::cmd("XACK").arg(TASKS).arg(GROUP).arg(&ids).query_async::<()>(&mut c).await }).await
    }

    /// Resets the idle time of entries `consumer` holds (the heartbeat), so
    /// that only a dead worker's entries go idle past the lease.
    pub async fn touch(&self, consumer: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        let consumer = consumer.to_string();
        self.with_conn(|mut c| async move {
            redis::cmd("XCLAIM").arg(TASKS).arg(GROUP).arg(&consumer).arg(0).arg(&ids).arg("JUSTID").query_async::<()>(&mut c).await
        })
        .await
    }

    /// Takes over up to `count` entries idle for at least `min_idle`
    /// (XAUTOCLAIM, resuming where the last call stopped). Entries deleted
    /// from the stream meanwhile are acknowledged.
    pub async fn autoclaim(&self, consumer: &str, min_idle: Duration, count: usize) -> Result<Vec<Delivered>> {
        let start = self.autoclaim_cursor.lock().map(|g| g.clone()).unwrap_or_else(|_| "0-0".into());
        let consumer = consumer.to_string();
        let idle = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: StreamAutoClaimReply = self
            .with_conn(|mut c| async move {
                redis::cmd("XAUTOCLAIM").arg(TASKS).arg(GROUP).arg(&consumer).arg(idle).arg(&start).arg("COUNT").arg(count.max(1)).query_async(&mut c).await
            })
            .await?;
        if let Ok(mut g) = self.autoclaim_cursor.lock() {
            *g = reply.next_stream_id.clone();
        }
        if !reply.deleted_ids.is_empty() {
            self.ack(&reply.deleted_ids).await?;
        }
        Ok(reply.claimed.iter().map(task_of).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_with_the_url() {
        let e = Dispatch::new("http://nope").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("AOS_REDIS_URL `http://nope`"), "{e}");
    }

    #[test]
    fn an_entry_that_is_not_a_task_has_none() {
        let mut e = StreamId { id: "1-0".into(), ..StreamId::default() };
        assert_eq!(task_of(&e).task, None);
        e.map.insert("run_id".into(), redis::Value::BulkString(b"R".to_vec()));
        e.map.insert("step".into(), redis::Value::BulkString(b"3".to_vec()));
        e.map.insert("item".into(), redis::Value::BulkString(b"-1".to_vec()));
        assert_eq!(task_of(&e).task, Some(TaskRef { run_id: "R".into(), step: 3, item: -1 }));
    }
}
