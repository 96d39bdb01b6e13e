import type { Breaker } from "../breaker/breaker.js";
import type { BreakerOptions, BreakerStats, CircuitState } from "../breaker/types.js";
import type { BulkheadFullError, CircuitOpenError, ThrottledError } from "../errors.js";
import type { BreakerStore } from "../shared/store.js";
import type { CircuitEvent, CircuitEventType } from "./events.js";

import type { RetryOptions } from "../retry/types.js";

export type { CircuitEventInit, CircuitEventType } from "./events.js";
export type { RetryBudgetOptions, RetryOptions, RetryReason } from "../retry/types.js";

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
   * Whether a network error (or cbfetch's own `timeoutMs`) counts against the origin at once
   * (`"count"`), or only once the network is shown to work (`"verify"`): another origin has
   * answered since the last network error elsewhere, or `networkCheck` answers. A browser's own
   * network sits between a page and the origin (offline, a dead uplink, a captive portal); a
   * server's does not.
   * @default `"verify"` in a page or a browser worker (there is a `document`, or the global scope
   * is a `WorkerGlobalScope`); `"count"` elsewhere (Node, Bun, Deno, workerd)
   */
  networkErrors?: "count" | "verify";
  /**
   * With `networkErrors: "verify"`: the URL checked (one `HEAD` request; an answer of any status
   * shows the network works) when a network error comes and no other origin has answered since
   * the last one elsewhere. At most one check per suspicion, none while `navigator.onLine` is
   * false. `false`: no check (an app whose only origin fails by network errors then does not
   * trip on them; its failing statuses still count).
   * @default the page's own origin, `location.origin + "/"` (no check for that origin itself)
   */
  networkCheck?: string | false;
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
   * Answers a call cbfetch refused (circuit open, half-open busy, bulkhead full, throttled)
   * instead of rejecting it. Not called for network errors or failing responses: those reach
   * the caller.
   * @default undefined (reject)
   */
  fallback?: (
    request: Request,
    error: CircuitOpenError | BulkheadFullError | ThrottledError,
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
   * state is still applied when it arrives); also how long a half-open probe waits for a
   * Durable Object's probe lease before probing on its own.
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
  /**
   * With `sync`: how long a new instance's first call (and `ready`) waits for the other tabs'
   * state, so a tab opened during an outage does not hit the origin. `0` waits on no timer:
   * for tests (a fake-timer test would otherwise have to advance time by this much).
   * @default 50
   */
  syncWaitMs?: number;
  /**
   * Retry failed idempotent requests, within a budget per key: a number is the `limit`. Each
   * attempt is an ordinary call through the breaker. See {@link RetryOptions}.
   * @default undefined (no retries: a drop-in fetch does not retry)
   */
  retry?: number | RetryOptions;
  /**
   * Bounds a call's attempts and the waits between them together, in milliseconds: past it,
   * the attempt in flight aborts with a `TimeoutError` and no wait or retry starts.
   * @default undefined (no bound beyond `timeoutMs` per attempt)
   */
  totalTimeoutMs?: number;
}

/** A breaker's stats with its key: one row of {@link CbFetch.snapshot}. */
export interface BreakerSnapshot extends BreakerStats {
  key: string;
  /** Retries made for this key (cbfetch's own and, with `cbfetch/ky`, ky's); with `retry` on. */
  retries?: number;
}

/** A listener of the instance's events: a function, or an object with `handleEvent`. */
export type CircuitListener =
  ((event: CircuitEvent) => void) | { handleEvent(event: CircuitEvent): void } | null;

/**
 * `addEventListener`'s options, as `EventTarget` takes them (declared here, so the types
 * compile with the DOM's and with the Workers' own).
 */
export interface CircuitListenerOptions {
  capture?: boolean;
  once?: boolean;
  passive?: boolean;
  signal?: AbortSignal;
}

// `Symbol.asyncDispose` and `Symbol.dispose` where the app's `lib` declares them (ES2022 alone
// does not): the instance has both at run time, and its type only where they can be named.
type AsyncDisposeKey = SymbolConstructor extends { readonly asyncDispose: infer K extends symbol }
  ? K
  : never;
type DisposeKey = SymbolConstructor extends { readonly dispose: infer K extends symbol }
  ? K
  : never;

/**
 * A fetch with a circuit breaker per origin, and the instance API. Also
 * `[Symbol.asyncDispose]()` (like `close()`) and `[Symbol.dispose]()`, for `await using`.
 */
export type CbFetch = CbFetchInstance & { [K in AsyncDisposeKey]: () => Promise<void> } & {
  [K in DisposeKey]: () => void;
};

/** {@link CbFetch} without its dispose methods. */
export interface CbFetchInstance {
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
   * Times every call until `stop()` (events' `durationMs`; stats' error rate and latency once
   * their code has loaded, when `ready` resolves), as `slowCallMs` does; `cbfetch/otel` calls
   * it. @internal
   */
  _timeCalls(): { ready: Promise<void>; stop(): void };
  /** Retries per key, for `snapshot()`: set by the retry budgets once an instance has them. @internal */
  _retries: ((key: string) => number) | undefined;
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
    listener: CircuitListener,
    options?: CircuitListenerOptions | boolean,
  ): void;
  removeEventListener(
    type: CircuitEventType,
    listener: CircuitListener,
    options?: { capture?: boolean } | boolean,
  ): void;
}
