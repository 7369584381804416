//! Turns PostgreSQL `NOTIFY` messages into local change events, so a change
//! committed through any node reaches the listeners of this one, and this
//! node's hot-operation cache. Keeps one dedicated connection, and
//! reconnects by itself when the database returns; the cache serves nothing
//! while it is away, since notifications sent meanwhile are lost.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::model::{OperationId, Scope};
use crate::store::feed::{Change, LocalFeed};
use crate::store::hot::HotOperations;

/// The channel every node's notifier announces changes on.
pub const CHANNEL: &str = "longrun_changes";

/// Runs forever: listen, forward, and on any failure wait and listen again.
pub async fn run(config: tokio_postgres::Config, feed: LocalFeed, hot: Arc<HotOperations>) {
    loop {
        let outcome = listen_once(&config, &feed, &hot).await;
        hot.set_live(false);
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "PostgreSQL change listener lost its connection; reconnecting");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn listen_once(config: &tokio_postgres::Config, feed: &LocalFeed, hot: &HotOperations) -> anyhow::Result<()> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (messages, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the LISTEN below to complete, so it
    // is driven in its own task, which also hands over the notifications.
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if messages.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Every change committed from now on will be heard.
    hot.set_live(true);
    while let Some(payload) = incoming.recv().await {
        // One line per change: the notifier batches them.
        for line in payload.lines() {
            match parse(line) {
                Some(change) => {
                    hot.changed(change.id, change.version);
                    feed.publish(change);
                }
                None => tracing::warn!(line, "ignoring a malformed change notification"),
            }
        }
    }
    driver.await??;
    Ok(())
}

/// The CTE every operation write appends: logs the row `written` returned.
pub const LOG_CHANGE: &str = "logged AS (INSERT INTO changes (operation_id, scope, version, at) \
     SELECT id, scope, version, last_action_at FROM written RETURNING seq, operation_id, scope, version)";

/// What each write returns for the notifier to announce, one line per
/// change: `"{seq} {id} {version} {scope}"`.
pub fn payload_sql() -> &'static str {
    "seq::text || ' ' || operation_id::text || ' ' || version::text || ' ' || scope"
}

fn parse(payload: &str) -> Option<Change> {
    let mut parts = payload.splitn(4, ' ');
    // The row's `seq`, drawn before commit: not its log position, which is
    // given after commit (changes.rs). Listeners read positions from the log.
    let _seq: i64 = parts.next()?.parse().ok()?;
    let seq = 0;
    let id = OperationId::parse(parts.next()?)?;
    let version = parts.next()?.parse().ok()?;
    let scope = Scope::parse(parts.next()?).ok()?;
    Some(Change { seq, id, scope, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_writes_send() {
        let change = parse("42 fa067167-e49d-41bd-8dd8-de719b9de3b3 7 projects/p01").unwrap();
        assert_eq!(change.seq, 0, "no position yet");
        assert_eq!(change.version, 7);
        assert_eq!(change.scope.to_string(), "projects/p01");
        assert!(parse("nonsense").is_none());
    }
}
