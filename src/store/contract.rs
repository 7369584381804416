//! The behaviour every `Store` backend must show, as one suite each backend's
//! tests call (`contract::run(&store)`). A new backend is done when this passes.

use std::sync::Arc;

use uuid::Uuid;

use super::feed::Change;
use super::{ListFilter, Store, StoreError};
use crate::model::{
    ApiKey, Applied, KeyScope, Kind, NewOperation, Operation, OperationId, Role, Scope, State, Timestamp,
};

/// A NotStarted operation in `scope` with a fresh id.
pub fn sample_operation(scope: &str) -> Operation {
    let request = NewOperation {
        scope: Scope::parse(scope).unwrap(),
        kind: Kind::parse("deleteDevBox").unwrap(),
        resource_location: Some("/boxes/1".into()),
        details_location: None,
        properties: serde_json::json!({"region": "westus"}).as_object().cloned(),
        script: None,
    };
    let now = Timestamp::from_unix_nanos(1_700_000_000_000_000_000);
    let mut op = Operation::new(OperationId::from_uuid(Uuid::now_v7()), request, now);
    op.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    op
}

/// Runs every contract check against `store`.
pub async fn run(store: Arc<dyn Store>) {
    create_then_get_returns_the_same_record(store.as_ref()).await;
    creating_an_existing_id_is_refused(store.as_ref()).await;
    updates_are_compare_and_swap(store.as_ref()).await;
    racing_updates_of_one_version_have_exactly_one_winner(store.clone()).await;
    writes_committed_together_keep_their_own_outcomes(store.as_ref()).await;
    list_filters_and_pages_newest_first(store.as_ref()).await;
    purge_removes_only_expired_operations(store.as_ref()).await;
    deleting_takes_only_a_finished_operation_and_leaves_a_tombstone(store.as_ref()).await;
    committed_changes_reach_the_feed(store.as_ref()).await;
    due_script_steps_are_found_and_advance(store.as_ref()).await;
    repeatable_requests_start_once_and_replay(store.as_ref()).await;
    the_change_log_matches_the_feed(store.as_ref()).await;
    the_webhook_outbox_moves_once(store.as_ref()).await;
    keys_are_found_by_hash(store.as_ref()).await;
    counts_follow_every_write(store.as_ref()).await;
    key_use_only_moves_forward(store.as_ref()).await;
    the_change_log_forgets_changes_older_than_its_horizon(store.as_ref()).await;
}

async fn key_use_only_moves_forward(store: &dyn Store) {
    let key = ApiKey {
        id: format!("k{}", Uuid::now_v7().simple()),
        hash: format!("{:064x}", Uuid::now_v7().as_u128()),
        scope: KeyScope::All,
        role: Role::Read,
        name: None,
        created_at: Timestamp::from_unix_nanos(1),
        revoked_at: None,
    };
    store.create_key(&key).await.unwrap();
    let (early, late) = (Timestamp::from_unix_nanos(1_000), Timestamp::from_unix_nanos(2_000));
    let used_at = async || store.keys_last_used().await.unwrap().into_iter().find(|(id, _)| *id == key.id);
    assert_eq!(used_at().await, None, "never used");
    store.touch_keys(&[(key.id.clone(), late)]).await.unwrap();
    store.touch_keys(&[(key.id.clone(), early), ("key_unknown".into(), late)]).await.unwrap();
    assert_eq!(used_at().await, Some((key.id.clone(), late)), "an older batch never moves it back");
}

async fn counts_follow_every_write(store: &dyn Store) {
    const KIND: &str = "countedKind";
    let count = async |state: State| {
        let counts = store.count_operations().await.unwrap();
        counts.iter().find(|c| c.kind == KIND && c.state == state.as_str()).map_or(0, |c| c.count)
    };
    let mut ops = Vec::new();
    for _ in 0..3 {
        let mut op = sample_operation("projects/contract-counts");
        op.kind = Kind::parse(KIND).unwrap();
        store.create_operation(&op).await.unwrap();
        ops.push(op);
    }
    assert_eq!(count(State::NotStarted).await, 3);
    let running = advance(&ops[0], State::Running, ops[0].created_at);
    store.update_operation(&running, 1).await.unwrap();
    let mut progressed = running.clone();
    progressed.percent_complete = Some(50.0);
    progressed.version += 1;
    store.update_operation(&progressed, running.version).await.unwrap();
    let done = advance(&ops[1], State::Succeeded, ops[1].created_at);
    store.update_operation(&done, 1).await.unwrap();
    assert_eq!((count(State::NotStarted).await, count(State::Running).await, count(State::Succeeded).await), (1, 1, 1));

    let after = done.expires_at.unwrap().plus(std::time::Duration::from_nanos(100));
    store.purge_expired(after, after, 10_000).await.unwrap();
    assert_eq!(count(State::Succeeded).await, 0, "purged operations leave the counts");
    assert_eq!((count(State::NotStarted).await, count(State::Running).await), (1, 1));
}

