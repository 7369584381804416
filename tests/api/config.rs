//! `longrun.toml`: flags beat environment, environment beats the file, the
//! file beats defaults; a bad file stops start-up with one line and code 2.

use std::path::Path;
use std::process::{Command, Output};

use crate::helpers::{ServeProcess, cli_key, create_on, id_of};

const BINARY: &str = env!("CARGO_BIN_EXE_longrun");

fn longrun(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BINARY);
    command.args(args).current_dir(dir).env_remove("LONGRUN_CONFIG");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn line_of<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("no {key} in\n{text}"))
}

#[test]
fn flags_beat_environment_which_beats_the_file_which_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("longrun.toml"),
        "retry-after = 11\nretention = \"10d\"\nmax-attempts = 4\nstore = \"postgres://longrun:hunter2@db.example/lr\"\nlog-format = \"json\"\n",
    )
    .unwrap();
    let env = [("LONGRUN_RETENTION", "20d"), ("LONGRUN_MAX_ATTEMPTS", "5")];
    let output = longrun(dir.path(), &["config", "check", "--config", "longrun.toml", "--max-attempts", "6"], &env);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(line_of(&text, "retry-after"), r#"retry-after = 11  # file longrun.toml:1"#);
    assert_eq!(line_of(&text, "retention"), r#"retention = "20d"  # env LONGRUN_RETENTION"#);
    assert_eq!(line_of(&text, "max-attempts"), r#"max-attempts = 6  # flag"#);
    assert_eq!(line_of(&text, "log-format"), r#"log-format = "json"  # file longrun.toml:5"#);
    assert_eq!(line_of(&text, "dev"), r#"dev = false  # default"#);
    assert_eq!(line_of(&text, "retention-failed"), r#"retention-failed = "30d"  # default"#);
    assert_eq!(line_of(&text, "store"), r#"store = "postgres://longrun:***@db.example/lr"  # file longrun.toml:4"#);
    assert!(!text.contains("hunter2"), "secrets are redacted:\n{text}");
}

#[tokio::test]
async fn serve_takes_its_settings_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.toml"), "data-dir = \"from-file\"\nretry-after = 17\n").unwrap();
    let key = cli_key(dir.path(), &["--data-dir", "from-file"], "*", "admin");
    let server = ServeProcess::start(dir.path(), &["--config", "site.toml"]);
    assert!(dir.path().join("from-file/longrun.db").exists(), "the file's data-dir is used");
    let client = reqwest::Client::new();
    let id = id_of(&create_on(&client, &server.address, &key, "projects/configured", "deleteDevBox").await);
    let status = client
        .get(format!("{}/projects/configured/operationstatuses/{id}?api-version=2025-02-01", server.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(status.headers()["retry-after"], "17", "the file's retry-after is used");
}

#[test]
fn a_bad_file_stops_start_up_with_one_line_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("listen = \"127.0.0.1:0\"\nretentoin = \"7d\"\n", "longrun.toml:2: unknown key 'retentoin'"),
        ("retention = \"1h\"\n", "1h is below the 24h minimum (set in longrun.toml:1)"),
        ("retention = \n", "longrun.toml:1: "),
        ("[serve]\nlisten = \"x\"\n", "longrun.toml:1: unknown key 'serve'"),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.path().join("longrun.toml"), text).unwrap();
        let output = longrun(dir.path(), &["serve"], &[("LONGRUN_CONFIG", "longrun.toml")]);
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "{text}: expected {expected:?} in {stderr:?}");
    }
    let missing = longrun(dir.path(), &["serve", "--config", "absent.toml"], &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8(missing.stderr).unwrap().contains("cannot read config file absent.toml"));
}

#[test]
fn several_token_issuers_come_from_one_file_string_and_print_back_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let issuers = "iss=https://a.example/,aud=api://longrun,jwks=file:/etc/a.json;iss=b,aud=c,jwks=https://b.example/keys,scope-claim=tid,scope-prefix=tenants/";
    std::fs::write(dir.path().join("longrun.toml"), format!("jwt-issuer = \"{issuers}\"\n")).unwrap();
    let output = longrun(dir.path(), &["config", "check", "--config", "longrun.toml"], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(line_of(&text, "jwt-issuer"), format!(r#"jwt-issuer = "{issuers}"  # file longrun.toml:1"#));
    let bad = longrun(dir.path(), &["config", "check", "--jwt-issuer", "iss=a,aud=b,jwks=ftp://x"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must be file:/path or an http(s) URL"));
}
