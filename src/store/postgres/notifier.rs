//! Sends the change notifications of this node's writes, in batches, after
//! the writes committed.
//!
//! Why not `pg_notify` inside each write, as before: PostgreSQL serialises
//! the commits of every transaction that notifies (a database-wide lock from
//! queuing the notification to the end of the commit, fsync included), so
//! concurrent writes could not share a WAL flush and a node topped out near
//! 2,000 writes/s on a disk that takes 7,000+ plain INSERTs/s. A transaction
//! that only notifies writes no WAL and holds that lock for microseconds.
//!
//! What changes: a notification can now be lost if the node dies between a
//! write's commit and its notification (as it always could while a node's
//! listener was reconnecting). The change log is durable and ordered, and
//! every consumer treats a notification as "read the log": a lost one delays
//! a wake-up elsewhere (a long-poll then answers at its timeout with the
//! current state), it never loses a change.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::mpsc;

use super::listener::CHANNEL;

/// PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;
/// Longest a notification may take before it is given up (and logged).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The queue of this node's committed changes still to announce.
pub struct Notifier {
    queue: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Notifier {
    /// Starts the sending task, which takes its connections from `pool`.
    pub fn start(pool: Pool) -> Notifier {
        let (queue, pending) = mpsc::unbounded_channel();
        Notifier { queue, task: tokio::spawn(run(pool, pending)) }
    }

    /// Announces a committed change (a `listener::parse` line).
    pub fn announce(&self, line: String) {
        let _ = self.queue.send(line); // only fails once the store is dropped
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(pool: Pool, mut pending: mpsc::UnboundedReceiver<String>) {
    while let Some(first) = pending.recv().await {
        let mut batch = first;
        // Whatever else is queued goes in the same notification, up to the
        // payload limit; the rest in the next.
        while let Ok(line) = pending.try_recv() {
            if batch.len() + 1 + line.len() > MAX_PAYLOAD {
                send(&pool, std::mem::replace(&mut batch, line)).await;
            } else {
                batch.push('\n');
                batch.push_str(&line);
            }
        }
        send(&pool, batch).await;
    }
}

async fn send(pool: &Pool, payload: String) {
    let sent = tokio::time::timeout(SEND_TIMEOUT, async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let statement = client.prepare_cached("SELECT pg_notify($1, $2)").await.map_err(|e| e.to_string())?;
        client.execute(&statement, &[&CHANNEL, &payload]).await.map_err(|e| e.to_string())
    })
    .await;
    match sent {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot announce committed changes; other nodes learn of them late"),
        Err(_) => tracing::warn!("announcing committed changes timed out; other nodes learn of them late"),
    }
}