fn advance(op: &Operation, state: State, at: Timestamp) -> Operation {
    let changes = crate::model::Changes { state, ..op.changes() };
    match op.apply(changes, at, &crate::model::Retention::uniform(std::time::Duration::from_secs(86_400))) {
        Ok(Applied::Changed(next)) => *next,
        other => panic!("{} -> {state} must be allowed: {other:?}", op.state),
    }
}

/// Writes issued at once, which a backend may commit in one round, each
/// get the outcome they would get alone: a new id is created, a taken one
/// refused; an update of the current version lands, of a stale one is a
/// mismatch, of a missing operation is not found; two updates of one
/// version in the same round have one winner, and the second write of an
/// operation created in the same round sees the first.
async fn writes_committed_together_keep_their_own_outcomes(store: &dyn Store) {
    let (existing, current, stale) =
        (sample_operation("projects/round"), sample_operation("projects/round"), sample_operation("projects/round"));
    for op in [&existing, &current, &stale] {
        store.create_operation(op).await.unwrap();
    }
    let fresh = sample_operation("projects/round");
    let raced = sample_operation("projects/round");
    store.create_operation(&raced).await.unwrap();
    let missing = sample_operation("projects/round");
    let running = |op: &Operation| advance(op, State::Running, op.created_at);
    let (fresh_running, raced_a) = (running(&fresh), running(&raced));
    let raced_b = Operation { percent_complete: Some(50.0), ..running(&raced) };
    let (current_running, stale_running, missing_running) = (running(&current), running(&stale), running(&missing));
    let outcomes = futures_util::future::join_all([
        Box::pin(store.create_operation(&fresh)) as std::pin::Pin<Box<dyn Future<Output = _> + Send>>,
        Box::pin(store.create_operation(&existing)),
        Box::pin(store.update_operation(&current_running, current.version)),
        Box::pin(store.update_operation(&stale_running, stale.version + 1)),
        Box::pin(store.update_operation(&missing_running, 1)),
        Box::pin(store.update_operation(&raced_a, raced.version)),
        Box::pin(store.update_operation(&raced_b, raced.version)),
        Box::pin(store.update_operation(&fresh_running, fresh.version)),
    ])
    .await;
    let said = |i: usize| outcomes[i].as_ref().map_err(|e| e.to_string()).err();
    assert_eq!(said(0), None, "a new id is created");
    assert!(matches!(outcomes[1], Err(StoreError::AlreadyExists)), "a taken id: {:?}", said(1));
    assert_eq!(said(2), None, "the current version is replaced");
    assert!(matches!(outcomes[3], Err(StoreError::VersionMismatch)), "a stale version: {:?}", said(3));
    assert!(matches!(outcomes[4], Err(StoreError::NotFound)), "no such operation: {:?}", said(4));
    let raced_winners = [5, 6].iter().filter(|&&i| outcomes[i].is_ok()).count();
    assert_eq!(raced_winners, 1, "one winner of a race: {:?} {:?}", said(5), said(6));
    assert!([5, 6].iter().any(|&i| matches!(outcomes[i], Err(StoreError::VersionMismatch))));
    // Queued after the create of the same id: it either follows it (lands)
    // or came first (not found); never anything else.
    assert!(matches!(outcomes[7], Ok(()) | Err(StoreError::NotFound)), "{:?}", said(7));
    let stored = async |op: &Operation| store.get_operation(op.id).await.unwrap().map(|o| (o.state, o.version));
    assert_eq!(stored(&current).await, Some((State::Running, 2)));
    assert_eq!(stored(&stale).await, Some((State::NotStarted, 1)));
    assert_eq!(stored(&missing).await, None);
    assert_eq!(stored(&raced).await, Some((State::Running, 2)));
    let fresh_now = stored(&fresh).await;
    assert!(fresh_now == Some((State::NotStarted, 1)) || fresh_now == Some((State::Running, 2)), "{fresh_now:?}");
}

