//! An idle node sleeps: its background loops wait for a due time or a
//! change instead of polling the store.

use std::time::Duration;

use crate::helpers::TestApp;

/// The store reads this process has made, from its own `/metrics`.
async fn store_reads(app: &TestApp) -> u64 {
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .find(|line| line.starts_with("longrun_store_seconds_count{") && line.contains(r#"access="read""#))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0, |count| count.parse().unwrap())
}

#[tokio::test]
async fn an_idle_node_makes_at_most_one_store_read_a_second() {
    let app = TestApp::spawn().await;
    tokio::time::sleep(Duration::from_millis(500)).await; // the loops' first rounds
    let before = store_reads(&app).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The second scrape's own two reads (operation and lease counts) count too.
    let made = store_reads(&app).await - before - 2;
    assert!(made <= 4, "{made} store reads in 4 idle seconds");
}

#[tokio::test]
async fn a_script_step_due_later_runs_when_due_without_polling_in_between() {
    let app = TestApp::spawn().await;
    let tenant = crate::helpers::tenant();
    // The demo script: Running after 1 s, Succeeded after 3 s.
    let started = app
        .client
        .post(format!("{}/v2/tenants/{tenant}/images", app.address))
        .bearer_auth(&app.admin_key)
        .body(vec![1u8; 16])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let id = started.json::<serde_json::Value>().await.unwrap()["OperationId"].as_str().unwrap().to_owned();
    let before = store_reads(&app).await;
    let path = format!("/v1/operations/{id}:wait?timeout=10s");
    let mut state = String::new();
    for _ in 0..3 {
        let op: serde_json::Value = app.get_bearer(&path, &app.admin_key).await.json().await.unwrap();
        state = op["state"].as_str().unwrap().to_owned();
        if state == "Succeeded" {
            break;
        }
    }
    assert_eq!(state, "Succeeded", "both steps ran when due");
    let made = store_reads(&app).await - before;
    assert!(made < 40, "{made} store reads over the script's 3 s");
}
