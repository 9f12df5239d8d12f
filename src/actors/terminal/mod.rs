//! The session actor: one per terminal (or agent) session, owner of its PTY and its viewers.
//!
//! ```text
//! reader task ──Output(chunk, permit)──▶ TerminalActor ──push──▶ ViewerQueue ──▶ socket task
//!   (reads the master continuously,        owns ReplayBuffer,                    (one per viewer)
//!    ≤ READS_IN_FLIGHT chunks unprocessed) viewers, size, exit state
//! waiter task ──ChildExited──▶           socket tasks ──input──▶ writer task (owns PtyWriter)
//! ```
//!
//! The reader never waits for a viewer, so a detached build is drained at full speed; the only
//! back-pressure on it is the semaphore of unprocessed chunks, which bounds this actor's mailbox.
//! The end of the session is decided by the waiter (the child exited), never by EOF on the master
//! (a background job may hold the tty forever): after the exit the reader gets a short, bounded
//! drain, then the execution is recorded and every viewer is told. The actor stays alive after
//! the exit so viewers can still read the output; the supervisor evicts it later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use nix::sys::signal::Signal;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use slog::{info, warn, Logger};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::db::Db;
use super::events::Events;
use super::lanes::{LaneTicket, Lanes};
use super::session_types::{Activity, SessionSpec};
use super::sessions::SessionsMsg;
use super::viewers::{CloseReason, Flow, ViewerQueue};
use crate::db::executions::ExecutionStatus;
use crate::lifecycle::{self, Lifecycle};
use crate::protocol::CLOSE_SESSION_GONE;
use crate::pty::{
    ChildKeeper, ExitInfo, ProcessTree, PtyReader, PtyResizer, SpawnedPty, WindowSize,
};
use crate::replay::ReplayBuffer;
use crate::screen::feeder::ScreenFeed;
use crate::screen::recording::Timeline;

mod handover;
mod input;
mod messages;
mod outcome;
mod viewing;

pub use handover::SessionHandover;
pub use input::{Input, InputClosed};
pub use messages::{AttachRefused, Attached, Catchup, ReplaySizes, TerminalMsg, ViewerMode};

/// Chunks read but not yet handled by the actor: bounds the mailbox to 16 reads of at most
/// [`crate::pty::READ_CHUNK_BYTES`] each.
const READS_IN_FLIGHT: usize = 16;
/// `last_activity_at` and `bytes_out` reach the DB at most this often (the issue: 5 s), and at
/// most this long after the output they describe.
const TOUCH_INTERVAL: Duration = Duration::from_secs(5);
/// How long shutdown waits for a SIGKILLed child to be reaped.
const REAP_AT_SHUTDOWN: Duration = Duration::from_secs(2);

/// Shared services and limits every session actor needs.
#[derive(Clone)]
pub struct SessionDeps {
    pub db: Db,
    pub events: Events,
    pub log: Logger,
    pub scrollback_bytes: usize,
    pub max_viewers: usize,
    pub viewer_queue_bytes: usize,
    /// Shared counter of bytes read from all PTYs (metrics).
    pub output_bytes: Arc<AtomicU64>,
    pub lifecycle: Lifecycle,
    /// Where sessions run (`lanes.rs`).
    pub lanes: Arc<Lanes>,
}

pub struct TerminalArgs {
    pub id: String,
    pub spec: SessionSpec,
    pub spawned: SpawnedPty,
    pub execution_id: i64,
    pub created_at: String,
    pub deps: Arc<SessionDeps>,
    pub supervisor: ActorRef<SessionsMsg>,
    /// Set once the outcome is recorded, so the supervisor's failure path does not record twice.
    pub recorded: Arc<AtomicBool>,
    /// Last output or input, shared with the supervisor for the reaper.
    pub activity: Arc<Activity>,
    /// The ring handed over by a reload (offsets go on); `None` starts an empty one.
    pub ring: Option<ReplayBuffer>,
    /// The lane the session runs on; `None` on the main runtime.
    pub lane: Option<LaneTicket>,
}

struct Viewer {
    queue: Arc<ViewerQueue>,
    mode: ViewerMode,
    /// The size this viewer last asked for.
    size: Option<WindowSize>,
    holds_size: Arc<AtomicBool>,
    /// Its device, as people say it ("Chrome on Android").
    client: String,
}