async fn racing_updates_of_one_version_have_exactly_one_winner(store: Arc<dyn Store>) {
    let op = sample_operation("projects/contract-race");
    store.create_operation(&op).await.unwrap();
    let mut racers = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let mut next = advance(&op, State::Running, op.created_at);
        next.percent_complete = Some(f64::from(i));
        racers.push(tokio::spawn(async move { store.update_operation(&next, 1).await }));
    }
    let mut winners = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(()) => winners += 1,
            Err(StoreError::VersionMismatch) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(store.get_operation(op.id).await.unwrap().unwrap().version, 2);
}

async fn purge_removes_only_expired_operations(store: &dyn Store) {
    let open = sample_operation("projects/contract-purge");
    let done = sample_operation("projects/contract-purge");
    store.create_operation(&open).await.unwrap();
    store.create_operation(&done).await.unwrap();
    let finished = advance(&done, State::Succeeded, done.created_at);
    store.update_operation(&finished, done.version).await.unwrap();
    let expiry = finished.expires_at.expect("terminal operations expire");

    // Other suites' rows may expire too; count only ours.
    let forget_at = expiry.plus(std::time::Duration::from_secs(3600));
    store.purge_expired(expiry, forget_at, 10_000).await.unwrap();
    assert!(store.get_operation(done.id).await.unwrap().is_some(), "not before its expiry");
    assert_eq!(store.find_tombstone(done.id).await.unwrap(), None);
    let after = expiry.plus(std::time::Duration::from_nanos(100));
    let purged = store.purge_expired(after, forget_at, 10_000).await.unwrap();
    assert!(purged >= 1);
    assert_eq!(store.get_operation(done.id).await.unwrap(), None);
    assert!(store.get_operation(open.id).await.unwrap().is_some(), "open operations never expire");
    assert_eq!(store.find_tombstone(done.id).await.unwrap(), Some((done.scope.clone(), done.kind.clone())));
    // The tombstone itself goes once its time is up.
    store.purge_expired(forget_at.plus(std::time::Duration::from_nanos(100)), forget_at, 10_000).await.unwrap();
    assert_eq!(store.find_tombstone(done.id).await.unwrap(), None);
}

async fn deleting_takes_only_a_finished_operation_and_leaves_a_tombstone(store: &dyn Store) {
    let open = sample_operation("projects/contract-delete");
    let done = sample_operation("projects/contract-delete");
    store.create_operation(&open).await.unwrap();
    store.create_operation(&done).await.unwrap();
    let finished = advance(&done, State::Canceled, done.created_at);
    store.update_operation(&finished, done.version).await.unwrap();
    let forget_at = finished.created_at.plus(std::time::Duration::from_secs(3600));

    assert!(matches!(store.delete_finished(open.id, forget_at).await, Err(StoreError::NotFound)));
    assert!(store.get_operation(open.id).await.unwrap().is_some(), "an open operation stays");
    store.delete_finished(done.id, forget_at).await.unwrap();
    assert_eq!(store.get_operation(done.id).await.unwrap(), None, "gone at once, cache included");
    assert_eq!(store.find_tombstone(done.id).await.unwrap(), Some((done.scope.clone(), done.kind.clone())));
    assert!(matches!(store.delete_finished(done.id, forget_at).await, Err(StoreError::NotFound)));
    let unknown = OperationId::from_uuid(Uuid::now_v7());
    assert!(matches!(store.delete_finished(unknown, forget_at).await, Err(StoreError::NotFound)));
}

async fn committed_changes_reach_the_feed(store: &dyn Store) {
    let mut feed = store.feed().subscribe();
    let op = sample_operation("projects/contract-feed");
    store.create_operation(&op).await.unwrap();
    let running = advance(&op, State::Running, op.created_at);
    store.update_operation(&running, op.version).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let change = tokio::time::timeout(std::time::Duration::from_secs(5), feed.recv())
            .await
            .expect("a change within 5 s")
            .expect("feed open");
        if change.id == op.id {
            assert_eq!(change.scope, op.scope);
            seen.push(change.version);
        }
    }
    assert_eq!(seen, vec![1, 2]);
    // A refused write announces nothing.
    assert!(store.update_operation(&running, op.version).await.is_err());
}

