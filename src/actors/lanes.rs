//! Session lanes: threads of their own for the sessions' byte paths.
//!
//! Each lane is a single-threaded async runtime on a thread of its own. A session is put on the
//! lane that carries the fewest running sessions when it starts (or is adopted after a reload; a
//! session whose program has exited no longer counts), and everything on its byte path runs
//! there: its actor, the PTY's reader and writer, the child's waiter and its viewers' sockets.
//! A session that floods output then loads only its own lane: a keystroke on a session of
//! another lane is read, written to its PTY and echoed by a thread that was asleep, which the
//! kernel serves at once, instead of waiting behind the flood's tasks (docs/benchmarks.md, "Session lanes"). The HTTP API, the database and the supervisors
//! stay on the main runtime. With no lanes (`session_threads = 0`) sessions run on the main
//! runtime, as they did before lanes existed.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{EnterGuard, Handle};
use tokio::sync::oneshot;
use tokio::task::JoinError;

/// How many tasks a busy runtime (a lane, the main one) runs between two looks at its sockets and
/// PTYs (tokio's default is 61). While one session floods, a keystroke on another is then seen
/// sooner: echo p50 during a flood 314 µs against 414 µs, with no change in throughput or idle
/// echo (docs/benchmarks.md, "One worker thread").
pub const EVENT_INTERVAL: u32 = 8;
/// How long a lane's runtime waits for its blocking tasks (the screen's parse) at shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

struct Lane {
    handle: Handle,
    sessions: Arc<AtomicUsize>,
    /// Dropped with the lanes, which ends the lane's thread.
    _stop: oneshot::Sender<()>,
}

/// The lanes of one server; empty when sessions run on the main runtime.
pub struct Lanes {
    lanes: Vec<Lane>,
}

/// A session's place on a lane: counted there until it leaves (its child has exited) or is
/// dropped (with the session's actor state).
pub struct LaneTicket {
    handle: Handle,
    sessions: Arc<AtomicUsize>,
    counted: bool,
}

impl Lanes {
    /// Starts `count` lanes (none: sessions run on the runtime that starts them), each a thread
    /// named `cm-lane-N` with its own runtime.
    pub fn start(count: usize) -> std::io::Result<Lanes> {
        let mut lanes = Vec::with_capacity(count);
        for n in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .event_interval(EVENT_INTERVAL)
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("cm-lane-{n}"))
                .spawn(move || {
                    // Returns when the lanes are dropped, the sender with them: the server has
                    // stopped its sessions.
                    let _ = runtime.block_on(stopped);
                    runtime.shutdown_timeout(SHUTDOWN_WAIT);
                })?;
            lanes.push(Lane {
                handle,
                sessions: Arc::new(AtomicUsize::new(0)),
                _stop: stop,
            });
        }
        Ok(Lanes { lanes })
    }

    /// The lane with the fewest running sessions (the first of equals), counted from now on;
    /// `None` when there are no lanes.
    pub fn pick(&self) -> Option<LaneTicket> {
        let lane = self
            .lanes
            .iter()
            .min_by_key(|lane| lane.sessions.load(Ordering::Relaxed))?;
        lane.sessions.fetch_add(1, Ordering::Relaxed);
        Some(LaneTicket {
            handle: lane.handle.clone(),
            sessions: lane.sessions.clone(),
            counted: true,
        })
    }
}

/// Runs `f` in `lane`'s runtime: a PTY's master or a child made there registers with the lane's
/// reactor. Without a lane, in the current one.
pub fn within<T>(lane: Option<&LaneTicket>, f: impl FnOnce() -> T) -> T {
    let _entered = lane.map(LaneTicket::enter);
    f()
}

/// Runs `start` on `lane`'s runtime, so that what it spawns (an actor's task) runs there; on
/// the calling task without a lane. `Err` when the lane's runtime has shut down.
pub async fn run_on<F>(lane: Option<Handle>, start: F) -> Result<F::Output, JoinError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match lane {
        Some(lane) => lane.spawn(start).await,
        None => Ok(start.await),
    }
}

impl LaneTicket {
    /// The lane's runtime.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// While the guard lives, what registers with a reactor (a PTY's master, a child) registers
    /// with the lane's, and `tokio::spawn` spawns there.
    pub fn enter(&self) -> EnterGuard<'_> {
        self.handle.enter()
    }

    /// No longer counted on the lane (the session's child has exited); it still runs there.
    pub fn leave(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for LaneTicket {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_goes_to_the_lane_with_the_fewest_and_leaves_it_once() {
        let lanes = Lanes::start(2).expect("lanes");
        let a = lanes.pick().expect("a lane");
        let b = lanes.pick().expect("a lane");
        assert!(
            !Arc::ptr_eq(&a.sessions, &b.sessions),
            "two sessions, two lanes"
        );
        let mut a = a;
        a.leave();
        let c = lanes.pick().expect("a lane");
        assert!(
            !Arc::ptr_eq(&c.sessions, &b.sessions),
            "the freed lane is the emptier one"
        );
        drop(a);
        assert_eq!(
            c.sessions.load(Ordering::Relaxed),
            1,
            "left once, not again when dropped"
        );
        assert!(Lanes::start(0).expect("no lanes").pick().is_none());
    }
}
