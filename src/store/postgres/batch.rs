//! Group commit for operation writes on PostgreSQL: creates and
//! compare-and-swap updates (PATCHes, lease claims, heartbeats and
//! completions, script steps) queued by concurrent callers are committed
//! together, one transaction per round, and each caller is answered only
//! after that transaction committed.
//!
//! Why: a durable write costs a commit (a WAL flush and a round trip), and
//! one autocommitted statement per request pays it per request. Gathered,
//! a round of up to `MAX_BATCH` writes pays one; alone, a write pays what
//! it paid before.
//!
//! How each write keeps its own outcome in a shared transaction: its
//! statement cannot fail on the outcomes callers expect. A create is
//! `INSERT … ON CONFLICT DO NOTHING` (no row back: the id exists); an
//! update says whether it wrote and whether the row exists (neither: not
//! found; exists but not written: version mismatch). The statements go out
//! pipelined on one connection, sorted by operation id so that two rounds
//! committing at once lock rows in the same order and cannot deadlock. Any
//! other failure aborts the transaction: each write is then retried in a
//! transaction of its own, so one write the database refuses never fails
//! its neighbours, and a database that is away fails every caller at once
//! with `Unavailable` — including a COMMIT whose outcome is unknown, which
//! is never answered as a success.

use std::sync::Arc;

use deadpool_postgres::Pool;
use futures_util::future::join_all;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::listener;
use super::notifier::Notifier;
use super::rows::{OPERATION_COLUMNS, as_params};
use crate::store::StoreError;

/// Most writes committed in one transaction: bounds what one round adds
/// to the latency of the writes in it.
const MAX_BATCH: usize = 256;
/// Writes waiting for a round, beyond which callers wait to queue theirs.
const QUEUE: usize = 4096;

/// Parameters of one statement, owned so that they can wait in the queue.
pub type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// One operation write.
pub enum Write {
    /// Insert a new operation (`rows::operation_params`).
    Create(Params),
    /// Replace an operation if its version is still the expected one
    /// (`rows::update_params`).
    Update(Params),
}

