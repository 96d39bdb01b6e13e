import type { Breaker } from "../breaker/breaker.js";
import type { Permit } from "../breaker/permit.js";
import type { CircuitState, FailureKind } from "../breaker/types.js";
import { BulkheadFullError, type RefusalError } from "../errors.js";
import type { Entry, Registry } from "../keys/registry.js";
import type { Judge } from "../outcome/judge.js";
import { type StreamMark, streamBefore } from "../outcome/mistakes.js";
import { retryAfterMs } from "../outcome/status.js";
import { type FetchInput, initWith, isRequest, methodOf, signalOf, urlOf } from "../request.js";
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
  emitFailure(breaker: Breaker, detail: FailureDetail): void;
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

/**
 * One call through an instance, in the order of its steps: its key, the breaker's decision,
 * fetch ({@link send}), and the outcome ({@link answered}, {@link rejected}), which the breaker
 * counts (and tells the shared state about). The healthy path, a known key in the closed state,
 * runs through these plain functions and allocates nothing of its own; every other path (a
 * key's first call, the bulkhead, a probe, a refusal) goes through a {@link Call}, which keeps
 * what its steps need. Not async: a closed-state call makes one promise.
 */
export function call(
  core: Core,
  input: FetchInput,
  init: RequestInit | undefined,
): Promise<Response> {
  let url: string;
  let entry: Entry | undefined;
  const keyOf = core.config.keyOf;
  if (typeof input === "string" && keyOf === undefined) {
    entry = core.registry.forUrl((url = input)); // never throws
  } else {
    try {
      url = urlOf(input);
      const keyed = core.parts.keyOf;
      entry =
        keyOf && keyed
          ? keyed.keyedEntry(keyOf, core.registry, url, input, init)
          : core.registry.forUrl(url);
    } catch (error) {
      return Promise.reject(error); // the caller's: an invalid URL, a throwing keyOf
    }
  }
  if (entry === undefined) return passThrough(core, input, init);
  if (!entry.loaded || entry.bulkhead !== undefined) {
    return new Call(core, input, init, url).run(entry);
  }
  const { breaker } = entry;
  const permit = breaker.allow();
  if (permit === undefined)
    return new Call(core, input, init, url).refuse(entry, breaker.openError());
  if (permit.probe) return new Call(core, input, init, url).decided(entry, permit);
  return send(core, breaker, permit, url, input, init);
}

/** Sends a request through a breaker that admitted it; the outcome settles `permit`. */
export function send(
  core: Core,
  breaker: Breaker,
  permit: Permit,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
): Promise<Response> {
  const start = core.timed ? core.config.breaker.clock.now() : 0;
  const Timeout = core.parts.timeout?.Timeout;
  const timeoutMs = core.config.timeoutMs;
  let timeout: InstanceType<NonNullable<typeof Timeout>> | undefined;
  let stream: StreamMark | undefined;
  let pending: Promise<Response>;
  try {
    // Only a call with more than a string URL can have a stream body to note.
    if (init !== undefined || typeof input !== "string") stream = streamBefore(input, init);
    if (Timeout === undefined || timeoutMs === undefined) pending = core.fetch()(input, init);
    else {
      timeout = new Timeout(breaker.key, timeoutMs, signalOf(input, init), core.deadlines);
      pending = core.fetch()(input, initWith(init, timeout.fields(input, init)));
    }
  } catch (error) {
    pending = Promise.reject(error); // a fetch that throws synchronously still rejects
  }
  // `.then` rather than an async function: one promise less per call, measurably cheaper.
  return pending.then(
    (response) => {
      timeout?.settle(response);
      answered(core, breaker, permit, response, start);
      return response;
    },
    (error: unknown) => {
      timeout?.settle();
      const timedOut = timeout?.fired === true || ownDeadline(core, input, init);
      return rejected(core, breaker, permit, url, input, init, error, timedOut, stream, start);
    },
  );
}

/**
 * The origin answered: the status decides (`isFailure`), a 429/503 `Retry-After` opens the
 * circuit until then, a slow call counts with `slowCallMs`. Events fire only for outcomes the
 * breaker counted, so they add up to its stats.
 */
function answered(
  core: Core,
  breaker: Breaker,
  permit: Permit,
  response: Response,
  start: number,
): void {
  const { config, events } = core;
  const durationMs = core.timed ? config.breaker.clock.now() - start : undefined;
  let failed: boolean;
  try {
    failed = config.isFailure(response);
  } catch (error) {
    permit.release(); // the caller's isFailure threw: not the origin's doing
    throw error;
  }
  const slowCallMs = config.breaker.slowCallMs;
  if (failed) {
    // Read only now: each of a Response's getters is costly in undici (a brand check).
    const { status } = response;
    let retryAt: number | undefined;
    if (config.respectRetryAfter && (status === 429 || status === 503)) {
      const delay = retryAfterMs(response.headers.get("retry-after"), Date.now());
      if (delay !== undefined) retryAt = config.breaker.clock.now() + delay;
    }
    if (permit.failure("status", retryAt)) {
      core.emitFailure(breaker, { kind: "status", status, durationMs, retryAt });
    }
    // With `slowCallMs`, calls are always timed.
  } else if (slowCallMs !== undefined && (durationMs as number) > slowCallMs) {
    const { status } = response;
    if (permit.failure("slow")) core.emitFailure(breaker, { kind: "slow", status, durationMs });
  } else if (permit.success() && events.wants("success")) {
    events.emit("success", { key: breaker.key, state: breaker.state, durationMs });
  }
}

