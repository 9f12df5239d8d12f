//! `claude-manager token …`: create, list, revoke and reset API tokens, on the database directly
//! (part of the binary, `src/main.rs`; split out to keep that file short).

use std::process::ExitCode;

use clap::Subcommand;

use claude_manager::auth::{self, Scope};
use claude_manager::config::CommonArgs;

use super::{open_db_for, EXIT_CONFIG, EXIT_RUNTIME};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once (it is stored only hashed).
    Create {
        #[command(flatten)]
        common: CommonArgs,
        /// admin (everything) or monitor (detailed health and metrics only).
        #[arg(long, value_parser = ["admin", "monitor"])]
        scope: String,
        /// A label to recognise the token by in `token list`.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens (id, scope, name, dates); secrets are never shown.
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Revoke a token by id: it and its browser sessions stop working at once.
    Revoke {
        #[command(flatten)]
        common: CommonArgs,
        id: i64,
    },
    /// Revoke every admin token and print a new one (lost-token recovery).
    ResetAdmin {
        #[command(flatten)]
        common: CommonArgs,
    },
}

pub fn token(cmd: TokenCommand) -> ExitCode {
    let common = match &cmd {
        TokenCommand::Create { common, .. }
        | TokenCommand::List { common }
        | TokenCommand::Revoke { common, .. }
        | TokenCommand::ResetAdmin { common } => common.clone(),
    };
    let pool = match open_db_for(common) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("claude-manager: database: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result: Result<(), auth::AuthError> = (|| {
        match cmd {
            TokenCommand::Create { scope, name, .. } => {
                let scope = Scope::parse(&scope).unwrap_or(Scope::Monitor);
                let t = auth::issue_token(&conn, scope, &name)?;
                eprintln!(
                    "created {} token id {} (shown once; store it now):",
                    t.scope, t.id
                );
                println!("{}", t.secret);
            }
            TokenCommand::List { .. } => {
                let rows = claude_manager::db::auth::list_tokens(&conn)?;
                println!(
                    "{:<5} {:<8} {:<9} {:<25} {:<25} name",
                    "id", "scope", "state", "created", "last used"
                );
                for r in rows {
                    println!(
                        "{:<5} {:<8} {:<9} {:<25} {:<25} {}",
                        r.id,
                        r.scope,
                        if r.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        },
                        r.created_at,
                        r.last_used_at.as_deref().unwrap_or("-"),
                        r.name
                    );
                }
            }
            TokenCommand::Revoke { id, .. } => {
                if claude_manager::db::auth::revoke_token(&conn, id)? {
                    println!("token {id} revoked");
                } else {
                    return Err(auth::AuthError::NotFound(id));
                }
            }
            TokenCommand::ResetAdmin { .. } => {
                let (revoked, t) = auth::reset_admin(&mut conn)?;
                eprintln!(
                    "revoked {revoked} admin token(s); new admin token id {} (shown once; store it now):",
                    t.id
                );
                println!("{}", t.secret);
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (auth::AuthError::NotFound(_) | auth::AuthError::NameTooLong)) => {
            eprintln!("claude-manager: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            eprintln!("claude-manager: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
