import type { Breaker } from "../breaker/breaker.js";
import type { Circuit } from "../breaker/circuit.js";
import type { CircuitState, FailureKind } from "../breaker/types.js";
import type { Entry, Registry } from "../keys/registry.js";
import type { Judge } from "../outcome/judge.js";
import type { FetchInput } from "../request.js";
import type { RetryCore } from "../retry/retry.js";
import type { SharedState } from "../shared/shared-state.js";
import type { CircuitEvents } from "./events.js";
import type { ResolvedCbFetchOptions } from "./options.js";
import type { Parts } from "./parts.js";

/**
 * What the calls of one instance share (made by `createCbFetch`), and what its parts read and
 * hook themselves into when they arrive (see parts.ts).
 */
export interface Core {
  readonly config: ResolvedCbFetchOptions;
  readonly registry: Registry;
  readonly events: CircuitEvents;
  readonly judge: Judge;
  /** The parts loaded so far (see parts.ts). */
  readonly parts: Parts;
  /** False until the parts the options ask for have loaded (or failed, or taken too long). */
  ready: boolean;
  /** Resolves when `ready` turns true. */
  loading: Promise<void>;
  /** Whether calls are timed: a clock read at each end (`slowCallMs`, or instrumented). */
  timed: boolean;
  /** The store and the other tabs, once that part is in. */
  shared: SharedState | undefined;
  /** Changes made before the shared state's part was in, in order; it takes them. */
  unshared: Array<[Entry, CircuitState, CircuitState]> | undefined;
  /** Where the instance's calls go once the retry part is in. */
  retrying: ((input: FetchInput, init?: RequestInit) => Promise<Response>) | undefined;
  /** Signals of cbfetch's own deadlines that fired: their aborts are timeouts. */
  readonly deadlines: WeakSet<AbortSignal>;
  /** Inits of retries (made by the retry loop): a refused one gets no fallback. */
  readonly retries: WeakSet<object>;
  /** The `setTimeout` of the instance's creation (the channel's join wait runs on it). */
  readonly wait: typeof setTimeout;
  /**
   * The core's helpers its parts use, handed over: a part that imported them would split them
   * into a chunk of their own, one more for every app to load.
   */
  readonly kit: RetryCore["kit"] & { originOf(url: string): string | undefined };
  /** The fetch that does the work. */
  fetch(): typeof fetch;
  /** Every breaker of the instance. */
  breakers(): Iterable<Breaker>;
  /** Reports a storage or channel problem as a `storeerror` event (`""`: the whole instance). */
  report(key: string, error: unknown): void;
  /** A failure no call reports (an expired probe), or a call's, as a `failure` event. */
  emitFailure(breaker: Circuit, detail: FailureDetail): void;
  /** One call, as the retry loop makes each attempt. */
  call(input: FetchInput, init?: RequestInit): Promise<Response>;
  /** The key guarding a request, or `undefined` when it passes through. */
  keyFor(url: string, input: FetchInput, init: RequestInit | undefined): string | undefined;
  /** Looks `entry`'s stored state up before its first call (bounded; never rejects). */
  hydrate(entry: Entry): Promise<void>;
}

/** What a `failure` event tells beside the key and state. */
export interface FailureDetail {
  kind: FailureKind;
  status?: number;
  error?: unknown;
  durationMs?: number;
  retryAt?: number;
}