/**
 * fetch rejected: the caller gets its error as fetch gave it, at once; the permit settles when
 * the judge has decided whether it counts (at once, unless the network is being checked).
 */
function rejected(
  core: Core,
  breaker: Breaker,
  permit: Permit,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
  error: unknown,
  timedOut: boolean,
  stream: StreamMark | undefined,
  start: number,
): never {
  const durationMs = core.timed ? core.config.breaker.clock.now() - start : undefined;
  const settle = (counts: boolean) => {
    const kind = timedOut ? "timeout" : "error";
    if (!counts)
      permit.release(); // not the origin's doing
    else if (permit.failure(kind)) core.emitFailure(breaker, { kind, error, durationMs });
  };
  const verdict = core.judge.counts(breaker, url, input, init, timedOut, stream);
  if (typeof verdict === "boolean") settle(verdict);
  else void verdict.then(settle);
  throw error;
}

/** Whether the signal the call was given is one of cbfetch's deadlines that fired. */
function ownDeadline(core: Core, input: FetchInput, init: RequestInit | undefined): boolean {
  try {
    const signal = signalOf(input, init);
    return signal !== undefined && core.deadlines.has(signal);
  } catch {
    return false; // an init that throws: the caller's
  }
}

/** A request cbfetch does not guard (not http(s)), as fetch makes it, but always as a promise. */
function passThrough(core: Core, input: FetchInput, init: RequestInit | undefined) {
  try {
    return core.fetch()(input, init);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * A call off the healthy path: a key's first call (stored state, its bulkhead), the bulkhead's
 * queue, a half-open probe, a refusal (and what answers it instead: an alternate origin, the
 * fallback). It keeps the call's request, so no step hands it on.
 */
export class Call {
  constructor(
    readonly core: Core,
    readonly input: FetchInput,
    readonly init: RequestInit | undefined,
    /** The request's URL, as given (resolved only to find its key). */
    readonly url: string,
  ) {}

  /** From a known key on: its first call waits for it, the bulkhead queues, the breaker decides. */
  run(entry: Entry): Promise<Response> {
    if (!entry.loaded) return this.afterLoad(entry);
    if (entry.bulkhead !== undefined) return this.queue(entry);
    return this.decide(entry);
  }

  /**
   * A key's first call waits (at most `loadTimeoutMs`) for its stored state and for the other
   * tabs' answer: a reload or a new tab during an outage must not probe the origin again.
   */
  private async afterLoad(entry: Entry): Promise<Response> {
    entry.hydrating ??= this.core.hydrate(entry);
    await entry.hydrating;
    entry.loaded = true;
    return entry.bulkhead === undefined ? this.decide(entry) : this.queue(entry);
  }

  /** With `maxConcurrent`: waits for a slot (or is refused), then the breaker decides. */
  private queue(entry: Entry): Promise<Response> {
    const bulkhead = entry.bulkhead!;
    return bulkhead.run(
      signalOf(this.input, this.init),
      () => this.decide(entry),
      () =>
        this.refuse(
          entry,
          new BulkheadFullError(entry.breaker.key, bulkhead.maxConcurrent, bulkhead.maxQueue),
        ),
    );
  }

  /** The breaker's decision: a closed-state call, a half-open probe, or a refusal. */
  decide(entry: Entry): Promise<Response> {
    const permit = entry.breaker.allow();
    if (permit === undefined) return this.refuse(entry, entry.breaker.openError());
    return this.decided(entry, permit);
  }

  /** Admitted on `permit`: sent, once a probe has its shared slot (other tabs, isolates). */
  decided(entry: Entry, permit: Permit): Promise<Response> {
    const shared = this.core.shared;
    if (permit.probe && shared?.probeGate !== undefined) return shared.probe(this, entry, permit);
    return this.send(entry.breaker, permit);
  }

  /** Sends the call through `breaker` on `permit`. */
  send(breaker: Breaker, permit: Permit): Promise<Response> {
    return send(this.core, breaker, permit, this.url, this.input, this.init);
  }

  /**
   * A refused call: an alternate origin or the `fallback` answers it, else it rejects with
   * `error`. A retry the breaker refuses gets neither: the retry loop ends with its last real
   * outcome instead.
   */
  async refuse(entry: Entry, error: RefusalError): Promise<Response> {
    const { core } = this;
    const { breaker } = entry;
    core.events.emit("reject", {
      key: breaker.key,
      state: breaker.state,
      retryAt: (error as { retryAt?: number }).retryAt ?? breaker.retryAt,
      error,
    });
    const fallback = core.parts.fallback;
    if (fallback !== undefined && !core.retries.has(this.init as object)) {
      const answer = fallback.answer(this, error);
      if (answer !== undefined) return answer;
    }
    throw error;
  }

  /** The request's method, upper-cased. */
  get method(): string {
    return methodOf(this.input, this.init);
  }

  /** The caller's `Request`, or one made of the URL and init (for `fallback`). */
  request(): Request {
    const { input } = this;
    return isRequest(input)
      ? input
      : new Request(new URL(this.url, globalThis.location?.href), this.init);
  }

  /** The same call to `url` (the same path on an alternate origin), through `breaker` on `permit`. */
  sendTo(url: string, breaker: Breaker, permit: Permit): Promise<Response> {
    const { input, init } = this;
    return send(
      this.core,
      breaker,
      permit,
      url,
      isRequest(input) ? new Request(url, input) : url,
      init,
    );
  }
}
