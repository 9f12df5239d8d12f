//! claude-manager: drive coding agents and shells on a Linux server from a browser.
//!
//! Where things are:
//! - `app` starts and stops a server; `config` and `logging` set it up.
//! - `auth/` is what a credential is (hashed tokens, scopes, login limiter, `redact_env`);
//!   `http/auth.rs` is the one guard that applies it in front of every route and WebSocket.
//! - `actors/` is the supervision tree (`supervisor.rs` shows who starts and restarts whom).
//! - `db/` holds the SQLite queries, run only by the DB actor on blocking threads.
//! - `http/` holds the routes, one file per resource, and the request envelope (`server.rs`).
//! - `client/` is the command-line client of a running server (`ls`, `attach`, `new`, `run`, `logs`).

pub mod actors;
pub mod agent_cli;
pub mod app;
pub mod approvals;
pub mod auth;
pub mod backup;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod git;
pub mod handover;
pub mod http;
pub mod isolation;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod permissions;
pub mod protocol;
pub mod pty;
pub mod push;
pub mod reconcile;
pub mod replay;
pub mod screen;
pub mod shutdown;
pub mod state;
pub mod time;
pub mod validate;
