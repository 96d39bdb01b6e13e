import type { Breaker } from "../breaker/breaker.js";
import type { BreakerOptions, BreakerStats, CircuitState, FailureKind } from "../breaker/types.js";
import type { BulkheadFullError, CircuitOpenError } from "../errors.js";
import type { BreakerStore } from "../shared/store.js";
import type { CircuitEvent } from "./events.js";

/** Options of {@link createCbFetch}: every breaker option, plus how requests are guarded. */
export interface CbFetchOptions extends BreakerOptions {
  /**
   * The fetch that does the work.
   * @default `globalThis.fetch`, looked up on every call (so later polyfills and test doubles apply)
   */
  fetch?: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  /**
   * Maps a request to its breaker key. Must return a string and must not read the body.
   * @default the request URL's origin (scheme, host and port)
   */
  keyOf?: (request: Request) => string;
  /**
   * Whether a response counts as a failure. Network errors and timeouts always do.
   * @default status 500, 502, 503, 504, 408 or 429
   */
  isFailure?: (response: Response) => boolean;
  /**
   * Abort a request with a `TimeoutError` when its response headers have not arrived after this
   * many milliseconds; counts as a failure.
   * @default undefined (no timeout of cbfetch's own)
   */
  timeoutMs?: number;
  /**
   * On a failing 429 or 503 with `Retry-After`, open the circuit until exactly then (clamped
   * to `maxOpenMs`).
   * @default true
   */
  respectRetryAfter?: boolean;
  /**
   * Most breakers kept at once; the least recently used goes first, so attacker-chosen URLs
   * cannot grow memory without bound.
   * @default 1000
   */
  maxBreakers?: number;
  /**
   * Most calls in flight per key; more wait in a queue of `maxQueue`, then fail with
   * {@link BulkheadFullError}.
   * @default undefined (no limit)
   */
  maxConcurrent?: number;
  /**
   * Calls that may wait for a `maxConcurrent` slot per key.
   * @default 0
   */
  maxQueue?: number;
  /**
   * Answers a call the circuit refused (open, half-open busy or bulkhead full) instead of
   * rejecting it. Not called for network errors or failing responses: those reach the caller.
   * @default undefined (reject)
   */
  fallback?: (
    request: Request,
    error: CircuitOpenError | BulkheadFullError,
  ) => Response | Promise<Response>;
  /**
   * Alternate origins per origin: when an origin's circuit refuses an idempotent request
   * (GET, HEAD, OPTIONS, PUT, DELETE), the same path is sent to the first alternate whose
   * breaker admits it.
   * @default undefined
   */
  fallbackOrigins?: Record<string, readonly string[]>;
  /**
   * Where breaker state survives reloads: `idbStore()` from `cbfetch/idb`, `memoryStore()`, or
   * your own {@link BreakerStore}. Only keys (origins) and numbers are stored.
   * @default undefined (state lives in this instance's memory only)
   */
  store?: BreakerStore;
  /**
   * How long a key's first call waits for its stored state before going on without it (the
   * state is still applied when it arrives).
   * @default 200
   */
  loadTimeoutMs?: number;
  /**
   * Share breaker state with the other tabs of this origin over the BroadcastChannel
   * `cbfetch:<name>` (`true` means `"default"`); half-open probes are then counted across all
   * tabs (Web Locks). Off where BroadcastChannel is missing.
   * @default false
   */
  sync?: boolean | string;
}

/** Fired by a {@link CbFetch} instance. Which fields are set depends on the type. */
export interface CircuitEventInit {
  key: string;
  state: CircuitState;
  previousState?: CircuitState;
  retryAt?: number;
  kind?: FailureKind;
  status?: number;
  error?: unknown;
  durationMs?: number;
}

/** Event types of a {@link CbFetch} instance. */
export type CircuitEventType = "statechange" | "reject" | "failure" | "success" | "storeerror";

/** A breaker's stats with its key: one row of {@link CbFetch.snapshot}. */
export interface BreakerSnapshot extends BreakerStats {
  key: string;
}

/** A fetch with a circuit breaker per origin, and the instance API. */
export interface CbFetch {
  /** Same signature and behaviour as `fetch`, but fails fast while the origin's circuit is open. */
  (input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /**
   * The state for a URL (absolute, or starting with `/` or `.` and resolved against
   * `location`) or a key; `"closed"` for one never seen. Never creates a breaker.
   */
  state(urlOrKey: string | URL): CircuitState;
  /** The breaker for a URL or key (created if new), for the manual API. */
  breaker(urlOrKey: string | URL): Breaker;
  /** Every known breaker as plain data. */
  snapshot(): BreakerSnapshot[];
  /** Resolves once persisted state is loaded; never rejects. */
  readonly ready: Promise<void>;
  /**
   * Times every call from now on (events' `durationMs`; stats' error rate and latency once
   * their code has loaded, when the promise resolves), as `slowCallMs` does; `cbfetch/otel`
   * calls it. @internal
   */
  _timeCalls(): Promise<void>;
  /**
   * Writes pending changes to the store now. In a Worker, pass it to `ctx.waitUntil` so writes
   * outlive the response (the Workers middleware does this for you).
   */
  flush(): Promise<void>;
  /** Flushes, then releases resources; afterwards the instance still works, in memory. */
  close(): Promise<void>;
  /** The instance's events; `cb.addEventListener` is the same target. */
  readonly events: EventTarget;
  addEventListener(
    type: CircuitEventType,
    listener: ((event: CircuitEvent) => void) | EventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ): void;
  removeEventListener(
    type: CircuitEventType,
    listener: ((event: CircuitEvent) => void) | EventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ): void;
  [Symbol.asyncDispose](): Promise<void>;
  [Symbol.dispose](): void;
}
