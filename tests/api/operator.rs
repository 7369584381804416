//! The operator surface: readiness and Prometheus metrics.

use reqwest::StatusCode;
use serde_json::json;

use longrun::model::Role;

use crate::helpers::{TestApp, id_of};

#[tokio::test]
async fn readyz_answers_when_the_store_does() {
    let app = TestApp::spawn().await;
    let response = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_dialect_route_and_status_with_latency_histograms() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/metered", "deleteDevBox").await);
    let status = format!("/projects/metered/operationstatuses/{id}?api-version=2025-02-01");
    for _ in 0..3 {
        assert_eq!(app.get_bearer(&status, &app.admin_key).await.status(), StatusCode::OK);
    }
    app.get_bearer("/projects/metered/operationstatuses/not-an-id?api-version=2025-02-01", &app.admin_key).await;
    app.patch_ok(&id, json!({"state": "Running"})).await;

    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    let route = "/projects/{project_name}/operationstatuses/{operation_id}";
    let ok = format!(r#"http_requests_total{{dialect="devcenter",route="{route}",status="200"}}"#);
    let counted = text.lines().find(|l| l.starts_with(&ok)).unwrap_or_else(|| panic!("no {ok} in\n{text}"));
    let count: f64 = counted.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{counted}");
    assert!(text.contains(&format!(r#"http_requests_total{{dialect="devcenter",route="{route}",status="400"}}"#)));
    assert!(text.contains(r#"http_requests_total{dialect="native",route="/v1/operations/{id}",status="200"}"#));
    let bucket = format!(r#"http_request_duration_seconds_bucket{{dialect="devcenter",route="{route}",le="0.001"}}"#);
    assert!(text.contains(&bucket), "latency histogram with buckets:\n{text}");
    assert!(text.contains("longrun_build_info"));
    assert!(!text.contains(&id), "no ids in labels");
}

#[tokio::test]
async fn me_describes_the_calling_key_and_refuses_strangers() {
    let app = TestApp::spawn().await;
    let reader = app.key("projects/mine", Role::Read).await;
    let me: serde_json::Value = app.get_bearer("/v1/me", &reader).await.json().await.unwrap();
    assert_eq!(me["scope"], "projects/mine");
    assert_eq!(me["scopes"], json!(["projects/mine"]));
    assert_eq!(me["role"], "read");
    assert!(me["keyId"].as_str().unwrap().starts_with("key_"));
    assert!(!me.to_string().contains(&reader), "never the secret");
    let admin: serde_json::Value = app.get_bearer("/v1/me", &app.admin_key).await.json().await.unwrap();
    assert_eq!((admin["scope"].as_str(), admin["role"].as_str()), (Some("*"), Some("admin")));
    assert_eq!(app.get_bearer("/v1/me", "lr_nope").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_with_a_strict_content_security_policy() {
    let app = TestApp::spawn().await;
    let page = app.client.get(format!("{}/ui", app.address)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "/ui redirects to /ui/");
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(page.text().await.unwrap().contains(r#"<script type="module" src="/ui/app.js">"#));
    for (asset, content_type) in [("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
        let response = app.client.get(format!("{}{asset}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(content_type), "{asset}");
    }
}

/// The value of the sample `name{labels}` in a Prometheus text page.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))?.rsplit(' ').next()?.parse().ok()
}

#[tokio::test]
async fn metrics_gauge_operations_by_state_and_kind_and_time_the_store() {
    let app = TestApp::spawn().await;
    let first = id_of(&app.create_ok("projects/gauged", "deleteDevBox").await);
    app.create_ok("projects/gauged", "deleteDevBox").await;
    app.create_ok("projects/gauged", "createDevBox").await;
    app.patch_ok(&first, json!({"state": "Running"})).await;
    let scrape =
        async || app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();

    let text = scrape().await;
    let gauge = |text: &str, state: &str, kind: &str| {
        sample(text, &format!(r#"longrun_operations{{state="{state}",kind="{kind}"}}"#))
    };
    assert_eq!(gauge(&text, "NotStarted", "deleteDevBox"), Some(1.0), "{text}");
    assert_eq!(gauge(&text, "Running", "deleteDevBox"), Some(1.0));
    assert_eq!(gauge(&text, "NotStarted", "createDevBox"), Some(1.0));
    assert_eq!(sample(&text, "longrun_leases_held"), Some(0.0));
    assert!(text.contains(r#"longrun_store_seconds_bucket{backend="sqlite",access="write",le="0.01"}"#), "{text}");
    assert!(text.contains(r#"longrun_store_seconds_bucket{backend="sqlite",access="read",le="0.001"}"#));

    // A state nobody is in any more reads 0, not its last value.
    app.patch_ok(&first, json!({"state": "Succeeded"})).await;
    let text = scrape().await;
    assert_eq!(gauge(&text, "Running", "deleteDevBox"), Some(0.0), "{text}");
    assert_eq!(gauge(&text, "Succeeded", "deleteDevBox"), Some(1.0));
}
