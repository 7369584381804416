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
//! A round is two statements, whatever its size: one `INSERT … SELECT FROM
//! unnest(…)` for its creates and one `UPDATE … FROM unnest(…)` for its
//! updates, each with one array per column, sent pipelined on one
//! connection. PostgreSQL pays its per-statement costs (protocol, planning,
//! executor start, triggers) once per round instead of once per write.
//! Rows go in sorted by operation id, so that two rounds committing at once
//! (on two nodes) lock rows in the same order. An operation written twice in one round
//! (two PATCHes racing) is written by a second pair of statements, after
//! the first, in the order the writes came.
//!
//! How each write keeps its own outcome in a shared transaction: the
//! statements cannot fail on the outcomes callers expect, and say which
//! rows they wrote. A create that wrote nothing met an existing id
//! (`ON CONFLICT DO NOTHING`); an update that wrote nothing lost its
//! compare-and-swap, or found no row (one more query tells which). Any
//! other failure aborts the transaction: each write is then retried in a
//! transaction of its own, so one write the database refuses never fails
//! its neighbours, and a database that is away fails every caller at once
//! with `Unavailable` — including a COMMIT whose outcome is unknown, which
//! is never answered as a success.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use deadpool_postgres::Pool;
use futures_util::future::join_all;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Row, Statement};
use uuid::Uuid;

use super::listener;
use super::listener::CHANNEL;
use super::notifier;
use super::rows::{OPERATION_ARRAY_TYPES, OPERATION_COLUMNS, OperationColumns};
use crate::model::Operation;
use crate::store::StoreError;
use crate::store::hot::HotOperations;

/// Most writes committed in one transaction: bounds what one round adds
/// to the latency of the writes in it.
const MAX_BATCH: usize = 256;
/// Longest a round may take to commit; past it the outcome is unknown and
/// every write in it is answered `Unavailable` (HTTP 503), never a success.
const ROUND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Writes waiting for a round, beyond which callers wait to queue theirs.
const QUEUE: usize = 4096;

/// One operation write.
pub enum Write {
    /// Insert a new operation.
    Create(Operation),
    /// Replace an operation if its version is still the expected one.
    Update(Operation, i64),
}

impl Write {
    fn id(&self) -> Uuid {
        match self {
            Write::Create(op) | Write::Update(op, _) => op.id.uuid(),
        }
    }
}

struct Job {
    write: Write,
    /// Answered after the COMMIT that made the write durable, or with why not.
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The queue of operation writes and the task that commits them.
pub struct Batcher {
    queue: mpsc::Sender<Job>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Batcher {
    /// Starts the task that commits one round at a time, on a connection
    /// from `pool`. One: the writes that queue while a round commits make
    /// the next round bigger. Two rounds in flight (tried, with and without
    /// taking turns to run statements) cost PostgreSQL 10–40 % more CPU per
    /// write, in smaller rounds contending for the same index pages, and
    /// committed fewer writes per second at every concurrency measured.
    pub fn start(pool: Pool, hot: Arc<HotOperations>) -> Batcher {
        let (queue, pending) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(pool, pending, Committed { hot }));
        Batcher { queue, task }
    }

