//! Retention: finished operations expire by outcome, read as 404
//! `OperationExpired` to their owner before and after the purge, and as the
//! plain not-found of a never-existing id to everyone else. Time is moved
//! with the server's injectable clock, never slept.

use std::time::Duration;

use longrun::model::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, id_of, unknown_id};

const DAY: Duration = Duration::from_secs(86_400);

async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn finished_operations_expire_by_outcome_and_leave_a_tombstone_for_their_owner() {
    let app = TestApp::spawn().await;
    let owner = app.key("projects/keep", Role::Read).await;
    let stranger = app.key("projects/other", Role::Read).await;
    let done = id_of(&app.create_ok("projects/keep", "deleteDevBox").await);
    let failed = id_of(&app.create_ok("projects/keep", "deleteDevBox").await);
    let open = id_of(&app.create_ok("projects/keep", "deleteDevBox").await);
    app.patch_ok(&done, json!({"state": "Succeeded"})).await;
    app.patch_ok(&failed, json!({"state": "Failed", "error": {"code": "E", "message": "m"}})).await;
    let status = |id: &str| format!("/projects/keep/operationstatuses/{id}?api-version=2025-02-01");

    app.policy.clock.advance(7 * DAY + Duration::from_secs(1));
    // Expired before any purge ran: 404 OperationExpired to the owner.
    assert_eq!(
        error_code(app.get_bearer(&status(&done), &owner).await).await,
        (StatusCode::NOT_FOUND, "OperationExpired".into())
    );
    assert_eq!(error_code(app.get_bearer(&format!("/v1/operations/{done}"), &owner).await).await.1, "OperationExpired");
    // Failures are kept longer; open operations never expire.
    assert_eq!(app.get_bearer(&status(&failed), &owner).await.status(), StatusCode::OK);
    assert_eq!(app.get_bearer(&status(&open), &owner).await.status(), StatusCode::OK);
    // A stranger cannot tell an expired operation from one that never existed.
    let foreign = app.get_bearer(&format!("/v1/operations/{done}"), &stranger).await.text().await.unwrap();
    let never = unknown_id();
    let missing = app.get_bearer(&format!("/v1/operations/{never}"), &stranger).await.text().await.unwrap();
    assert_eq!(foreign.replace(&done, "ID"), missing.replace(&never, "ID"));
    // An expired operation cannot be changed either.
    assert_eq!(app.patch(&done, json!({"properties": {"a": 1}})).await.status(), StatusCode::NOT_FOUND);

    let purged = longrun::worker::runner::purge_once(app.store.as_ref(), &app.policy).await.unwrap();
    assert_eq!(purged, 1, "only the expired operation goes");
    assert_eq!(app.store.get_operation(longrun::model::OperationId::parse(&done).unwrap()).await.unwrap(), None);
    // After the purge, the tombstone still says "expired" to the owner only.
    assert_eq!(error_code(app.get_bearer(&status(&done), &owner).await).await.1, "OperationExpired");
    let face = app
        .client
        .get(format!("{}/face/v1.0/operations/{done}", app.address))
        .header("Ocp-Apim-Subscription-Key", &owner);
    assert_eq!(face.send().await.unwrap().status(), StatusCode::NOT_FOUND, "not a Face operation at all");
    let foreign = app.get_bearer(&format!("/v1/operations/{done}"), &stranger).await;
    assert_eq!(error_code(foreign).await.1, "OperationNotFound");

    // Failures go after their own, longer retention.
    app.policy.clock.advance(23 * DAY);
    assert_eq!(longrun::worker::runner::purge_once(app.store.as_ref(), &app.policy).await.unwrap(), 1);
    assert_eq!(error_code(app.get_bearer(&status(&failed), &owner).await).await.1, "OperationExpired");

    // Tombstones are forgotten in time too.
    app.policy.clock.advance(longrun::worker::runner::TOMBSTONE_LIFETIME + DAY);
    longrun::worker::runner::purge_once(app.store.as_ref(), &app.policy).await.unwrap();
    assert_eq!(error_code(app.get_bearer(&status(&done), &owner).await).await.1, "OperationNotFound");
    assert_eq!(app.get_bearer(&status(&open), &owner).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_scope_may_keep_its_operations_longer() {
    let mut policy = longrun::service::operations::Policy::new(crate::helpers::RETENTION);
    let audit = longrun::model::Scope::parse("projects/audit").unwrap();
    policy.retention_by_scope.insert(audit, longrun::model::Retention::uniform(90 * DAY));
    let app = TestApp::spawn_with(policy).await;
    let kept = id_of(&app.create_ok("projects/audit", "deleteDevBox").await);
    let usual = id_of(&app.create_ok("projects/other", "deleteDevBox").await);
    for id in [&kept, &usual] {
        app.patch_ok(id, json!({"state": "Succeeded"})).await;
    }
    app.policy.clock.advance(30 * DAY);
    longrun::worker::runner::purge_once(app.store.as_ref(), &app.policy).await.unwrap();
    assert_eq!(app.get_bearer(&format!("/v1/operations/{kept}"), &app.admin_key).await.status(), StatusCode::OK);
    let expired = app.get_bearer(&format!("/v1/operations/{usual}"), &app.admin_key).await;
    assert_eq!(error_code(expired).await.1, "OperationExpired");
}
