//! The systemd notify protocol, spoken directly over `$NOTIFY_SOCKET` (no libsystemd).
//!
//! `READY=1` once migrations ran and the port is bound, `STATUS=…` with session counts,
//! `WATCHDOG=1` at half of `$WATCHDOG_USEC`, `STOPPING=1` when shutdown begins. Without
//! `$NOTIFY_SOCKET` (not under systemd, or `Type=simple`) every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use crate::state::AppState;

/// Where to send notifications, if anywhere.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<PathBuf>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (honouring `$WATCHDOG_PID` when set).
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from);
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && pid_ok)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    pub fn disabled() -> Notifier {
        Notifier {
            socket: None,
            watchdog: None,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send `WATCHDOG=1`: half the interval systemd expects, as sd_notify(3) advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        self.watchdog.map(|w| w / 2)
    }

    /// Sends one notification; failures are returned for the caller to log (once).
    pub fn send(&self, state: &str) -> std::io::Result<()> {
        let Some(path) = &self.socket else {
            return Ok(());
        };
        let sock = UnixDatagram::unbound()?;
        let bytes = state.as_bytes();
        let path_bytes = path.as_os_str().as_encoded_bytes();
        if let Some(abstract_name) = path_bytes.strip_prefix(b"@") {
            // Abstract socket namespace ("@name"), as systemd may hand out.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
            sock.send_to_addr(bytes, &addr)?;
        } else {
            sock.send_to(bytes, path)?;
        }
        Ok(())
    }
}

/// What `systemctl status` shows.
pub fn status_line(state: &AppState) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let m = &state.metrics;
    format!(
        "serving; {} terminal sessions, {} agent sessions",
        m.sessions_terminals.load(Relaxed),
        m.sessions_agents.load(Relaxed)
    )
}

/// Pings systemd's watchdog at half its interval, with a fresh status line. Runs on the
/// runtime, so a wedged runtime stops the pings and systemd restarts the service.
pub async fn watchdog(notifier: Notifier, state: AppState) {
    let Some(interval) = notifier.watchdog_interval() else {
        return;
    };
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        let _ = notifier.send(&format!("WATCHDOG=1\nSTATUS={}", status_line(&state)));
    }
}