    /// Queues a write and waits until it committed (or failed). A caller
    /// that gives up waiting (its request timed out) does not withdraw the
    /// write: it may still commit.
    pub async fn write(&self, write: Write) -> Result<(), StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Job { write, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the PostgreSQL writer has stopped".into()))?;
        outcome.await.map_err(|_| StoreError::Unavailable("the PostgreSQL writer has stopped".into()))?
    }
}

/// Takes a round from the queue (whatever is waiting, up to `MAX_BATCH`),
/// commits it, answers it, and starts over.
async fn run(pool: Pool, mut pending: mpsc::Receiver<Job>, done: Committed) {
    loop {
        let mut round = Vec::new();
        if pending.recv_many(&mut round, MAX_BATCH).await == 0 {
            return; // every sender is gone
        }
        round.sort_by_key(|job| job.write.id()); // stable: two writes on one operation keep their order
        commit_round(&pool, round, &done).await;
    }
}

/// Commits `round` and answers every job in it.
async fn commit_round(pool: &Pool, round: Vec<Job>, done: &Committed) {
    let writes: Vec<&Write> = round.iter().map(|job| &job.write).collect();
    match commit(pool, &writes).await {
        Ok(outcomes) => {
            for (job, outcome) in round.into_iter().zip(outcomes) {
                answer(job, outcome, done);
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
                    Ok(outcome) => answer(job, outcome, done),
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

/// Where a committed write goes before its caller hears of it.
struct Committed {
    /// Serves it from this node at once.
    hot: Arc<HotOperations>,
}

/// Sends a committed write's outcome, once the change it made is in this
/// node's cache (and, announced by `commit`, on its way to the others).
fn answer(job: Job, outcome: Outcome, done: &Committed) {
    let result = match outcome {
        Outcome::Written(_) => {
            let (Write::Create(op) | Write::Update(op, _)) = &job.write;
            done.hot.committed(op);
            Ok(())
        }
        Outcome::Refused(e) => {
            // What this node has cached lost to a write elsewhere (or was
            // purged): the caller's retry must read the database.
            if let Write::Update(op, _) = &job.write {
                done.hot.changed(op.id, i64::MAX);
            }
            Err(e)
        }
    };
    let _ = job.reply.send(result);
}

/// What one write in a committed round did.
enum Outcome {
    /// It wrote: the change line announced (`listener::payload_sql`).
    Written(String),
    /// It wrote nothing, for this reason (duplicate, mismatch, not found).
    Refused(StoreError),
}

/// Runs `writes` in one transaction, commits, and announces what
/// committed. Two round trips: BEGIN and every statement go out together;
/// once their answers are in, COMMIT and the notifications. `Err` means
/// nothing was committed (or, for `Unavailable`, that nobody can tell).
async fn commit(pool: &Pool, writes: &[&Write]) -> Result<Vec<Outcome>, StoreError> {
    let client = pool.get().await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL: {e}")))?;
    match tokio::time::timeout(ROUND_TIMEOUT, commit_on(&client, writes)).await {
        Ok(Ok(outcomes)) => Ok(outcomes),
        failed => {
            // The connection may be inside the round's transaction (aborted,
            // or still waiting): it never goes back to the pool.
            drop(deadpool_postgres::Object::take(client));
            failed.unwrap_or_else(|_| {
                Err(StoreError::Unavailable("PostgreSQL did not commit in time; the outcome is unknown".into()))
            })
        }
    }
}

/// `commit` on one connection.
async fn commit_on(client: &deadpool_postgres::Object, writes: &[&Write]) -> Result<Vec<Outcome>, StoreError> {
    let (create, update, notify) = statements(client).await?;
    let rounds: Vec<(OperationColumns, OperationColumns)> = layers(writes)
        .iter()
        .map(|layer| {
            let (mut creates, mut updates) = (OperationColumns::default(), OperationColumns::default());
            for &index in layer {
                match writes[index] {
                    Write::Create(op) => creates.push(op, op.version),
                    Write::Update(op, expected) => updates.push(op, *expected),
                }
            }
            (creates, updates)
        })
        .collect();
    let runs = rounds.iter().flat_map(|(creates, updates)| {
        [(&create, creates, creates.all()), (&update, updates, updates.with_expected_versions())]
    });
    let runs = runs.filter(|(_, rows, _)| !rows.is_empty()).map(|(statement, _, params)| async {
        let params = params; // owned by the future: the statement's parameters
        client.query(statement, &params).await
    });
    let (began, ran) = tokio::join!(client.batch_execute("BEGIN"), join_all(runs));
    let answered = began.and_then(|()| ran.into_iter().collect::<Result<Vec<Vec<Row>>, _>>());
    let answered = answered?;
    let mut changes: HashMap<Uuid, Result<String, bool>> = HashMap::new();
    let mut outcomes: Vec<Option<Outcome>> = writes.iter().map(|_| None).collect();
    for (layer, rows) in layers(writes).into_iter().zip(statement_rows(&rounds, answered)) {
        changes.clear();
        for row in rows {
            // (id, change line) when written; (id, NULL, exists) when not.
            let change: Option<String> = row.get(1);
            let exists = row.len() > 2 && row.get::<_, bool>(2);
            changes.insert(row.get(0), change.ok_or(exists));
        }
        for index in layer {
            let write = writes[index];
            outcomes[index] = Some(match (changes.get(&write.id()), write) {
                (Some(Ok(change)), _) => Outcome::Written(change.clone()),
                (_, Write::Create(_)) => Outcome::Refused(StoreError::AlreadyExists),
                (Some(Err(true)), Write::Update(..)) => Outcome::Refused(StoreError::VersionMismatch),
                (_, Write::Update(..)) => Outcome::Refused(StoreError::NotFound),
            });
        }
    }
    let lines: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| match o {
            Some(Outcome::Written(change)) => Some(change.as_str()),
            _ => None,
        })
        .collect();
    let payloads = notifier::payloads(&lines);
    // Sent behind the COMMIT on the same connection: each runs after it, in
    // a transaction of its own that writes no WAL.
    let notify = &notify;
    let notifications =
        join_all(payloads.iter().map(|payload| async move { client.execute(notify, &[&CHANNEL, payload]).await }));
    let (committed, notified) = tokio::join!(client.batch_execute("COMMIT"), notifications);
    committed?;
    if let Some(Err(e)) = notified.into_iter().find(Result::is_err) {
        tracing::warn!(error = %e, "cannot announce committed changes; other nodes learn of them late");
    }
    Ok(outcomes.into_iter().map(|o| o.expect("every write is in a layer")).collect())
}

/// The answer rows of each layer, from the answers of the statements sent
/// (a layer's create and update statements, the empty ones not sent).
fn statement_rows(rounds: &[(OperationColumns, OperationColumns)], answered: Vec<Vec<Row>>) -> Vec<Vec<Row>> {
    let mut answered = answered.into_iter();
    rounds
        .iter()
        .map(|(creates, updates)| {
            let mut rows = Vec::new();
            for sent in [creates, updates] {
                if !sent.is_empty() {
                    rows.extend(answered.next().expect("an answer per statement sent"));
                }
            }
            rows
        })
        .collect()
}

/// Splits a round (sorted by id) into layers in which each operation
/// appears at most once: the first write of every operation, then the
/// second, and so on. Indexes into `writes`.
fn layers(writes: &[&Write]) -> Vec<Vec<usize>> {
    let mut layers: Vec<Vec<usize>> = Vec::new();
    let mut depth = 0;
    for (index, write) in writes.iter().enumerate() {
        depth = if index > 0 && writes[index - 1].id() == write.id() { depth + 1 } else { 0 };
        if layers.len() <= depth {
            layers.push(Vec::new());
        }
        layers[depth].push(index);
    }
    layers
}

/// The prepared statements (cached per connection).
async fn statements(client: &deadpool_postgres::Object) -> Result<(Statement, Statement, Statement), StoreError> {
    let (create, update, notify) = tokio::join!(
        client.prepare_cached(&CREATE),
        client.prepare_cached(&UPDATE),
        client.prepare_cached("SELECT pg_notify($1, $2)")
    );
    Ok((create?, update?, notify?))
}

/// The rows of a round's statement: one array per column, unnested.
fn input(extra: &str) -> String {
    let arrays: Vec<String> =
        OPERATION_ARRAY_TYPES.iter().enumerate().map(|(i, ty)| format!("${}::{ty}", i + 1)).collect();
    format!("input AS (SELECT * FROM unnest({}{extra}) AS i({OPERATION_COLUMNS}", arrays.join(", "))
}

/// Inserts a round's new operations, skipping ids that exist.
static CREATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {})), \
         written AS (INSERT INTO operations ({OPERATION_COLUMNS}) SELECT {OPERATION_COLUMNS} FROM input \
         ON CONFLICT (id) DO NOTHING RETURNING *), \
         {} SELECT operation_id, {} FROM logged",
        input(""),
        listener::LOG_CHANGE,
        listener::payload_sql()
    )
});

