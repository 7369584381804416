//! The `longrun` binary: parse the command line, run one command. Start-up
//! problems (bad flags, unusable store or address) print one line and exit
//! with code 2; failures while serving exit with 1.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use longrun::cli::config_file::{self, Setting};
use longrun::cli::failure::{CONFIG_ERROR, Failure};
use longrun::cli::{self, Cli, Command, ConfigCommand};

// jemalloc, purging freed pages from background threads, gives memory back
// after a spike (BENCHMARKS.md, memory under slow bodies); mimalloc when
// asked for by feature, to compare.
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let from_file = match apply_config_file() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let parsed = Cli::command().try_get_matches().and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) if e.use_stderr() => {
            let text = e.to_string();
            let line = text.lines().next().unwrap_or("error: invalid arguments");
            match config_file::origin_of_refused(&e, &from_file) {
                Some(origin) => eprintln!("{line} (set in {origin})"),
                None => eprintln!("{line}"),
            }
            return ExitCode::from(CONFIG_ERROR);
        }
        Err(e) => e.exit(), // --help, --version
    };
    if let Command::Config { command: ConfigCommand::Check(_) } = &cli.command {
        // The global flags (log-format), then serve's.
        let global = config_file::describe_effective(&Cli::command(), &matches, &from_file);
        let check = ["config", "check"].iter().try_fold((Cli::command(), matches), |(command, matches), name| {
            let sub = command.find_subcommand(name)?.clone();
            let sub_matches = matches.subcommand_matches(name)?.clone();
            Some((sub, sub_matches))
        });
        let (command, matches) = check.expect("config check was parsed");
        println!("{global}\n{}", config_file::describe_effective(&command, &matches, &from_file));
        return ExitCode::SUCCESS;
    }
    // The server logs what it does; a one-shot command (`key create`) says
    // only what went wrong, so its output is its answer.
    let level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    let otlp_endpoint = match &cli.command {
        Command::Serve(config) => config.otlp_endpoint.as_deref(),
        _ => None,
    };
    let telemetry = match longrun::telemetry::init(cli.log_format, level, otlp_endpoint) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: cannot start OpenTelemetry export: {e:#}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    let outcome = match cli.command {
        Command::Op { command } => runtime
            .block_on(longrun::cli::client::run(command))
            .map_err(|message| Failure { code: longrun::cli::client::CLIENT_ERROR, message: message.to_string() }),
        Command::Webhook { command } => runtime
            .block_on(longrun::cli::client::run_webhook(command))
            .map_err(|message| Failure { code: longrun::cli::client::CLIENT_ERROR, message: message.to_string() }),
        command => runtime.block_on(run(command)).map(|()| ExitCode::SUCCESS),
    };
    // The log lines still queued (the runtime's last ones included) go out
    // before the error line that ends the run.
    drop(runtime);
    drop(telemetry);
    match outcome {
        Ok(code) => code,
        Err(Failure { code, message }) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// Applies the config file (if one is named) as `LONGRUN_*` variables that
/// are not already set, so clap reads it below flags and environment.
/// Returns the settings it applied.
fn apply_config_file() -> Result<Vec<Setting>, String> {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let named = std::env::var("LONGRUN_CONFIG").ok();
    let Some(path) = config_file::named_path(&args, named) else { return Ok(Vec::new()) };
    let settings = config_file::read(&path, &longrun::cli::file_keys())?;
    let applied: Vec<Setting> = settings.into_iter().filter(|s| std::env::var_os(&s.env).is_none()).collect();
    for setting in &applied {
        // SAFETY: main has started no other thread yet (no runtime, no
        // logger), so nothing can read the environment concurrently.
        unsafe { std::env::set_var(&setting.env, &setting.value) };
    }
    Ok(applied)
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve(config) => cli::serve::run(config).await,
        Command::Key { command } => cli::keys::run(command).await,
        Command::Backup { to, store } => cli::backup::backup(&to, &store),
        Command::Restore { from, force, store } => cli::backup::restore(&from, force, &store),
        Command::Token { command } => cli::tokens::mint(command),
        Command::DevCert { data_dir } => cli::dev_cert::run(&data_dir),
        Command::Op { .. } | Command::Webhook { .. } | Command::Config { .. } => unreachable!("handled in main"),
    }
}