async fn create_then_get_returns_the_same_record(store: &dyn Store) {
    let op = sample_operation("projects/contract-get");
    store.create_operation(&op).await.unwrap();
    assert_eq!(store.get_operation(op.id).await.unwrap().as_deref(), Some(&op));
    let unknown = OperationId::from_uuid(Uuid::now_v7());
    assert_eq!(store.get_operation(unknown).await.unwrap(), None);
}

async fn creating_an_existing_id_is_refused(store: &dyn Store) {
    let op = sample_operation("projects/contract-dup");
    store.create_operation(&op).await.unwrap();
    let again = store.create_operation(&op).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists)), "{again:?}");
}

async fn updates_are_compare_and_swap(store: &dyn Store) {
    let op = sample_operation("projects/contract-cas");
    store.create_operation(&op).await.unwrap();
    let mut running = advance(&op, State::Running, op.created_at);
    running.percent_complete = Some(10.0);
    store.update_operation(&running, op.version).await.unwrap();
    assert_eq!(store.get_operation(op.id).await.unwrap().as_deref(), Some(&running));

    // A second writer that read version 1 loses.
    let stale = store.update_operation(&running, op.version).await;
    assert!(matches!(stale, Err(StoreError::VersionMismatch)), "{stale:?}");
    let missing = sample_operation("projects/contract-cas");
    let gone = store.update_operation(&missing, 1).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
}

async fn list_filters_and_pages_newest_first(store: &dyn Store) {
    let scope = Scope::parse("projects/contract-list").unwrap();
    let mut created = Vec::new();
    for i in 0..5 {
        let mut op = sample_operation("projects/contract-list");
        op.created_at = Timestamp::from_unix_nanos(1_800_000_000_000_000_000 + i * 1_000_000);
        store.create_operation(&op).await.unwrap();
        created.push(op);
    }
    store.create_operation(&sample_operation("projects/contract-other")).await.unwrap();

    let mut filter = ListFilter { scope: Some(scope.clone()), limit: 2, ..ListFilter::default() };
    let mut seen = Vec::new();
    loop {
        let page = store.list_operations(&filter).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        filter.after = Some((last.created_at, last.id));
        // An insert between pages (newer than everything) must not shift pages.
        if seen.is_empty() {
            let mut newer = sample_operation("projects/contract-list");
            newer.created_at = Timestamp::from_unix_nanos(1_900_000_000_000_000_000);
            store.create_operation(&newer).await.unwrap();
        }
        seen.extend(page.into_iter().map(|op| op.id));
    }
    let expected: Vec<OperationId> = created.iter().rev().map(|op| op.id).collect();
    assert_eq!(seen, expected);

    // Created in [created[1], created[4]): the middle three, newest first.
    let between = ListFilter {
        scope: Some(scope.clone()),
        created_from: Some(created[1].created_at),
        created_before: Some(created[4].created_at),
        limit: 10,
        ..ListFilter::default()
    };
    let found: Vec<OperationId> = store.list_operations(&between).await.unwrap().iter().map(|op| op.id).collect();
    assert_eq!(found, vec![created[3].id, created[2].id, created[1].id]);

    let by_state =
        ListFilter { scope: Some(scope.clone()), state: Some(State::Running), limit: 10, ..ListFilter::default() };
    assert!(store.list_operations(&by_state).await.unwrap().is_empty());
    let by_kind = ListFilter {
        scope: Some(scope),
        kind: Some(Kind::parse("other").unwrap()),
        limit: 10,
        ..ListFilter::default()
    };
    assert!(store.list_operations(&by_kind).await.unwrap().is_empty());
}

async fn keys_are_found_by_hash(store: &dyn Store) {
    let key = ApiKey {
        id: format!("k{}", Uuid::now_v7().simple()),
        hash: format!("{:064x}", Uuid::now_v7().as_u128()),
        scope: KeyScope::All,
        role: Role::Admin,
        name: Some("contract".into()),
        created_at: Timestamp::from_unix_nanos(1_000),
        revoked_at: None,
    };
    store.create_key(&key).await.unwrap();
    assert_eq!(store.find_key_by_hash(&key.hash).await.unwrap(), Some(key.clone()));
    assert_eq!(store.find_key_by_hash("nope").await.unwrap(), None);
    assert!(store.list_keys().await.unwrap().contains(&key));
    assert!(matches!(store.create_key(&key).await, Err(StoreError::AlreadyExists)));
    let at = Timestamp::from_unix_nanos(2_000);
    store.revoke_key(&key.id, at).await.unwrap();
    assert_eq!(store.find_key_by_hash(&key.hash).await.unwrap().unwrap().revoked_at, Some(at));
    assert!(matches!(store.revoke_key("key_nope", at).await, Err(StoreError::NotFound)));
}

