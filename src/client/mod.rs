//! `claude-manager ls|attach|new|run|logs`: a command-line client of a running server.
//!
//! The server is reached at `--url` (default `$CM_URL`, else `http://127.0.0.1:8000`) with the
//! token from `$CM_TOKEN` or the file named by `--token-file` — never from the command line,
//! where `ps` and shell history would show it. Exit codes are in [`ClientError::exit_code`] and
//! `docs/cli.md`.

pub mod api;
mod approve;
pub mod attach;
mod commands;
mod term;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use api::{Api, ClientError};

/// Where the server is and how to authenticate (every client subcommand takes these).
#[derive(Args, Clone, Debug)]
pub struct Connection {
    /// The server's base URL (http only; reach a remote server through an SSH tunnel).
    #[arg(long, env = "CM_URL", default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Read the API token from FILE (default: the `CM_TOKEN` environment variable).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// List terminal and agent sessions and recent agent runs (client of a running server).
    Ls {
        #[command(flatten)]
        conn: Connection,
        /// Print JSON (`{"sessions": [...], "runs": [...]}`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Attach this terminal to a session (Ctrl-] detaches; the session keeps running).
    Attach {
        #[command(flatten)]
        conn: Connection,
        /// The session id (from `ls` or `new`).
        id: String,
        /// Watch only: nothing typed is sent, the window size is left alone.
        #[arg(long)]
        ro: bool,
    },
    /// Start a terminal session (or an agent's session with --agent) and print its id.
    New {
        #[command(flatten)]
        conn: Connection,
        /// Start (or reuse) the live session of the agent with this name.
        #[arg(long, value_name = "NAME", conflicts_with_all = ["command", "cwd"])]
        agent: Option<String>,
        /// Working directory on the server (default: the server user's home).
        #[arg(long, value_name = "DIR")]
        cwd: Option<String>,
        /// A name shown in lists.
        #[arg(long)]
        name: Option<String>,
        /// Attach to the new session at once.
        #[arg(long, short)]
        attach: bool,
        /// The command and its arguments (default: the server user's login shell).
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Queue a headless agent run of a task and print the execution id.
    Run {
        #[command(flatten)]
        conn: Connection,
        /// The task id.
        task: i64,
        /// Run it with the agent of this name (default: the task's agent).
        #[arg(long, value_name = "NAME")]
        agent: Option<String>,
        /// Follow the run's events until it ends (like `logs`).
        #[arg(long, short)]
        follow: bool,
        /// With --follow: print each event as one JSON line.
        #[arg(long, requires = "follow")]
        json: bool,
    },
    /// Print an execution's output; an agent run's events are followed until it ends.
    Logs {
        #[command(flatten)]
        conn: Connection,
        /// The execution id.
        execution: i64,
        /// Print each run event as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// List agents' pending permission requests, or answer one (allow, or --deny).
    Approve {
        #[command(flatten)]
        conn: Connection,
        /// The approval id (from the list); without it, the pending requests are listed.
        id: Option<i64>,
        /// Deny instead of allow.
        #[arg(long, requires = "id")]
        deny: bool,
        /// A message for the agent with the decision.
        #[arg(long, short, requires = "id")]
        message: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one client command; its errors are printed here, once, with what to do.
pub fn run(cmd: ClientCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("claude-manager: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(commands::dispatch(cmd));
    // Do not wait for the thread blocked reading stdin after a detach.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("claude-manager: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
