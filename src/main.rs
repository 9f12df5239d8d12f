//! The `claude-manager` command: `serve`, `migrate`, `token …`, and the client commands of
//! `claude_manager::client` (`ls`, `attach`, `new`, `run`, `logs`).
//!
//! Exit codes: 0 success, 1 runtime failure (e.g. the port is taken), 2 bad settings or usage.
//! `token` commands work on the database directly (SQLite in WAL mode), whether or not a server
//! is running on it; a running server sees their effect on its next request.
//!
//! Every subcommand finds the data dir the way `serve` does (flags, `CM_*`, the config file,
//! `/etc/claude-manager/config.toml` when present). Only `serve` and `migrate --create` may
//! create a database: the others refuse a data dir without one, so an operator who forgot
//! `--config` is told so instead of getting a token for a database nobody uses.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use slog::{error, info, warn};

use claude_manager::app::{open_database, Server, StartError};
use claude_manager::backup;
use claude_manager::config::{CommonArgs, Config, ServeArgs};
use claude_manager::handover;
use claude_manager::logging::{self, LogSettings};
use claude_manager::notify::{self, Notifier};

mod token_cli;
use token_cli::{token, TokenCommand};

use claude_manager::actors::lanes::EVENT_INTERVAL;

#[derive(Parser)]
#[command(
    name = "claude-manager",
    version,
    about = "Drive coding agents and shells on this server from a browser."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the server (the main job).
    Serve(Box<ServeArgs>),
    /// Apply the database schema to an existing database and exit.
    Migrate {
        /// Create the data dir and an empty database if there is none.
        #[arg(long)]
        create: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Copy the database to FILE, consistently, while the server runs (SQLite online backup).
    Backup {
        /// Where to write the copy.
        file: PathBuf,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Replace the database with the copy in FILE after checking its integrity (server stopped).
    Restore {
        /// A file written by `backup`.
        file: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Reload the server that owns the data dir in place (same PID, sessions continue): it
    /// re-executes its binary from the path it was started from, so installing a new binary
    /// and then reloading is the upgrade. Exits non-zero if the reload failed.
    Reload {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Manage API tokens (works whether or not the server is running).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Report a Claude Code hook (JSON on stdin) to the server that started this agent; run by
    /// the agent through the `--settings` the server gives it.
    Hook {
        /// The hook event: PermissionRequest, Notification, Stop, UserPromptSubmit, SessionStart.
        event: String,
    },
    /// A stdio MCP server with the permission prompt tool of headless runs; run by the agent
    /// through the `--mcp-config` the server gives it.
    Mcp,
    #[command(flatten)]
    Client(claude_manager::client::ClientCommand),
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    claude_manager::handover::remember_start();
    let starting_umask = claude_manager::permissions::make_private_by_default();
    claude_manager::pty::env::remember_starting_umask(starting_umask);
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Migrate { create, common } => migrate(common, create),
        Command::Backup {
            file,
            force,
            common,
        } => copy_db(common, Needs::Database, |config| {
            backup::backup(&config.db_path(), &file, force).map(|c| {
                format!(
                    "backed up {} to {} ({} bytes, integrity ok)",
                    config.db_path().display(),
                    file.display(),
                    c.bytes
                )
            })
        }),
        Command::Restore { file, common } => copy_db(common, Needs::DataDir, |config| {
            backup::restore(&config.data_dir, &config.db_path(), &file).map(|c| {
                format!(
                    "restored {} from {} ({} bytes, integrity ok)",
                    config.db_path().display(),
                    file.display(),
                    c.bytes
                )
            })
        }),
        Command::Token(cmd) => token(cmd),
        Command::Reload { common } => copy_db(common, Needs::DataDir, |config| {
            handover::reload_command(&config.data_dir)
        }),
        Command::Client(cmd) => claude_manager::client::run(cmd),
        Command::Hook { event } => {
            ExitCode::from(claude_manager::approvals::client::hook(&event) as u8)
        }
        Command::Mcp => ExitCode::from(claude_manager::approvals::client::mcp() as u8),
    }
}

fn open_db_for(common: CommonArgs) -> Result<claude_manager::db::Pool, ExitCode> {
    let config = load_common(common, Needs::Database)?;
    open_database(&config).map_err(|e| {
        eprintln!(
            "claude-manager: database {}: {e}",
            config.db_path().display()
        );
        ExitCode::from(EXIT_RUNTIME)
    })
}

/// What a subcommand needs to find in the data dir before it runs.
#[derive(Clone, Copy)]
enum Needs {
    /// Creates the data and log dirs if missing (`serve`, `migrate --create`).
    Create,
    /// An existing database (`token …`, `backup`, `migrate`).
    Database,
    /// An existing data dir (`restore` brings the database).
    DataDir,
}

fn load_config(mut args: ServeArgs, needs: Needs) -> Result<Config, ExitCode> {
    args.common = args.common.with_system_config();
    let config = Config::load(&args).and_then(|c| {
        match needs {
            Needs::Create => c.prepare_dirs(),
            Needs::Database => c.require_existing(true),
            Needs::DataDir => c.require_existing(false),
        }
        .map(|()| c)
    });
    config.map_err(|e| {
        eprintln!("claude-manager: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// The settings of a subcommand that only needs the data dir and config file.
fn load_common(common: CommonArgs, needs: Needs) -> Result<Config, ExitCode> {
    load_config(
        ServeArgs {
            common,
            ..ServeArgs::default()
        },
        needs,
    )
}

/// Runs a backup, restore or reload with the data dir from the usual settings.
fn copy_db<E: std::fmt::Display>(
    common: CommonArgs,
    needs: Needs,
    op: impl FnOnce(&Config) -> Result<String, E>,
) -> ExitCode {
    let config = match load_common(common, needs) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match op(&config) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claude-manager: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn migrate(common: CommonArgs, create: bool) -> ExitCode {
    let needs = if create {
        Needs::Create
    } else {
        Needs::Database
    };
    let config = match load_common(common, needs) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match open_database(&config) {
        Ok(pool) => {
            let version: Result<u32, _> = pool.get().map_err(|e| e.to_string()).and_then(|c| {
                c.pragma_query_value(None, "user_version", |r| r.get(0))
                    .map_err(|e| e.to_string())
            });
            match version {
                Ok(v) => println!(
                    "database {} is at schema version {v}",
                    config.db_path().display()
                ),
                Err(e) => println!("database {} migrated ({e})", config.db_path().display()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "claude-manager: database {}: {e}",
                config.db_path().display()
            );
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// How the serving loop ended.
enum Served {
    Exit(ExitCode),
    /// A reload: everything is handed over, exec the next image.
    Exec(handover::Prepared),
}

fn serve(args: ServeArgs) -> ExitCode {
    // First: a record that cannot be read closes every inherited fd before anything is opened.
    let inherited = handover::take_from_env();
    // Then what systemd's fd store kept across a crash (sorted by the start).
    handover::crash::take_from_env();
    let inherited_trees: Vec<_> = inherited.iter().flatten().flat_map(|i| i.trees()).collect();
    let config = match load_config(args, Needs::Create) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fd_limit = claude_manager::pty::env::raise_fd_limit();
    let mut logs = match logging::init(&LogSettings {
        level: config.log_level,
        dir: config.log_dir.clone(),
        max_bytes: config.log_max_bytes,
        backups: config.log_backups,
        stderr: std::io::stderr().is_terminal(),
    }) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "claude-manager: invalid setting log_dir = {:?}: cannot open log files ({e})",
                config.log_dir
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let log = logs.logger.clone();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .event_interval(EVENT_INTERVAL)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("claude-manager: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let served = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut sigterm, mut sighup) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(hup)) => (term, hup),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("claude-manager: cannot handle SIGTERM and SIGHUP: {e}");
                return Served::Exit(ExitCode::from(EXIT_RUNTIME));
            }
        };
        let mut server =
            match Server::start_with(config, log.clone(), logs.dropped(), inherited).await {
                Ok(s) => s,
                Err(e) => {
                    error!(log, "start failed"; "error" => %e);
                    handover::stop_inherited(&inherited_trees);
                    eprintln!("claude-manager: {e}");
                    let code = if matches!(e, StartError::Config(_)) {
                        EXIT_CONFIG
                    } else {
                        EXIT_RUNTIME
                    };
                    return Served::Exit(ExitCode::from(code));
                }
            };
        if let Some(token) = &server.first_admin_token {
            // Once, on stderr only (never the log files): the only copy of the secret.
            let base = server
                .state
                .config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", server.addr));
            eprintln!(
                "claude-manager: first start: created an admin token (shown only now; \
                 `claude-manager token reset-admin` makes a new one).\n\
                 claude-manager: log in at {base}/ with this token:\n\
                 claude-manager: admin token: {token}"
            );
        }
        info!(log, "open file limit"; "soft" => fd_limit);
        // Scripts and tests read the bound address from this line (the port may be 0 = any).
        println!("claude-manager listening on http://{}", server.addr);
        let notifier = Notifier::from_env();
        if let Err(e) = notifier.send(&format!(
            "READY=1\nSTATUS={}",
            notify::status_line(&server.state)
        )) {
            warn!(log, "systemd notify failed"; "error" => %e);
        }
        let watchdog = tokio::spawn(notify::watchdog(notifier.clone(), server.state.clone()));
        handover::write_status(&server.state).await;
        loop {
            tokio::select! {
                _ = sigterm.recv() => info!(log, "SIGTERM received"),
                _ = tokio::signal::ctrl_c() => info!(log, "SIGINT received"),
                _ = sighup.recv() => {
                    info!(log, "SIGHUP received: reloading");
                    match handover::begin(server, &notifier).await {
                        Ok(prepared) => {
                            watchdog.abort();
                            return Served::Exec(prepared);
                        }
                        Err(handover::Refused::ServeOn(s)) => {
                            server = *s;
                            continue;
                        }
                        Err(handover::Refused::Stopped) => {
                            watchdog.abort();
                            return Served::Exit(ExitCode::from(EXIT_RUNTIME));
                        }
                    }
                }
            }
            break;
        }
        watchdog.abort();
        let _ = notifier.send("STOPPING=1\nSTATUS=shutting down");
        // A second SIGTERM/SIGINT cuts the grace short: kill what is left, still exit 0.
        let last_resort = server.last_resort();
        let graceful = server.shutdown();
        tokio::pin!(graceful);
        tokio::select! {
            _ = &mut graceful => {}
            _ = sigterm.recv() => {
                warn!(log, "second SIGTERM: killing what is left");
                last_resort.run().await;
            }
            _ = tokio::signal::ctrl_c() => {
                warn!(log, "second SIGINT: killing what is left");
                last_resort.run().await;
            }
        }
        Served::Exit(ExitCode::SUCCESS)
    });
    // Bounded: blocking tasks still waiting on a pool checkout end at their timeout.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match served {
        Served::Exit(code) => {
            logs.flush();
            code
        }
        Served::Exec(prepared) => {
            prepared.exec_or_stop(&log, || logs.flush());
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
