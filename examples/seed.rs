//! Seeds a longrun store for the benchmark harness (`bench/run`).
//!
//! Writes N operations straight through the library (`Store::create_operation`),
//! so the rows are exactly what the API would have stored: `Operation::new`
//! with a fresh UUIDv7, one scope per dialect, and every fourth operation
//! moved to Running through the model's own transition rules (`op.apply`).
//! Creates an admin key and a produce key bound to the Face account, and
//! writes a JSON file with both secrets and a sample of ids per scope.
//!
//! ```sh
//! cargo run --release --example seed -- --data-dir DIR --count 1000000 --out seed.json
//! cargo run --release --example seed -- --store "$SCRATCH_URL" --count 1000 --out seed.json
//! cargo run --release --example seed -- --scratch-schema postgres://postgres@127.0.0.1:5432/test
//! cargo run --release --example seed -- --drop-schema "$SCRATCH_URL"
//! ```
//!
//! Stop the server before seeding its SQLite file (or seed first, then start it).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use longrun::model::{
    Applied, Changes, KeyScope, Kind, NewOperation, Operation, OperationId, Retention, Role, Scope, State,
};
use longrun::service::auth::keys;
use longrun::store::{self, Store};
use serde_json::json;
use uuid::Uuid;

/// The Sphere tenant every seeded tenant operation belongs to.
const TENANT: &str = "6f1c3a52-8b7e-4d0f-9a21-3c5e7b9d1f40";
/// The scopes seeded, one per dialect, each with the kind its dialect serves.
const SCOPES: [(&str, &str); 3] =
    [("projects/benchproj", "deleteDevBox"), ("accounts/benchacct", "takeSnapshot"), ("tenants/", "imageUpload")];
/// Operations reserved for the PATCH scenario: never read by the GET scenarios.
const PATCH_POOL: u64 = 1000;
/// The service's default retention, which `apply` needs for terminal moves.
const RETENTION: Retention = Retention::uniform(Duration::from_secs(7 * 24 * 3600));

#[derive(Parser)]
#[command(about = "Seed a longrun store with benchmark operations")]
struct Args {
    /// A postgres:// URL; without it, the SQLite file in --data-dir.
    #[arg(long)]
    store: Option<String>,
    /// The data directory of the SQLite store.
    #[arg(long, default_value = "./longrun-data")]
    data_dir: PathBuf,
    /// How many operations to create (besides the PATCH pool).
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// How many ids per scope to list in the output for the load generator.
    #[arg(long, default_value_t = 1000)]
    sample: u64,
    /// Concurrent create calls (the SQLite writer commits them in groups).
    #[arg(long, default_value_t = 256)]
    concurrency: u64,
    /// Connections to PostgreSQL.
    #[arg(long, default_value_t = 32)]
    pool_size: usize,
    /// PostgreSQL only: this seeding session commits without waiting for
    /// its WAL flush (`synchronous_commit=off`). The rows are the same; the
    /// server under test keeps its own, durable, setting.
    #[arg(long)]
    async_commit: bool,
    /// Where to write the keys and the id sample (JSON).
    #[arg(long, default_value = "seed.json")]
    out: PathBuf,
    /// Create a scratch schema under this PostgreSQL URL, print its URL, exit.
    #[arg(long, value_name = "BASE_URL")]
    scratch_schema: Option<String>,
    /// Drop the scratch schema this URL points at, exit.
    #[arg(long, value_name = "SCRATCH_URL")]
    drop_schema: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(base) = &args.scratch_schema {
        println!("{}", store::postgres::scratch_schema(base).await?);
        return Ok(());
    }
    if let Some(url) = &args.drop_schema {
        return store::postgres::drop_scratch_schema(url).await;
    }
    if args.concurrency == 0 || args.sample == 0 {
        bail!("--concurrency and --sample must be at least 1");
    }
    let url = args.store.as_deref().map(|url| if args.async_commit { async_commit(url) } else { url.to_owned() });
    let store = store::open(url.as_deref(), &args.data_dir, args.pool_size).await?;
    let started = Instant::now();

    let (_, admin) = keys::create(
        &*store,
        KeyScope::All,
        Role::Admin,
        Some("bench admin".into()),
        longrun::service::operations::now(),
    )
    .await
    .context("cannot create the admin key")?;
    let account = KeyScope::One(Scope::parse("accounts/benchacct").map_err(anyhow::Error::msg)?);
    let (_, produce) =
        keys::create(&*store, account, Role::Produce, Some("bench face".into()), longrun::service::operations::now())
            .await
            .context("cannot create the produce key")?;

    let seeded = seed(store.clone(), &args).await?;
    let seconds = started.elapsed().as_secs_f64();
    let total = args.count + PATCH_POOL;
    eprintln!("seeded {total} operations in {seconds:.1} s ({:.0}/s)", total as f64 / seconds);

