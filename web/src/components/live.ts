// Keeping a page's data live: refetch when a relevant server event arrives, at most once per
// short window, so a burst (a run starting: execution.created, task.updated, execution.started…)
// costs one request, not one per event.

import { useEffect, useRef, useState } from "preact/hooks";
import { useEvents, type ServerEvent } from "../events";

/** How long a burst of events is gathered before the one refetch; short enough to feel live. */
const BURST_WINDOW_MS = 150;

/**
 * Calls `reload` after events for which `relevant(e)` is true, and after every (re)connect of the
 * events socket (events may have been missed while it was down). The first event of a burst
 * arms one timer; later ones in the window ride on it, so a steady stream cannot starve it.
 * With `minIntervalMs`, reloads are at least that far apart (for events that come steadily).
 */
export function useRefetchOn(relevant: (e: ServerEvent) => boolean, reload: () => void, minIntervalMs = 0) {
  const timer = useRef<number | undefined>(undefined);
  const last = useRef(0);
  const reloadRef = useRef(reload);
  reloadRef.current = reload;
  useEffect(() => () => window.clearTimeout(timer.current), []);
  useEvents((e) => {
    if (e.type !== "connected" && !relevant(e)) return;
    if (timer.current !== undefined) return;
    const wait = Math.max(BURST_WINDOW_MS, last.current + minIntervalMs - Date.now());
    timer.current = window.setTimeout(() => {
      timer.current = undefined;
      last.current = Date.now();
      reloadRef.current();
    }, wait);
  });
}

/**
 * Event types that change an execution's state or the set of live sessions. Not
 * `execution.updated`: a live terminal's activity tick (every 5 s), which changes only
 * `last_activity_at` and `bytes_out` — lists show neither, so they do not refetch for it.
 */
export const isExecutionChange = (e: ServerEvent) =>
  e.type === "execution.created" ||
  e.type === "execution.started" ||
  e.type === "execution.finished" ||
  e.type === "session.exited" ||
  e.type === "agent_session.restarting" ||
  e.type === "agent_session.failed";

export const isTaskChange = (e: ServerEvent) => e.type.startsWith("task.");
export const isAgentChange = (e: ServerEvent) => e.type.startsWith("agent.");

/**
 * True once `deletedType` (e.g. "task.deleted") arrives for `id`: the page then says so instead
 * of refetching into a 404.
 */
export function useDeleted(deletedType: string, id: string): boolean {
  const [gone, setGone] = useState(false);
  useEffect(() => setGone(false), [id]);
  useEvents((e) => {
    if (e.type === deletedType && String(e.data?.id) === id) setGone(true);
  });
  return gone;
}
