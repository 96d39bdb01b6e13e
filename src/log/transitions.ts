import type { CircuitState } from "../breaker/types.js";
import type { CircuitEvent } from "../fetch/events.js";
import type { CbFetch } from "../fetch/types.js";

/**
 * Why a circuit changed state, as far as the instance's events tell:
 * - `trip`: a failed call made the policy open it (closed → open);
 * - `retry-after`: a failing 429 or 503 with `Retry-After` opened it until then;
 * - `probe-failed`: a half-open probe failed (half-open → open);
 * - `probe-timeout`: a half-open probe did not settle within `probeTimeoutMs`;
 * - `probe-succeeded`: enough probes succeeded (half-open → closed);
 * - `probe-due`: its `retryAt` passed and a call came (open → half-open);
 * - `external`: no call of this instance explains it: `forceOpen()`, `forceClose()` or
 *   `reset()`, or a state that came from another tab, the store or a Durable Object.
 */
export type TransitionReason =
  | "trip"
  | "retry-after"
  | "probe-failed"
  | "probe-timeout"
  | "probe-succeeded"
  | "probe-due"
  | "external";

/** One transition of one circuit, as plain data (one structured log line). */
export interface TransitionLine {
  /** The breaker's key (the origin, or what `keyOf` returned). */
  key: string;
  from: CircuitState;
  to: CircuitState;
  reason: TransitionReason;
  /** When the circuit admits a call again (epoch ms); `undefined` once closed. */
  retryAt: number | undefined;
}

/**
 * Calls `onLine` once per transition of `cb`'s circuits, with its reason. A transition fires
 * before the outcome of the call that caused it, in the same synchronous run, so each line
 * waits for the end of that run (a microtask) to learn its reason. Returns a function that
 * stops it.
 */
export function watchTransitions(cb: CbFetch, onLine: (line: TransitionLine) => void): () => void {
  let pending: TransitionLine[] = [];
  const flush = () => {
    const lines = pending;
    pending = [];
    for (const line of lines) {
      // Like a throwing event listener: reported, never thrown (in Node it would end the process).
      try {
        onLine(line);
      } catch (error) {
        ((globalThis as { reportError?: (error: unknown) => void }).reportError ?? console.error)(
          error,
        );
      }
    }
  };
  const onStateChange = (event: CircuitEvent) => {
    const from = event.previousState ?? "closed";
    const to = event.state;
    if (pending.length === 0) queueMicrotask(flush);
    const reason = from === "open" && to === "half-open" ? "probe-due" : "external";
    pending.push({ key: event.key, from, to, reason, retryAt: event.retryAt });
  };
  // The outcome that caused the last transition of its key in this run, if any.
  const onOutcome = (event: CircuitEvent) => {
    let line: TransitionLine | undefined;
    for (const candidate of pending) if (candidate.key === event.key) line = candidate;
    if (line === undefined || line.reason !== "external") return;
    if (event.type === "success") {
      if (line.to === "closed") line.reason = "probe-succeeded";
    } else if (line.to === "open") {
      if (event.kind === "probe-timeout") line.reason = "probe-timeout";
      else if (event.retryAt !== undefined) line.reason = "retry-after";
      else line.reason = line.from === "half-open" ? "probe-failed" : "trip";
    }
  };
  cb.addEventListener("statechange", onStateChange);
  cb.addEventListener("success", onOutcome);
  cb.addEventListener("failure", onOutcome);
  return () => {
    pending = []; // lines of this tick not yet flushed are dropped too
    cb.removeEventListener("statechange", onStateChange);
    cb.removeEventListener("success", onOutcome);
    cb.removeEventListener("failure", onOutcome);
  };
}
