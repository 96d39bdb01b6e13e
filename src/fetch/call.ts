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
 * fetch, and the outcome, which the breaker counts (and tells the shared state about). What a
 * step needs of the call is here, so no step hands it on.
 */
export class Call {
  /** The request's URL, as given (resolved only to find its key). */
  declare url: string;

  constructor(
    readonly core: Core,
    readonly input: FetchInput,
    readonly init: RequestInit | undefined,
  ) {}

  /** Finds the key, then the breaker decides. Not async: a closed-state call makes one promise. */
  run(): Promise<Response> {
    const { core, input, init } = this;
    if (!core.ready) return core.loading.then(() => this.run());
    let entry: Entry | undefined;
    const keyOf = core.config.keyOf;
    if (typeof input === "string" && keyOf === undefined) {
      entry = core.registry.forUrl((this.url = input)); // never throws
    } else {
      try {
        const url = (this.url = urlOf(input));
        const keyed = core.parts.keyOf;
        entry =
          keyOf && keyed
            ? keyed.keyedEntry(keyOf, core.registry, url, input, init)
            : core.registry.forUrl(url);
      } catch (error) {
        return Promise.reject(error); // the caller's: an invalid URL, a throwing keyOf
      }
    }
    if (entry === undefined) return this.passThrough();
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
    const { breaker } = entry;
    const permit = breaker.allow();
    if (permit === undefined) return this.refuse(entry, breaker.openError());
    // Where several contexts share a breaker, a probe also needs a shared slot.
    const shared = this.core.shared;
    if (permit.probe && shared?.probeGate !== undefined) return shared.probe(this, entry, permit);
    return this.send(breaker, permit);
  }

  /** Sends the request through a breaker that admitted it; the outcome settles `permit`. */
  send(breaker: Breaker, permit: Permit): Promise<Response> {
    const { core, input, init } = this;
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
        this.answered(breaker, permit, response, start);
        return response;
      },
      (error: unknown) => {
        timeout?.settle();
        const timedOut = timeout?.fired === true || this.ownDeadline();
        return this.rejected(breaker, permit, error, timedOut, stream, start);
      },
    );
  }

  /**
   * The origin answered: the status decides (`isFailure`), a 429/503 `Retry-After` opens the
   * circuit until then, a slow call counts with `slowCallMs`. Events fire only for outcomes
   * the breaker counted, so they add up to its stats.
   */
  private answered(breaker: Breaker, permit: Permit, response: Response, start: number): void {
    const { config, events } = this.core;
    const durationMs = this.core.timed ? config.breaker.clock.now() - start : undefined;
    let failed: boolean;
    try {
      failed = config.isFailure(response);
    } catch (error) {
      permit.release(); // the caller's isFailure threw: not the origin's doing
      throw error;
    }
    const { status } = response;
    const slowCallMs = config.breaker.slowCallMs;
    if (failed) {
      let retryAt: number | undefined;
      if (config.respectRetryAfter && (status === 429 || status === 503)) {
        const delay = retryAfterMs(response.headers.get("retry-after"), Date.now());
        if (delay !== undefined) retryAt = config.breaker.clock.now() + delay;
      }
      if (permit.failure("status", retryAt)) {
        this.core.emitFailure(breaker, { kind: "status", status, durationMs, retryAt });
      }
      // With `slowCallMs`, calls are always timed.
    } else if (slowCallMs !== undefined && (durationMs as number) > slowCallMs) {
      if (permit.failure("slow"))
        this.core.emitFailure(breaker, { kind: "slow", status, durationMs });
    } else if (permit.success() && events.wants("success")) {
      events.emit("success", { key: breaker.key, state: breaker.state, durationMs });
    }
  }

  /**
   * fetch rejected: the caller gets its error as fetch gave it, at once; the permit settles
   * when the judge has decided whether it counts (at once, unless the network is checked).
   */
  private rejected(
    breaker: Breaker,
    permit: Permit,
    error: unknown,
    timedOut: boolean,
    stream: StreamMark | undefined,
    start: number,
  ): never {
    const { core } = this;
    const durationMs = core.timed ? core.config.breaker.clock.now() - start : undefined;
    const settle = (counts: boolean) => {
      const kind = timedOut ? "timeout" : "error";
      if (!counts)
        permit.release(); // not the origin's doing
      else if (permit.failure(kind)) core.emitFailure(breaker, { kind, error, durationMs });
    };
    const verdict = core.judge.counts(breaker, this.url, this.input, this.init, timedOut, stream);
    if (typeof verdict === "boolean") settle(verdict);
    else void verdict.then(settle);
    throw error;
  }

  /** Whether the signal the call was given is one of cbfetch's deadlines that fired. */
  private ownDeadline(): boolean {
    try {
      const signal = signalOf(this.input, this.init);
      return signal !== undefined && this.core.deadlines.has(signal);
    } catch {
      return false; // an init that throws: the caller's
    }
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
    const { input } = this;
    const other = new Call(this.core, isRequest(input) ? new Request(url, input) : url, this.init);
    other.url = url;
    return other.send(breaker, permit);
  }

  /** A request cbfetch does not guard (not http(s)), as fetch makes it, but always as a promise. */
  private passThrough(): Promise<Response> {
    try {
      return this.core.fetch()(this.input, this.init);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