async fn due_script_steps_are_found_and_advance(store: &dyn Store) {
    use crate::model::ScriptStep;
    let mut op = sample_operation("projects/contract-script");
    let step = |secs: u64, state: State| ScriptStep {
        after: std::time::Duration::from_secs(secs),
        state,
        percent_complete: None,
        resource_location: None,
        error: None,
    };
    op.script =
        Some(crate::model::Script { steps: vec![step(10, State::Running), step(20, State::Succeeded)], next: 0 });
    store.create_operation(&op).await.unwrap();
    let due = |op: &Operation| op.script_due_at().unwrap();
    let mine = |ops: Vec<Operation>| ops.into_iter().filter(|o| o.id == op.id).collect::<Vec<_>>();

    let before = Timestamp::from_unix_nanos(due(&op).unix_nanos() - 1);
    assert!(mine(store.due_scripts(before, 10_000).await.unwrap()).is_empty(), "not yet due");
    let found = mine(store.due_scripts(due(&op), 10_000).await.unwrap());
    assert_eq!(found, vec![op.clone()]);

    let running = op
        .run_script_step(due(&op), &crate::model::Retention::uniform(std::time::Duration::from_secs(86_400)))
        .unwrap();
    store.update_operation(&running, op.version).await.unwrap();
    assert_eq!(store.get_operation(op.id).await.unwrap().as_deref(), Some(&running));
    assert!(mine(store.due_scripts(due(&op), 10_000).await.unwrap()).is_empty(), "the first step is done");
    let finished = running
        .run_script_step(due(&running), &crate::model::Retention::uniform(std::time::Duration::from_secs(86_400)))
        .unwrap();
    store.update_operation(&finished, running.version).await.unwrap();
    assert_eq!(finished.state, State::Succeeded);
    let far_future = Timestamp::from_unix_nanos(i64::MAX);
    assert!(mine(store.due_scripts(far_future, 10_000).await.unwrap()).is_empty(), "a finished script is never due");
}

async fn repeatable_requests_start_once_and_replay(store: &dyn Store) {
    use super::{RepeatBegin, StoredResponse};
    let key = format!("contract:{}", Uuid::now_v7());
    let at = |s: i64| Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + s * 1_000_000_000);
    let begin = |fingerprint: &'static str, now: i64| {
        let key = key.clone();
        async move { store.begin_repeatable(&key, fingerprint, at(now), at(now - 60), at(now + 600)).await.unwrap() }
    };
    assert_eq!(begin("f1", 0).await, RepeatBegin::Started);
    assert_eq!(begin("f1", 1).await, RepeatBegin::InFlight { fingerprint: "f1".into() });
    // A pending attempt older than the stale mark is taken over.
    assert_eq!(begin("f1", 120).await, RepeatBegin::Started);
    store.abandon_repeatable(&key).await.unwrap();
    assert_eq!(begin("f2", 121).await, RepeatBegin::Started, "abandoned: a fresh start");
    let response = StoredResponse { status: 201, headers: vec![("etag".into(), "\"1\"".into())], body: "{}".into() };
    store.finish_repeatable(&key, &response).await.unwrap();
    assert_eq!(begin("f2", 500).await, RepeatBegin::Replay { fingerprint: "f2".into(), response: response.clone() });
    store.abandon_repeatable(&key).await.unwrap();
    assert!(matches!(begin("f2", 501).await, RepeatBegin::Replay { .. }), "a finished record is never abandoned");
    // Purged with its window.
    store.purge_expired(at(10_000), at(10_000), 10).await.unwrap();
    assert_eq!(begin("f3", 10_001).await, RepeatBegin::Started);
}

