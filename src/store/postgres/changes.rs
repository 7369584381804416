//! The change log's positions on PostgreSQL: what `GET /v1/events`
//! resumes from (`Last-Event-ID`) and what the webhook cursor counts.
//!
//! Why positions are not the `seq` a write takes: `seq` (bigserial) is
//! drawn inside the writing transaction, before it commits, so two writers
//! can draw 10 and 11 and commit 11 first. A reader that saw 11 and resumes
//! "after 11" would never see 10. So a row gets its position only after it
//! committed: `longrun_place_changes()` (migration 10) numbers every
//! committed, unplaced row in `seq` order under a transaction-level advisory
//! lock, and readers read by position. Placers run one at a time and each
//! commits before the next starts, so once a reader sees position P, every
//! position below P is visible too; a row that commits later is placed
//! later, above everything already read. Exactly once, in order, for every
//! reader, on every node.
//!
//! Why this rather than the alternatives: a lock held from the `seq` draw
//! to the commit would serialise every write including its WAL flush;
//! ordering by transaction id under the `xmin` horizon needs a two-part
//! position and stalls behind any long writing transaction in the
//! database (and transaction ids do not survive a dump and restore); a
//! settle delay is only usually right. Here writes stay as concurrent as
//! before and pay nothing; the lock is held by readers, for one short
//! `UPDATE` that places every row that committed meanwhile (usually a
//! handful; none, and no lock at all, when nothing is waiting).

use crate::store::StoreError;

/// Places every committed change that has no position yet.
pub(super) async fn place(client: &tokio_postgres::Client) -> Result<(), StoreError> {
    client.execute("SELECT longrun_place_changes()", &[]).await?;
    Ok(())
}

/// The placed changes after `after`, oldest first.
pub(super) const SINCE: &str = "SELECT position, operation_id::text, scope, version FROM changes \
     WHERE position > $1 AND ($2::text IS NULL OR scope = $2) ORDER BY position LIMIT $3";

/// The newest position (0 for an empty log).
pub(super) const LATEST: &str = "SELECT max(position) FROM changes";

/// Deletes the changes written before `$1`: every row before the oldest
/// one written since, walking the primary key from the start (rows are
/// written in about `seq` order, so this reads little beyond what it
/// deletes; a row whose clock ran behind goes with its neighbours).
pub(super) const PURGE: &str = "DELETE FROM changes WHERE seq < coalesce(\
     (SELECT seq FROM changes WHERE at >= $1 ORDER BY seq LIMIT 1), 9223372036854775807)";