pub struct TerminalState {
    id: String,
    /// Boxed: it is big (argv, env, limits) and rarely read, and the state lives in the
    /// actor's task, whose size is rounded up to 128 bytes.
    spec: Box<SessionSpec>,
    execution_id: i64,
    created_at: String,
    deps: Arc<SessionDeps>,
    log: Logger,
    supervisor: ActorRef<SessionsMsg>,
    recorded: Arc<AtomicBool>,
    pid: i32,
    tree: ProcessTree,
    size: WindowSize,
    /// The viewer whose size the session has: the last read-write one to type or resize.
    size_by: Option<u64>,
    /// The device of the holder, once it has gone (a reload of its page, a dropped socket, a
    /// reload of the server): that device's next read-write viewer holds the size again, and
    /// until then no other viewer takes it by attaching.
    size_left_by: Option<Box<str>>,
    resizer: PtyResizer,
    input: Input,
    replay: ReplayBuffer,
    /// The viewers the reader waits for while they read and are behind (`viewers::Flow`).
    flow: Arc<Flow>,
    /// The session's screen, fed off the hot path (`src/screen`).
    screen: ScreenFeed,
    /// When output arrived, for the recording.
    timeline: Timeline,
    viewers: HashMap<u64, Viewer>,
    next_viewer: u64,
    last_activity: SystemTime,
    last_touch: Instant,
    /// A `TouchDue` is on its way: output came too soon after the last touch to record it then.
    touch_due: bool,
    exit: Option<ExitInfo>,
    /// When the child's exit was seen (the drain is measured from it).
    exited_at: Option<Instant>,
    /// When output was last read.
    last_output: Instant,
    output_ended: bool,
    stop_requested: bool,
    /// Stopped because the server shuts down: the outcome is `interrupted`, not `cancelled`.
    shutting_down: bool,
    /// Why the stop was asked for, recorded on the execution (`idle`); `None` for a user's DELETE.
    stop_reason: Option<String>,
    activity: Arc<Activity>,
    final_status: Option<ExecutionStatus>,
    finished_at: Option<String>,
    /// Reader and writer: aborted when the session ends.
    tasks: Vec<JoinHandle<()>>,
    /// Owns the child until it is reaped; awaited at shutdown so no zombie is left behind.
    waiter: Option<JoinHandle<()>>,
    /// Hands the child over instead of killing it (reload).
    keeper: ChildKeeper,
    /// Passed on to the next image: nothing of it is stopped or recorded here any more.
    handed_over: bool,
    /// The session's lane, counted there while its child runs; `None` on the main runtime.
    lane: Option<LaneTicket>,
}

pub struct TerminalActor;

impl Actor for TerminalActor {
    type Msg = TerminalMsg;
    type State = TerminalState;
    /// Boxed: ractor's task for the actor keeps its arguments for the actor's whole life.
    type Arguments = Box<TerminalArgs>;