    let document = json!({
        "count": args.count,
        "patchPool": PATCH_POOL,
        "seedSeconds": seconds,
        "tenant": TENANT,
        "adminKey": admin,
        "produceKey": produce,
        "produceKeyScope": "accounts/benchacct",
        "sample": {
            "projects/benchproj": seeded.sample[0],
            "accounts/benchacct": seeded.sample[1],
            format!("tenants/{TENANT}"): seeded.sample[2],
        },
        "patch": seeded.patch,
    });
    std::fs::write(&args.out, serde_json::to_vec_pretty(&document)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    Ok(())
}

/// `url` with `-csynchronous_commit=off` added to its `options` parameter.
fn async_commit(url: &str) -> String {
    const OFF: &str = "-csynchronous_commit%3Doff";
    match url.find("options=") {
        Some(at) => format!("{}options={OFF}%20{}", &url[..at], &url[at + "options=".len()..]),
        None if url.contains('?') => format!("{url}&options={OFF}"),
        None => format!("{url}?options={OFF}"),
    }
}

/// The ids the load generator will use.
struct Seeded {
    /// Per scope (in `SCOPES` order): `{id, etag}` of evenly spread operations.
    sample: [Vec<serde_json::Value>; 3],
    /// NotStarted operations of `projects/benchproj`, for PATCH only.
    patch: Vec<String>,
}

/// Creates `count` operations with `concurrency` workers; worker `w` makes
/// operations `w, w + concurrency, …`, so the scopes interleave in id order.
async fn seed(store: Arc<dyn Store>, args: &Args) -> anyhow::Result<Seeded> {
    let done = Arc::new(AtomicU64::new(0));
    let progress = tokio::spawn(report_progress(done.clone(), args.count + PATCH_POOL));
    // About one operation in `stride` of each scope goes into the sample,
    // picked by a hash of its index so the sample spreads over the whole
    // key range (and mixes NotStarted with Running); 10 % spare, then cut.
    let per_scope = args.count.div_ceil(3);
    let stride = (per_scope / (args.sample + args.sample / 10 + 10)).max(1);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency {
        let (store, done, count, concurrency) = (store.clone(), done.clone(), args.count, args.concurrency);
        workers.spawn(async move {
            let mut sample: [Vec<serde_json::Value>; 3] = Default::default();
            let mut index = worker;
            while index < count {
                let op = operation(index)?;
                store.create_operation(&op).await.with_context(|| format!("creating operation {index}"))?;
                let scope = (index % 3) as usize;
                if mix(index).is_multiple_of(stride) {
                    sample[scope].push(json!({"id": op.id.to_string(), "etag": op.etag()}));
                }
                done.fetch_add(1, Ordering::Relaxed);
                index += concurrency;
            }
            anyhow::Ok(sample)
        });
    }
    let mut sample: [Vec<serde_json::Value>; 3] = Default::default();
    while let Some(joined) = workers.join_next().await {
        for (all, mine) in sample.iter_mut().zip(joined??) {
            all.extend(mine);
        }
    }
    for scope in &mut sample {
        scope.truncate(args.sample as usize);
    }

    let mut patch = Vec::new();
    let mut creates = tokio::task::JoinSet::new();
    for _ in 0..PATCH_POOL {
        let op =
            Operation::new(OperationId::from_uuid(Uuid::now_v7()), request(0)?, longrun::service::operations::now());
        patch.push(op.id.to_string());
        let (store, done) = (store.clone(), done.clone());
        creates.spawn(async move {
            store.create_operation(&op).await?;
            done.fetch_add(1, Ordering::Relaxed);
            anyhow::Ok(())
        });
    }
    while let Some(joined) = creates.join_next().await {
        joined??;
    }
    progress.abort();
    Ok(Seeded { sample, patch })
}

/// The `index`-th operation: scope and kind by `index % 3`; every fourth
/// one of each scope advanced to Running at 10 %, as a worker would.
fn operation(index: u64) -> anyhow::Result<Operation> {
    let now = longrun::service::operations::now();
    let op = Operation::new(OperationId::from_uuid(Uuid::now_v7()), request((index % 3) as usize)?, now);
    if (index / 3) % 4 != 3 {
        return Ok(op);
    }
    let running = Changes { state: State::Running, percent_complete: Some(10.0), ..op.changes() };
    match op.apply(running, now, &RETENTION)? {
        Applied::Changed(op) => Ok(*op),
        Applied::Unchanged => bail!("moving a new operation to Running changed nothing"),
    }
}

/// What `POST /v1/operations {"scope": …, "kind": …}` would carry.
fn request(scope: usize) -> anyhow::Result<NewOperation> {
    let (prefix, kind) = SCOPES[scope];
    let scope = if prefix == "tenants/" { format!("tenants/{TENANT}") } else { prefix.to_owned() };
    Ok(NewOperation {
        scope: Scope::parse(&scope).map_err(anyhow::Error::msg)?,
        kind: Kind::parse(kind).map_err(anyhow::Error::msg)?,
        resource_location: None,
        details_location: None,
        properties: None,
        script: None,
    })
}

/// SplitMix64's finaliser: a cheap, well-spread hash of an index.
fn mix(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

async fn report_progress(done: Arc<AtomicU64>, total: u64) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let so_far = done.load(Ordering::Relaxed);
        let rate = so_far as f64 / started.elapsed().as_secs_f64();
        eprintln!("  {so_far}/{total} operations ({rate:.0}/s)");
    }
}
