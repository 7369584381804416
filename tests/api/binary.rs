//! The real `longrun` binary: the README's start command, key creation,
//! graceful shutdown, and one-line config errors with exit code 2.

use std::process::Command;

use serde_json::json;

use crate::helpers::{ServeProcess, cli_key, create_on, run_longrun, until_a_long_poll_waits};

const BINARY: &str = env!("CARGO_BIN_EXE_longrun");

#[tokio::test]
async fn serve_with_defaults_stores_under_longrun_data_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::start(dir.path(), &[]);
    let address = server.address.clone();
    assert!(dir.path().join("longrun-data/longrun.db").exists());
    assert!(server.printed.iter().any(|l| l.contains("longrun key create")), "the first start explains the first key");
    let key = cli_key(dir.path(), &["--name", "test"], "*", "admin");
    assert!(key.starts_with("lr_"), "{key}");

    let client = reqwest::Client::new();
    let anonymous = client
        .post(format!("{address}/v1/operations"))
        .json(&json!({"scope": "projects/p01", "kind": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "never runs open");
    let created = client
        .post(format!("{address}/v1/operations"))
        .bearer_auth(&key)
        .json(&json!({"scope": "projects/p01", "kind": "deleteDevBox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let listed = Command::new(BINARY).args(["key", "list"]).current_dir(dir.path()).output().unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("admin") && listed.contains("test") && !listed.contains(&key), "{listed}");

    // Revoking a spare key takes effect on its next request.
    let spare = cli_key(dir.path(), &[], "projects/p01", "read");
    let spare_id = {
        let listed = Command::new(BINARY).args(["key", "list"]).current_dir(dir.path()).output().unwrap();
        let listed = String::from_utf8(listed.stdout).unwrap();
        listed.lines().find(|l| l.contains("projects/p01")).unwrap().split_whitespace().next().unwrap().to_owned()
    };
    let read = |key: String| client.get(format!("{address}/v1/operations?scope=projects/p01")).bearer_auth(key).send();
    assert_eq!(read(spare.clone()).await.unwrap().status(), 200);
    let revoked = Command::new(BINARY).args(["key", "revoke", &spare_id]).current_dir(dir.path()).output().unwrap();
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(read(spare.clone()).await.unwrap().status(), 401, "refused from the next request on");
    let unknown = Command::new(BINARY).args(["key", "revoke", "key_nope"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));

    // A long-poll in flight answers at once when the server stops; it does
    // not hold the shutdown for its 60 s.
    let id = created.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let waiting = client.get(format!("{address}/v1/operations/{id}:wait?timeout=60s")).bearer_auth(&key).send();
    let waiting = tokio::spawn(waiting);
    until_a_long_poll_waits(&client, &address).await;
    let stopped_at = std::time::Instant::now();
    Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    assert!(stopped_at.elapsed() < std::time::Duration::from_secs(20), "the long-poll did not hold the shutdown");
    assert_eq!(waiting.await.unwrap().unwrap().status(), 200, "the waiter got an answer");
}

#[test]
fn bad_config_prints_one_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    for args in [
        vec!["serve", "--listen", "nonsense"],
        vec!["serve", "--retention", "1h"],
        vec!["serve", "--retry-after", "0"],
        vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", file.to_str().unwrap()],
        vec!["key", "create", "--scope", "buckets/x"],
        vec!["key", "create", "--scope", "*", "--role", "owner"],
        vec!["frobnicate"],
    ] {
        let output = Command::new(BINARY).args(&args).current_dir(dir.path()).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn json_logs_carry_one_access_line_per_request_with_its_request_id() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let key = cli_key(dir.path(), &[], "projects/logged", "read");
    let mut child = Command::new(BINARY)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let address = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "exited before listening");
        if let Some(rest) = line.strip_prefix("longrun listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let response = reqwest::get(format!("{address}/v1/operations/{}", uuid::Uuid::new_v4())).await.unwrap();
    let request_id = response.headers()["x-ms-request-id"].to_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let authenticated = client.get(format!("{address}/v1/operations/{}", uuid::Uuid::new_v4())).bearer_auth(&key);
    let authenticated = authenticated.send().await.unwrap().headers()["x-ms-request-id"].to_str().unwrap().to_owned();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(child.wait().unwrap().success());
    let lines: Vec<serde_json::Value> =
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let access = lines.iter().find(|l| l["target"] == "longrun::access").expect("an access line");
    assert_eq!(access["request_id"], request_id.as_str());
    assert_eq!(access["route"], "/v1/operations/{id}", "the template, not the id");
    assert_eq!(access["status"], "401");
    assert_eq!(access["scope"], "", "nobody was authenticated");
    let audit = lines.iter().find(|l| l["target"] == "longrun::audit").expect("an audit line for the 401");
    assert_eq!((audit["request_id"].as_str(), audit["status"].as_str()), (Some(request_id.as_str()), Some("401")));
    assert_eq!(audit["peer"], "127.0.0.1");
    assert!(audit["challenge"].as_str().unwrap().starts_with("Bearer"), "{audit}");
    let access = lines.iter().find(|l| l["request_id"] == authenticated.as_str()).expect("an access line");
    assert_eq!((access["status"].as_str(), access["scope"].as_str()), (Some("404"), Some("projects/logged")));
    assert!(access["key_id"].as_str().unwrap().starts_with("key_"), "{access}");
    assert!(!stderr.contains(&key), "never the key itself");
}

#[tokio::test]
async fn op_watch_follows_a_scripted_operation_to_its_end_and_exits_by_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    let key = cli_key(dir.path(), &[], "*", "admin");
    let client = reqwest::Client::new();
    for (last, code, expected) in [
        (json!({"after": "1s", "state": "Succeeded", "percentComplete": 100}), 0, "Succeeded"),
        (
            json!({"after": "1s", "state": "Failed", "error": {"code": "E", "message": "disk full"}}),
            1,
            "Failed: disk full (E)",
        ),
    ] {
        let created: serde_json::Value = client
            .post(format!("{}/v1/operations", server.address))
            .bearer_auth(&key)
            .json(&json!({"scope": "projects/p01", "kind": "deleteDevBox",
                          "script": [{"after": "300ms", "state": "Running", "percentComplete": 50}, last]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap();
        let watch = tokio::process::Command::new(BINARY)
            .args(["op", "watch", id, "--server", &server.address])
            .env("LONGRUN_KEY", &key)
            .output();
        let output =
            tokio::time::timeout(std::time::Duration::from_secs(20), watch).await.expect("watch ends").unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(output.status.code(), Some(code), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(stdout.trim_end().lines().last(), Some(expected));
        assert!(stdout.lines().any(|l| l == "Running 50%"), "a line per change when piped: {stdout}");
    }
    let get = Command::new(BINARY)
        .args(["op", "get", &uuid::Uuid::new_v4().to_string(), "--server", &server.address, "--key", &key])
        .output()
        .unwrap();
    assert_eq!(get.status.code(), Some(5), "an unknown operation is a client error");

    // A malformed id: the same error from get and watch, with its code.
    let said = |command: &str, server: &str| {
        let output = Command::new(BINARY).args(["op", command, "nothex", "--server", server, "--key", &key]).output();
        let output = output.unwrap();
        assert_eq!(output.status.code(), Some(5));
        String::from_utf8(output.stderr).unwrap()
    };
    let from_get = said("get", &server.address);
    assert!(from_get.contains("'nothex' is not a UUID (InvalidParameter)"), "{from_get}");
    assert_eq!(said("watch", &server.address), from_get);
    // No server: the cause is named.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let refused = said("get", &format!("http://{free}"));
    assert!(refused.contains("Connection refused"), "{refused}");
}

#[test]
fn demo_mode_is_refused_on_a_public_address_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let refused = run_longrun(dir.path(), &["serve", "--demo", "--listen", "0.0.0.0:0", "--data-dir", "data"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--demo-public") && said.contains("0.0.0.0:0"), "{said}");
}

#[tokio::test]
async fn webhook_list_and_delete_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    let key = cli_key(dir.path(), &[], "*", "admin");
    let registered: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/webhooks", server.address))
        .bearer_auth(&key)
        .json(&json!({"scope": "projects/clihooks", "url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registered["id"].as_str().unwrap();
    let webhook = |args: &[&str]| {
        Command::new(BINARY)
            .arg("webhook")
            .args(args)
            .args(["--server", &server.address, "--key", &key])
            .output()
            .unwrap()
    };
    let listed = webhook(&["list", "--scope", "projects/clihooks"]);
    assert!(listed.status.success(), "{listed:?}");
    let page: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(page["value"][0]["id"], id);
    assert!(webhook(&["delete", id]).status.success());
    let listed: serde_json::Value = serde_json::from_slice(&webhook(&["list"]).stdout).unwrap();
    assert_eq!(listed["value"], json!([]));
    assert_eq!(webhook(&["delete", id]).status.code(), Some(5), "an unknown webhook is a client error");
}

#[tokio::test]
async fn op_create_takes_properties_a_script_file_and_a_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    let key = cli_key(dir.path(), &[], "*", "admin");
    std::fs::write(dir.path().join("script.json"), r#"[{"after": "1h", "state": "Running", "percentComplete": 5}]"#)
        .unwrap();
    let create = |extra: &[&str]| {
        let mut args = vec!["op", "create", "--scope", "projects/clicreate", "--kind", "resize"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--server", &server.address, "--key", &key]);
        Command::new(BINARY).args(args).current_dir(dir.path()).output().unwrap()
    };
    let args = ["--properties", r#"{"width": 64}"#, "--script", "@script.json", "--request-id", "cli-1"];
    let first = create(&args);
    assert!(first.status.success(), "{first:?}");
    let op: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(op["properties"], json!({"width": 64}));
    let again: serde_json::Value = serde_json::from_slice(&create(&args).stdout).unwrap();
    assert_eq!(again["id"], op["id"], "the same request id creates nothing new");

    let not_a_list = create(&["--script", r#"{"after": "1s"}"#]);
    assert_eq!(not_a_list.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_a_list.stderr).contains("JSON array"), "{not_a_list:?}");
    let bad_step = create(&["--script", r#"[{"after": "1s", "percentComplete": 5}]"#]);
    assert_eq!(bad_step.status.code(), Some(5), "the server refuses a step without a state");
    assert!(String::from_utf8_lossy(&bad_step.stderr).contains("script step 1: missing field `state`"), "{bad_step:?}");
}

#[tokio::test]
async fn op_list_prints_json_when_piped_and_a_table_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    let key = cli_key(dir.path(), &[], "*", "admin");
    let client = reqwest::Client::new();
    for kind in ["resize", "encode", "upload"] {
        create_on(&client, &server.address, &key, "projects/clilist", kind).await;
    }
    let list = |extra: &[&str]| {
        let mut args = vec!["op", "list", "--scope", "projects/clilist", "--server", &server.address];
        args.extend_from_slice(extra);
        Command::new(BINARY).args(&args).env("LONGRUN_KEY", &key).output().unwrap()
    };
    let piped = list(&["--limit", "2"]);
    assert!(piped.status.success(), "{piped:?}");
    let page: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    assert_eq!(page["value"][0]["kind"], "upload", "newest first");
    assert!(page["nextLink"].is_string());

    // A terminal, through script(1)'s pseudo-terminal; --json still prints JSON there.
    let on_terminal = |extra: &str| {
        let line = format!(
            "{BINARY} op list --scope projects/clilist --server {} --key {key} --limit 2 {extra}",
            server.address
        );
        let output = Command::new("script").args(["-qec", &line, "/dev/null"]).output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().replace('\r', "")
    };
    let table = on_terminal("");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].ends_with("PROGRESS  AGE"), "{table}");
    assert!(lines[1].contains("projects/clilist  upload  NotStarted  -"), "{table}");
    assert!(lines[2].contains("encode"), "{table}");
    assert!(lines[3].starts_with("(the newest 2; --limit shows more"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&on_terminal("--json")).unwrap();
    assert_eq!(json["value"].as_array().unwrap().len(), 2);
}