    async fn pre_start(
        &self,
        me: ActorRef<TerminalMsg>,
        args: Box<TerminalArgs>,
    ) -> Result<TerminalState, ActorProcessingErr> {
        let args = *args;
        let SpawnedPty {
            reader,
            writer,
            child,
        } = args.spawned;
        let resizer = writer.resizer();
        let pid = child.pid();
        let tree = child.tree().clone();
        let keeper = child.keeper();
        let log = args.deps.log.new(slog::o!("session_id" => args.id.clone()));
        let (input, writer_task) = Input::start(writer, args.activity.clone());
        let waiter = {
            let me = me.clone();
            Some(lifecycle::spawn_waiter(child, log.clone(), move |exit| {
                let _ = me.cast(TerminalMsg::ChildExited(exit));
            }))
        };
        let replay = args
            .ring
            .unwrap_or_else(|| ReplayBuffer::new(args.deps.scrollback_bytes));
        let flow = Flow::new(replay.capacity());
        let reader_task = tokio::spawn(read_master(reader, me.clone(), flow.clone(), replay.end()));
        let tasks = vec![reader_task, writer_task];
        let mut spec = args.spec;
        let size_left_by = spec.size_held_by.take().map(String::into_boxed_str);
        let screen = ScreenFeed::start(spec.size.cols, spec.size.rows);
        if let Some(title) = spec.title.take() {
            screen.restore_title(&title);
        }
        Ok(TerminalState {
            id: args.id,
            size: spec.size,
            size_by: None,
            size_left_by,
            timeline: Timeline::new(spec.size.cols, spec.size.rows),
            screen,
            spec: Box::new(spec),
            execution_id: args.execution_id,
            created_at: args.created_at,
            replay,
            flow,
            deps: args.deps,
            log,
            supervisor: args.supervisor,
            recorded: args.recorded,
            pid,
            tree,
            resizer,
            input,
            viewers: HashMap::new(),
            next_viewer: 1,
            last_activity: SystemTime::now(),
            last_touch: Instant::now(),
            touch_due: false,
            exit: None,
            exited_at: None,
            last_output: Instant::now(),
            output_ended: false,
            stop_requested: false,
            shutting_down: false,
            stop_reason: None,
            activity: args.activity,
            final_status: None,
            finished_at: None,
            tasks,
            waiter,
            keeper,
            handed_over: false,
            lane: args.lane,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<TerminalMsg>,
        msg: TerminalMsg,
        state: &mut TerminalState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TerminalMsg::Output(chunk, permit) => {
                state.on_output(chunk, permit, &me);
            }
            TerminalMsg::TouchDue => {
                state.touch_due = false;
                let unrecorded = state.last_output > state.last_touch;
                if unrecorded && state.final_status.is_none() && !state.handed_over {
                    state.last_touch = Instant::now();
                    state.touch();
                }
            }
            TerminalMsg::OutputEnded => {
                state.output_ended = true;
                if state.exit.is_some() {
                    state.finalize().await;
                }
            }
            TerminalMsg::ChildExited(result) => {
                let exit = match result {
                    Ok(exit) => exit,
                    Err(why) => {
                        // Waiting failed: nothing more can be learned; record it as a failure.
                        warn!(state.log, "waiting for the child failed"; "error" => &why);
                        ExitInfo {
                            code: None,
                            signal: None,
                        }
                    }
                };
                state.exit = Some(exit);
                state.exited_at = Some(Instant::now());
                if state.output_ended {
                    state.finalize().await;
                } else {
                    me.send_after(lifecycle::DRAIN_QUIET, || TerminalMsg::DrainDeadline);
                }
            }
            TerminalMsg::DrainDeadline => {
                // A loaded machine may not have read the last output yet: wait while bytes are
                // still unread or arriving, so the recorded output keeps its tail.
                let draining = state.exited_at.is_some_and(|exited| {
                    lifecycle::keep_draining(
                        exited,
                        state.last_output,
                        state.resizer.unread_output(),
                    )
                });
                if draining && state.final_status.is_none() {
                    me.send_after(lifecycle::DRAIN_QUIET / 5, || TerminalMsg::DrainDeadline);
                } else {
                    state.finalize().await;
                }
            }
            TerminalMsg::Attach {
                mode,
                since,
                client,
                reply,
            } => {
                let _ = reply.send(state.attach(mode, since, client));
            }
            TerminalMsg::Detach(viewer) => {
                state.detached(viewer);
            }
            TerminalMsg::Catchup {
                viewer,
                from,
                reply,
            } => {
                let _ = reply.send(state.catchup(viewer, from));
            }
            TerminalMsg::Resize { viewer, size, take } => state.resize(viewer, size, take),
            TerminalMsg::Typed(viewer) => state.typed(viewer),
            TerminalMsg::Info(reply) => {
                let _ = reply.send(state.info());
            }
            TerminalMsg::Recording(reply) => {
                let ring = state.replay.read_from(state.replay.start());
                let _ = reply.send((state.timeline.clone(), ring));
            }
            TerminalMsg::Stop(reply) => {
                // "Exited" means recorded: a child that has exited but whose output is still
                // draining is neither signalled nor forgotten yet.
                let exited = state.final_status.is_some();
                state.begin_stop(&me);
                let _ = reply.send((state.info(), exited));
            }
            TerminalMsg::ShutdownStop => {
                if state.exit.is_none() && !state.stop_requested {
                    state.shutting_down = true;
                    state.stop_reason = Some("server shut down".into());
                    state.begin_stop(&me);
                }
            }
            TerminalMsg::StopFor(reason) => {
                if state.exit.is_none() && !state.stop_requested {
                    state.stop_reason = Some(reason);
                }
                state.begin_stop(&me);
            }
            TerminalMsg::HandOver(reply) => state.hand_over_begin(&me, reply).await,
            TerminalMsg::HandOverFinish(reply) => {
                // Boxed, as `finalize`: it runs once per session at most.
                let _ = reply.send(Box::pin(state.hand_over_finish()).await);
            }
            #[cfg(any(test, feature = "fault-injection"))]
            TerminalMsg::Panic => panic!("fault injection: session actor panicked"),
            TerminalMsg::Escalate(signal) => {
                if state.exit.is_none() {
                    lifecycle::stop_step(&me, signal, |s| state.signal(s), TerminalMsg::Escalate);
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _me: ActorRef<TerminalMsg>,
        state: &mut TerminalState,
    ) -> Result<(), ActorProcessingErr> {
        // Stopped while the child still runs: only server shutdown does that.
        if state.final_status.is_none() && !state.handed_over {
            state.signal(Signal::SIGHUP);
            state.signal(Signal::SIGKILL);
            if let Some(waiter) = state.waiter.take() {
                // SIGKILL cannot be ignored: the waiter reaps the child promptly.
                let _ = tokio::time::timeout(REAP_AT_SHUTDOWN, waiter).await;
            }
            state
                .record(
                    ExecutionStatus::Interrupted,
                    Some("server shut down".into()),
                )
                .await;
        }
        Ok(())
    }
}

/// Reads the master continuously, attached or not; at most [`READS_IN_FLIGHT`] unhandled chunks.
/// Waits only while a reading viewer is behind (`flow`); `read_end` is the output's end offset.
async fn read_master(
    mut reader: PtyReader,
    actor: ActorRef<TerminalMsg>,
    flow: Arc<Flow>,
    mut read_end: u64,
) {
    let permits = Arc::new(Semaphore::new(READS_IN_FLIGHT));
    loop {
        flow.wait_for_room(read_end).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        match reader.read_chunk().await {
            Ok(chunk) if !chunk.is_empty() => {
                read_end += chunk.len() as u64;
                if actor.cast(TerminalMsg::Output(chunk, permit)).is_err() {
                    return;
                }
            }
            _ => break,
        }
    }
    let _ = actor.cast(TerminalMsg::OutputEnded);
}

impl TerminalState {
    /// SIGHUP now, SIGTERM and SIGKILL later if the child is still there (DESIGN "Processes").
    fn begin_stop(&mut self, me: &ActorRef<TerminalMsg>) {
        if self.exit.is_none() && !self.stop_requested {
            self.stop_requested = true;
            info!(self.log, "stopping session"; "pid" => self.pid,
                  "reason" => self.stop_reason.as_deref().unwrap_or("requested"));
            lifecycle::stop_step(
                me,
                Signal::SIGHUP,
                |s| self.signal(s),
                TerminalMsg::Escalate,
            );
        }
    }

    fn on_output(
        &mut self,
        chunk: Bytes,
        permit: OwnedSemaphorePermit,
        me: &ActorRef<TerminalMsg>,
    ) {
        let offset = self.replay.end();
        self.replay.push(&chunk);
        self.deps
            .output_bytes
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        self.activity.touch();
        self.last_output = Instant::now();
        self.timeline
            .output(offset, self.last_output, self.replay.start());
        for viewer in self.viewers.values() {
            viewer.queue.push_data(offset, &chunk);
        }
        // After the viewers, and never waited for: the screen parses it beside the actor.
        self.screen
            .feed(offset, chunk, (self.size.cols, self.size.rows));
        drop(permit);
        self.last_activity = SystemTime::now();
        let since_touch = self.last_touch.elapsed();
        if since_touch >= TOUCH_INTERVAL {
            self.last_touch = Instant::now();
            self.touch();
        } else if !self.touch_due {
            // Recorded when the interval is up, even if nothing follows: the execution's
            // `last_activity_at` and `bytes_out`, and the tick that brings tabs up to date (a
            // title set by this output), are never left behind by output that then stops.
            self.touch_due = true;
            me.send_after(TOUCH_INTERVAL - since_touch, || TerminalMsg::TouchDue);
        }
    }

    fn signal(&self, signal: Signal) {
        if let Err(e) = self.tree.signal(signal) {
            warn!(self.log, "signalling the session failed"; "signal" => %signal, "error" => %e);
        }
    }
}

impl Drop for TerminalState {
    /// Runs even when the actor panicked (post_stop does not): no process group and no task
    /// outlives its session, and viewers are told to go.
    fn drop(&mut self) {
        if self.final_status.is_none() && !self.handed_over {
            self.signal(Signal::SIGKILL);
        }
        // The waiter is left to run: the SIGKILL above ends the child and the waiter reaps it.
        for task in &self.tasks {
            task.abort();
        }
        self.flow.clear();
        for viewer in self.viewers.values() {
            viewer.queue.close(CloseReason {
                code: CLOSE_SESSION_GONE,
                reason: "session ended on the server",
            });
        }
    }
}
