//! `longrun op …` and `longrun webhook …`: the binary as a thin client of
//! the native API, and `op watch`, which follows an operation over
//! server-sent events with a progress bar.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

/// Exit code when the server cannot be reached or refuses the request.
pub const CLIENT_ERROR: u8 = 5;

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The longrun server.
    #[arg(long, env = "LONGRUN_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An API key.
    #[arg(long, env = "LONGRUN_KEY", hide_env_values = true)]
    pub key: String,
}

/// `longrun op …`
#[derive(Debug, clap::Subcommand)]
pub enum OpCommand {
    /// Print an operation (native JSON).
    Get {
        /// Operation id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// List operations, newest first: a table on a terminal, the native
    /// list's JSON (with its nextLink) with --json or when piped.
    List {
        /// Only this scope.
        #[arg(long)]
        scope: Option<String>,
        /// Only this state.
        #[arg(long)]
        state: Option<String>,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many (one page of the native list).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print JSON even on a terminal.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Create an operation; prints it.
    Create {
        /// Owner scope.
        #[arg(long)]
        scope: String,
        /// camelCase kind.
        #[arg(long)]
        kind: String,
        /// A client-chosen id.
        #[arg(long)]
        id: Option<String>,
        /// Properties, a JSON object.
        #[arg(long, value_name = "JSON", value_parser = parse_object)]
        properties: Option<Value>,
        /// An emulator script: a JSON array of steps, or @FILE holding one.
        #[arg(long, value_name = "JSON|@FILE", value_parser = parse_script)]
        script: Option<Value>,
        /// A Repeatability-Request-ID: the same id again creates nothing new
        /// and prints the first answer.
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Cancel an operation.
    Cancel {
        /// Operation id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Follow an operation until it ends, with a progress bar. Exit code:
    /// 0 Succeeded, 1 Failed, 3 Canceled, 4 CompleteWithErrors (5: the
    /// server could not be reached or refused).
    Watch {
        /// Operation id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `longrun webhook …` (admin keys).
#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// List the webhooks the key reaches (never their secrets).
    List {
        /// Only this scope's.
        #[arg(long)]
        scope: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a webhook and drop its pending deliveries.
    Delete {
        /// Webhook id, e.g. wh_01a2….
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Runs one `webhook` command.
pub async fn run_webhook(command: WebhookCommand) -> Result<ExitCode, String> {
    let client = reqwest::Client::new();
    let request = match &command {
        WebhookCommand::List { scope, connection } => {
            let query: Vec<(&str, &String)> = scope.iter().map(|s| ("scope", s)).collect();
            connection.request(&client, reqwest::Method::GET, "/v1/webhooks").query(&query)
        }
        WebhookCommand::Delete { id, connection } => {
            connection.request(&client, reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"))
        }
    };
    print_answer(request).await
}

impl Connection {
    fn request(&self, client: &reqwest::Client, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        client.request(method, format!("{}{path}", self.server.trim_end_matches('/'))).bearer_auth(&self.key)
    }
}

/// Sends `request` and prints the JSON it answers (nothing for a 204).
async fn print_answer(request: reqwest::RequestBuilder) -> Result<ExitCode, String> {
    let response = request.send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !body.is_null() {
        println!("{}", serde_json::to_string_pretty(&body).expect("JSON prints"));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one `op` command; the exit code says how it went.
pub async fn run(command: OpCommand) -> Result<ExitCode, String> {
    let client = reqwest::Client::new();
    let call = |c: &Connection, method: reqwest::Method, path: String| c.request(&client, method, &path);
    let request = match &command {
        OpCommand::Get { id, connection } => call(connection, reqwest::Method::GET, format!("/v1/operations/{id}")),
        OpCommand::List { scope, state, kind, limit, json, connection } => {
            let mut query = vec![("maxPageSize", limit.to_string())];
            for (name, value) in [("scope", scope), ("state", state), ("kind", kind)] {
                if let Some(value) = value {
                    query.push((name, value.clone()));
                }
            }
            let request = call(connection, reqwest::Method::GET, "/v1/operations".into()).query(&query);
            if !json && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return print_table(request).await;
            }
            request
        }
        OpCommand::Create { scope, kind, id, properties, script, request_id, connection } => {
            let mut body = json!({"scope": scope, "kind": kind});
            for (name, value) in
                [("id", id.clone().map(Value::from)), ("properties", properties.clone()), ("script", script.clone())]
            {
                if let Some(value) = value {
                    body[name] = value;
                }
            }
            let request = call(connection, reqwest::Method::POST, "/v1/operations".into()).json(&body);
            match request_id {
                Some(id) => request
                    .header("repeatability-request-id", id)
                    .header("repeatability-first-sent", httpdate::fmt_http_date(std::time::SystemTime::now())),
                None => request,
            }
        }
        OpCommand::Cancel { id, connection } => {
            call(connection, reqwest::Method::POST, format!("/v1/operations/{id}:cancel"))
        }
        OpCommand::Watch { id, connection } => return watch(&client, connection, id).await,
    };
    print_answer(request).await
}

/// Sends a list request and prints its page as a table.
async fn print_table(request: reqwest::RequestBuilder) -> Result<ExitCode, String> {
    let response = request.send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let page: Value = response.json().await.map_err(|e| format!("the server answered no JSON: {e}"))?;
    let operations = page["value"].as_array().map(Vec::as_slice).unwrap_or_default();
    print!("{}", super::table::operations(operations, crate::service::operations::now()));
    if page["nextLink"].is_string() {
        println!("(the newest {}; --limit shows more, --json gives the nextLink)", operations.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// A refused request, as every command says it: the status, and the
/// message and code of the error body.
async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = body["error"]["message"].as_str().unwrap_or("no details");
    match body["error"]["code"].as_str() {
        Some(code) => format!("{status}: {message} ({code})"),
        None => format!("{status}: {message}"),
    }
}

/// A request that reached no server, with what stopped it (refused,
/// TLS, DNS, a timeout): reqwest's own message names only the URL.
fn unreachable(error: reqwest::Error) -> String {
    let mut said = format!("cannot reach the server: {error}");
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        said.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    said
}

fn parse_object(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("expected a JSON object, e.g. '{\"size\": 3}'".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// A script given inline or as @FILE: a JSON array, checked for shape
/// here (the server checks each step's rules and names the step at fault).
fn parse_script(text: &str) -> Result<Value, String> {
    let json = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?,
        None => text.to_owned(),
    };
    match serde_json::from_str::<Value>(&json) {
        Ok(value @ Value::Array(_)) => Ok(value),
        Ok(_) => Err("expected a JSON array of steps, e.g. '[{\"after\": \"2s\", \"state\": \"Running\"}]'".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Follows `/v1/operations/{id}/events`, drawing `percentComplete`.
async fn watch(client: &reqwest::Client, connection: &Connection, id: &str) -> Result<ExitCode, String> {
    let path = format!("/v1/operations/{id}/events");
    let events = connection.request(client, reqwest::Method::GET, &path);
    let mut response = events.send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<12} [{bar:40}] {pos:>3}%")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    // A person at a terminal gets the bar; a pipe or a log, a line per change.
    let lines = !std::io::IsTerminal::is_terminal(&std::io::stdout());
    if lines {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    let mut buffer = String::new();
    loop {
        let chunk = response.chunk().await.map_err(|e| format!("the stream broke: {e}"))?;
        let Some(chunk) = chunk else { return Err("the server closed the stream".into()) };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
            let Ok(op) = serde_json::from_str::<Value>(data.trim()) else { continue };
            let state = op["state"].as_str().unwrap_or("?").to_owned();
            if let Some(percent) = op["percentComplete"].as_f64() {
                bar.set_position(percent.round() as u64);
            }
            bar.set_message(state.clone());
            let code = match state.as_str() {
                "Succeeded" => 0,
                "Failed" => 1,
                "Canceled" => 3,
                "CompleteWithErrors" => 4,
                _ if lines => {
                    match op["percentComplete"].as_f64() {
                        Some(percent) => println!("{state} {percent}%"),
                        None => println!("{state}"),
                    }
                    continue;
                }
                _ => continue,
            };
            bar.finish_and_clear();
            match (op["error"]["message"].as_str(), op["error"]["code"].as_str()) {
                (Some(message), Some(code)) => println!("{state}: {message} ({code})"),
                (Some(message), None) => println!("{state}: {message}"),
                _ => println!("{state}"),
            }
            return Ok(ExitCode::from(code));
        }
    }
}