async fn the_change_log_matches_the_feed(store: &dyn Store) {
    let scope = Scope::parse(&format!("projects/log-{}", Uuid::now_v7().simple())).unwrap();
    let mut feed = store.feed().subscribe();
    let op = sample_operation(&scope.to_string());
    store.create_operation(&op).await.unwrap();
    let running = advance(&op, State::Running, op.created_at);
    store.update_operation(&running, op.version).await.unwrap();
    let logged = store.changes_since(Some(&scope), 0, 100).await.unwrap();
    assert_eq!(logged.iter().map(|c| (c.id, c.version)).collect::<Vec<_>>(), vec![(op.id, 1), (op.id, 2)]);
    assert!(logged[0].seq < logged[1].seq);
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let change = tokio::time::timeout(std::time::Duration::from_secs(5), feed.recv()).await.unwrap().unwrap();
        if change.scope == scope {
            heard.push(change);
        }
    }
    let what = |changes: &[Change]| changes.iter().map(|c| (c.id, c.scope.clone(), c.version)).collect::<Vec<_>>();
    assert_eq!(what(&heard), what(&logged), "the feed announces exactly what the log holds");
    let after_first = store.changes_since(Some(&scope), logged[0].seq, 100).await.unwrap();
    assert_eq!(after_first, logged[1..]);
}

/// Last: its purge runs two days past every other check's clock.
async fn the_change_log_forgets_changes_older_than_its_horizon(store: &dyn Store) {
    let scope = Scope::parse(&format!("projects/log-purge-{}", Uuid::now_v7().simple())).unwrap();
    let op = sample_operation(&scope.to_string());
    store.create_operation(&op).await.unwrap();
    let later = op.created_at.plus(2 * super::CHANGE_LOG_KEEP);
    let running = advance(&op, State::Running, later);
    store.update_operation(&running, op.version).await.unwrap();
    let before = store.changes_since(Some(&scope), 0, 100).await.unwrap();
    assert_eq!(before.iter().map(|c| c.version).collect::<Vec<_>>(), vec![1, 2]);

    let now = later.plus(std::time::Duration::from_secs(3600));
    store.purge_expired(now, now, 10_000).await.unwrap();
    let after = store.changes_since(Some(&scope), 0, 100).await.unwrap();
    assert_eq!(after, before[1..], "the change older than the horizon goes, the newer one stays");
    assert!(store.latest_change_seq().await.unwrap() >= before[1].seq);
}

async fn the_webhook_outbox_moves_once(store: &dyn Store) {
    use crate::model::{Delivery, DeliveryState, Webhook};
    let hook = Webhook {
        id: format!("wh_{}", Uuid::now_v7().simple()),
        scope: None,
        url: "http://127.0.0.1:9/hook".into(),
        secret: "s".into(),
        all_changes: true,
        start_seq: 0,
        created_at: Timestamp::from_unix_nanos(1_000),
    };
    store.create_webhook(&hook).await.unwrap();
    assert!(store.list_webhooks().await.unwrap().contains(&hook));
    let at = Timestamp::from_unix_nanos(5_000);
    let delivery = Delivery {
        id: format!("dlv_{}", Uuid::now_v7().simple()),
        webhook_id: hook.id.clone(),
        operation_id: OperationId::from_uuid(Uuid::now_v7()),
        version: 1,
        seq: 1,
        attempts: 0,
        next_at: at,
        state: DeliveryState::Pending,
        last_status: None,
        last_error: None,
        created_at: at,
    };
    let cursor = store.webhook_cursor().await.unwrap();
    assert!(store.enqueue_deliveries(cursor, cursor + 1, std::slice::from_ref(&delivery)).await.unwrap());
    assert!(
        !store.enqueue_deliveries(cursor, cursor + 1, std::slice::from_ref(&delivery)).await.unwrap(),
        "the cursor moved"
    );
    assert_eq!(store.webhook_cursor().await.unwrap(), cursor + 1);
    let due = store.due_deliveries(at, 1000).await.unwrap();
    assert!(due.contains(&delivery));
    let until = at.plus(std::time::Duration::from_secs(20));
    assert!(store.claim_delivery(&delivery.id, at, until).await.unwrap());
    assert!(!store.claim_delivery(&delivery.id, at, until).await.unwrap(), "one attempt at a time");
    let done = Delivery { next_at: until, ..delivery.delivered(204) };
    store.update_delivery(&done).await.unwrap();
    assert_eq!(store.list_deliveries(&hook.id, 10).await.unwrap(), vec![done]);
    assert!(!store.due_deliveries(until, 1000).await.unwrap().iter().any(|d| d.id == delivery.id));

    // Deleted, it goes with its deliveries, once.
    assert!(store.delete_webhook(&hook.id).await.unwrap());
    assert!(!store.list_webhooks().await.unwrap().iter().any(|h| h.id == hook.id));
    assert!(store.list_deliveries(&hook.id, 10).await.unwrap().is_empty());
    assert!(!store.delete_webhook(&hook.id).await.unwrap(), "nothing left to delete");
}