/// Replaces a round's operations whose version is still the expected one,
/// and counts the ones whose state moved (`operation_count_deltas`): the
/// states before are read in the statement's snapshot, which is what the
/// rows written held, since a row written concurrently fails the version
/// check. Cheaper than an update trigger, which would keep every old and
/// new row of the round to compare them.
static UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {}, expected_version)), \
         before AS (SELECT o.id, o.state, o.kind FROM operations AS o JOIN input AS i \
         ON o.id = i.id AND o.version = i.expected_version), \
         written AS (UPDATE operations AS o SET state = i.state, percent_complete = i.percent_complete, \
         started_at = i.started_at, last_action_at = i.last_action_at, finished_at = i.finished_at, \
         resource_location = i.resource_location, details_location = i.details_location, \
         properties = i.properties, error = i.error, version = i.version, expires_at = i.expires_at, \
         script = i.script, script_due_at = i.script_due_at, attempts = i.attempts, \
         lease_owner = i.lease_owner, lease_expires_at = i.lease_expires_at \
         FROM input AS i WHERE o.id = i.id AND o.version = i.expected_version RETURNING o.*), \
         moved AS (SELECT before.state AS was, after.state AS now, after.kind FROM before JOIN written AS after \
         USING (id) WHERE before.state <> after.state), \
         counted AS (INSERT INTO operation_count_deltas (state, kind, n) SELECT state, kind, sum(n) FROM \
         (SELECT was AS state, kind, -1 AS n FROM moved UNION ALL SELECT now, kind, 1 FROM moved) AS delta \
         GROUP BY state, kind), \
         {} SELECT operation_id, {}, true FROM logged \
         UNION ALL SELECT i.id, NULL, EXISTS (SELECT 1 FROM operations AS o WHERE o.id = i.id) \
         FROM input AS i WHERE i.id NOT IN (SELECT id FROM written)",
        input(", $23::int8[]"),
        listener::LOG_CHANGE,
        listener::payload_sql()
    )
});
