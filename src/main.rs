//! The `claude-manager` command: `serve`, `migrate`.
//!
//! Exit codes: 0 success, 1 runtime failure (e.g. the port is taken), 2 bad settings or usage.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use slog::{error, info};

use claude_manager::app::{open_database, Server};
use claude_manager::config::{CommonArgs, Config, ServeArgs};
use claude_manager::logging::{self, LogSettings};

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
    Serve(ServeArgs),
    /// Apply the database schema and exit.
    Migrate(CommonArgs),
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Migrate(common) => migrate(common),
    }
}

fn load_config(args: &ServeArgs) -> Result<Config, ExitCode> {
    let config = Config::load(args).and_then(|c| c.prepare_dirs().map(|()| c));
    config.map_err(|e| {
        eprintln!("claude-manager: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn migrate(common: CommonArgs) -> ExitCode {
    let args = ServeArgs {
        common,
        ..ServeArgs::default()
    };
    let config = match load_config(&args) {
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

/// Each session holds a PTY master and each viewer a socket: the usual soft limit of 1024 fds
/// would cap the server far below `max_sessions`. Raising the soft limit to the hard one needs
/// no privilege. (Children inherit the raised limit, as under systemd's `LimitNOFILE`.)
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    raise_fd_limit();
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
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("claude-manager: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let code = runtime.block_on(async {
        let mut sigterm =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("claude-manager: cannot handle SIGTERM: {e}");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            };
        let server = match Server::start(config, log.clone(), logs.dropped()).await {
            Ok(s) => s,
            Err(e) => {
                error!(log, "start failed"; "error" => %e);
                eprintln!("claude-manager: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
        // Scripts and tests read the bound address from this line (the port may be 0 = any).
        println!("claude-manager listening on http://{}", server.addr);
        tokio::select! {
            _ = sigterm.recv() => info!(log, "SIGTERM received"),
            _ = tokio::signal::ctrl_c() => info!(log, "SIGINT received"),
        }
        server.shutdown().await;
        ExitCode::SUCCESS
    });
    // Bounded: blocking tasks still waiting on a pool checkout end at their timeout.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    logs.flush();
    code
}