struct Job {
    id: Uuid,
    write: Write,
    /// Answered after the COMMIT that made the write durable, or with why not.
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The queue of operation writes and the tasks that commit them.
pub struct Batcher {
    queue: mpsc::Sender<Job>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Batcher {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Batcher {
    /// Starts `committers` tasks, each committing one round at a time on a
    /// connection from `pool`: while one round waits for its WAL flush the
    /// next is gathered and sent.
    pub fn start(pool: Pool, notifier: Arc<Notifier>, committers: usize) -> Batcher {
        let (queue, pending) = mpsc::channel(QUEUE);
        let pending = Arc::new(Mutex::new(pending));
        let tasks = (0..committers.max(1))
            .map(|_| tokio::spawn(run(pool.clone(), pending.clone(), notifier.clone())))
            .collect();
        Batcher { queue, tasks }
    }

    /// Queues a write on operation `id` and waits until it committed (or
    /// failed). A caller that gives up waiting (its request timed out) does
    /// not withdraw the write: it may still commit.
    pub async fn write(&self, id: Uuid, write: Write) -> Result<(), StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Job { id, write, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the PostgreSQL writer has stopped".into()))?;
        outcome.await.map_err(|_| StoreError::Unavailable("the PostgreSQL writer has stopped".into()))?
    }
}

/// Takes a round from the queue (whatever is waiting, up to `MAX_BATCH`),
/// commits it, answers it, and starts over.
async fn run(pool: Pool, pending: Arc<Mutex<mpsc::Receiver<Job>>>, notifier: Arc<Notifier>) {
    loop {
        let mut round = Vec::new();
        {
            let mut pending = pending.lock().await;
            if pending.recv_many(&mut round, MAX_BATCH).await == 0 {
                return; // every sender is gone
            }
        }
        round.sort_by_key(|job| job.id); // stable: two writes on one operation keep their order
        commit_round(&pool, round, &notifier).await;
    }
}

/// Commits `round` and answers every job in it.
async fn commit_round(pool: &Pool, round: Vec<Job>, notifier: &Notifier) {
    let writes: Vec<&Write> = round.iter().map(|job| &job.write).collect();
    match commit(pool, &writes).await {
        Ok(outcomes) => {
            for (job, outcome) in round.into_iter().zip(outcomes) {
                answer(job, outcome, notifier);
            }
        }
        Err(StoreError::Unavailable(why)) => {
            for job in round {
                let _ = job.reply.send(Err(StoreError::Unavailable(why.clone())));
            }
        }
        Err(_) if round.len() > 1 => {
            // One write the database refused: each alone, so it fails by itself.
            for job in round {
                let outcome = commit(pool, &[&job.write]).await.map(|mut one| one.remove(0));
                match outcome {
                    Ok(outcome) => answer(job, outcome, notifier),
                    Err(e) => {
                        let _ = job.reply.send(Err(e));
                    }
                }
            }
        }
        Err(e) => {
            let job = round.into_iter().next().expect("a round has a job");
            let _ = job.reply.send(Err(e));
        }
    }
}

/// Sends a committed write's outcome; announces the change it made.
fn answer(job: Job, outcome: Outcome, notifier: &Notifier) {
    let result = match outcome {
        Outcome::Written(change) => {
            notifier.announce(change);
            Ok(())
        }
        Outcome::Refused(e) => Err(e),
    };
    let _ = job.reply.send(result);
}

/// What one write in a committed round did.
enum Outcome {
    /// It wrote: the change line to announce (`listener::payload_sql`).
    Written(String),
    /// It wrote nothing, for this reason (duplicate, mismatch, not found).
    Refused(StoreError),
}

/// Runs `writes` in one transaction, pipelined, and commits. `Err` means
/// nothing was committed (or, for `Unavailable`, that nobody can tell).
async fn commit(pool: &Pool, writes: &[&Write]) -> Result<Vec<Outcome>, StoreError> {
    let mut client = pool.get().await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL: {e}")))?;
    let (create, update) = statements(&client).await?;
    let transaction = client.transaction().await?;
    let runs = writes.iter().map(|write| async {
        match write {
            Write::Create(params) => {
                let row = transaction.query_opt(&create, &as_params(params)).await?;
                Ok(match row {
                    Some(row) => Outcome::Written(row.get(0)),
                    None => Outcome::Refused(StoreError::AlreadyExists),
                })
            }
            Write::Update(params) => {
                let row = transaction.query_one(&update, &as_params(params)).await?;
                Ok(match (row.get::<_, Option<String>>(0), row.get::<_, bool>(1)) {
                    (Some(change), _) => Outcome::Written(change),
                    (None, true) => Outcome::Refused(StoreError::VersionMismatch),
                    (None, false) => Outcome::Refused(StoreError::NotFound),
                })
            }
        }
    });
    let outcomes: Vec<Outcome> = join_all(runs).await.into_iter().collect::<Result<_, tokio_postgres::Error>>()?;
    transaction.commit().await?;
    Ok(outcomes)
}

/// The two prepared statements (cached per connection).
async fn statements(client: &deadpool_postgres::Object) -> Result<(Statement, Statement), StoreError> {
    static CREATE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH written AS (INSERT INTO operations ({OPERATION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
             ON CONFLICT (id) DO NOTHING RETURNING *), \
             {} SELECT {} FROM logged",
            listener::LOG_CHANGE,
            listener::payload_sql()
        )
    });
    static UPDATE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH written AS (UPDATE operations SET state = $2, percent_complete = $3, started_at = $4, \
             last_action_at = $5, finished_at = $6, resource_location = $7, details_location = $8, \
             properties = $9, error = $10, version = $11, expires_at = $12, script = $13, \
             script_due_at = $14, attempts = $15, lease_owner = $16, lease_expires_at = $17 \
             WHERE id = $1 AND version = $18 RETURNING *), \
             {} SELECT (SELECT {} FROM logged), EXISTS (SELECT 1 FROM operations WHERE id = $1)",
            listener::LOG_CHANGE,
            listener::payload_sql()
        )
    });
    let (create, update) = tokio::join!(client.prepare_cached(&CREATE), client.prepare_cached(&UPDATE));
    Ok((create?, update?))
}
