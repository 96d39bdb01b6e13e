import type { Breaker, Permit, TransitionListener } from "../breaker/breaker.js";
import type { CircuitState, FailureKind } from "../breaker/types.js";
import { BulkheadFullError, type CircuitOpenError } from "../errors.js";
import type { Bulkhead } from "./bulkhead.js";
import type { keyedEntry } from "./key-of.js";
import type { Timeout } from "./timeout.js";
import { isRequest, methodOf, retryAfterMs, signalOf } from "./classify.js";
import { CircuitEvents } from "./events.js";
import { createJudge } from "./judge.js";
import { type StreamMark, streamBefore } from "./mistakes.js";
import { urlOf } from "./key.js";
import { resolveCbFetchOptions } from "./options.js";
import { type Entry, Registry } from "./registry.js";
import type { SharedState } from "../shared/shared-state.js";
import type { BreakerSnapshot, CbFetch, CbFetchOptions } from "./types.js";

type FetchInput = RequestInfo | URL;

/** How long close() waits for the store to take pending writes. */
const CLOSE_TIMEOUT_MS = 1000;
/** How long a first call waits for the store and sync code (loaded on demand) to arrive. */
const CODE_TIMEOUT_MS = 10_000;

/**
 * Creates a fetch with one circuit breaker per origin. The result has `fetch`'s signature
 * and never reads, clones or changes the request or the response; while an origin's circuit
 * is open it rejects with {@link CircuitOpenError} without touching the network.
 *
 * @throws TypeError or RangeError naming the option, when an option is invalid.
 */
export function createCbFetch(options: CbFetchOptions = {}): CbFetch {
  return create(options, loadChannel);
}

/** The cross-tab channel's code, for `sync`. */
const loadChannel: ChannelLoader = () => import("../shared/channel.js");
type ChannelLoader = () => Promise<typeof import("../shared/channel.js")>;

/**
 * {@link createCbFetch}, with the cross-tab channel's code from `channel`: the Workers
 * middleware passes none, so a Worker bundle leaves that code out (Workers have no tabs).
 * @internal
 */
export function create(options: CbFetchOptions, channel?: ChannelLoader): CbFetch {
  const config = resolveCbFetchOptions(options);
  // Read once into locals: a call then touches this closure instead of several option objects,
  // which matters when it runs cache-cold between real network round trips.
  const { keyOf, timeoutMs, isFailure, respectRetryAfter, loadTimeoutMs } = config;
  const { maxConcurrent } = config;
  const { clock, slowCallMs } = config.breaker;
  // Calls are timed only where a clock is read anyway: with `slowCallMs`, or while instrumented.
  let timed = false;
  let timers = 0;
  let metering: Promise<void> | undefined;
  const userFetch = config.fetch;
  const events = new CircuitEvents();
  // Signals cbfetch aborted on its own deadline (`timeoutMs`, `totalTimeoutMs`): a timeout,
  // however the signal reached fetch, never the caller's abort.
  const deadlines = new WeakSet<AbortSignal>();
  // Inits of retries (made by the retry loop): a refused retry gets no fallback.
  const retries = new WeakSet<object>();
  const onChange: TransitionListener = (breaker, from, to, cause) => {
    if (from !== to) {
      events.emit("statechange", {
        key: breaker.key,
        state: to,
        previousState: from,
        retryAt: breaker.retryAt,
      });
    }
    // A failure no call reports: an expired probe.
    if (cause) emitFailure(breaker, { kind: cause });
    const entry = config.persisted && registry.peek(breaker.key);
    if (!entry) return;
    if (shared !== undefined) shared.changed(entry, from, to);
    else unshared?.push([entry, from, to]);
  };
  const registry = new Registry(config, onChange);

  // What refused calls get instead of their error (`fallback`, `fallbackOrigins`), like the
  // bulkhead's code, loads only where it is used.
  const answering =
    config.fallback || config.fallbackOrigins
      ? import("./fallback.js").then(
          ({ fallbackAnswer }) => fallbackAnswer(config, registry, attempt, isRequest, methodOf),
          (error: unknown) => report("", error), // refused calls get their error
        )
      : undefined;

  // The bulkhead's and the timeout's code, like the store's, load only where they are used.
  const bulkheads = maxConcurrent === undefined ? undefined : import("./bulkhead.js");
  let TimeoutClass: typeof Timeout | undefined;
  let timeouts: Promise<unknown> | undefined =
    timeoutMs === undefined
      ? undefined
      : import("./timeout.js").then(
          (module) => (TimeoutClass = module.Timeout),
          (error: unknown) => {
            timeouts = undefined; // calls go without cbfetch's timeout
            report("", error);
          },
        );
  // The store and the cross-tab channel live in a module loaded only when one is set.
  let shared: SharedState | undefined;
  // Changes made before that module is in, in order.
  let unshared: Array<[Entry, CircuitState, CircuitState]> | undefined = [];
  const sharing: Promise<SharedState | undefined> | undefined = config.persisted
    ? Promise.all([
        import("../shared/shared-state.js"),
        config.sync === undefined ? undefined : channel?.(),
        // The channel's join wait runs on the timers of this moment: an instance made before
        // a test's fake timers waits in real time, not on a fake timer nobody advances.
        setTimeout,
      ]).then(
        ([{ SharedState }, sync, wait]) => {
          shared = new SharedState(config, registry, report, sync?.Channel, wait);
          for (const [entry, from, to] of unshared ?? []) shared.changed(entry, from, to);
          unshared = undefined;
          return shared;
        },
        (error: unknown) => {
          unshared = undefined;
          report("", error); // carry on in memory
          return undefined;
        },
      )
    : undefined;
  const ready = sharing && afterCode((state) => state.ready, "");

  const fetchImpl = () => userFetch ?? globalThis.fetch;

  // How a rejected fetch counts. In the core, not loaded on demand: it must be here before the
  // first failure (a dead uplink would make the page download it over the failing network).
  const judge = createJudge({
    networkErrors: config.networkErrors,
    networkCheck: config.networkCheck,
    clock,
    events,
    breakers: () => Array.from(registry.values(), (entry) => entry.breaker),
    fetch: fetchImpl,
  });
  // `keyOf`'s code, like the bulkhead's, loads only where it is used; if it cannot, origins.
  let keyed: typeof keyedEntry | undefined;
  const keying =
    keyOf &&
    import("./key-of.js").then(
      (module) => (keyed = module.keyedEntry),
      (error: unknown) => {
        report("", error);
        keyed = (_keyOf, _registry, url) => registry.forUrl(url);
      },
    );

  // Not async: the closed-state path then makes only the promise of `attempt`. A string URL
  // without `keyOf` takes the fewest calls: between real network round trips this code runs
  // cache-cold, where each extra function it passes through costs more than its instructions.
  function cb(input: FetchInput, init?: RequestInit): Promise<Response> {
    let url: string;
    let entry: Entry | undefined;
    if (typeof input === "string" && keyOf === undefined) {
      url = input;
      entry = registry.forUrl(input); // never throws
    } else {
      if (keying && keyed === undefined) return keying.then(() => cb(input, init));
      try {
        url = urlOf(input);
        entry = keyOf && keyed ? keyed(keyOf, registry, url, input, init) : registry.forUrl(url);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (entry === undefined) return passThrough(input, init);
    if (!entry.loaded) return afterLoad(entry, url, input, init);
    if (entry.bulkhead !== undefined) return withBulkhead(entry, entry.bulkhead, url, input, init);
    const permit = entry.breaker.allow();
    if (permit === undefined || permit.probe) return notClosed(entry, permit, url, input, init);
    return attempt(entry.breaker, permit, url, input, init);
  }

  /** A request cbfetch does not guard, as fetch makes it, but always as a promise. */
  function passThrough(input: FetchInput, init: RequestInit | undefined): Promise<Response> {
    try {
      return fetchImpl()(input, init);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A key's first call waits (at most `loadTimeoutMs`) for its stored state and for the other
   * tabs' answer: a reload or a new tab during an outage must not probe the origin again.
   */
  async function afterLoad(
    entry: Entry,
    url: string,
    input: FetchInput,
    init: RequestInit | undefined,
  ): Promise<Response> {
    entry.hydrating ??= hydrate(entry);
    await entry.hydrating;
    entry.loaded = true;
    if (entry.bulkhead !== undefined) return withBulkhead(entry, entry.bulkhead, url, input, init);
    return guarded(entry, url, input, init);
  }

  async function hydrate(entry: Entry): Promise<void> {
    const { key } = entry.breaker;
    await Promise.all([
      // A late answer is still applied when it comes (and merged).
      sharing && afterCode((state) => state.load(entry), key),
      bulkheads?.then(
        ({ Bulkhead }) => (entry.bulkhead ??= new Bulkhead(maxConcurrent ?? 1, config.maxQueue)),
        (error: unknown) => report(key, error), // calls go unlimited
      ),
    ]);
  }

  /**
   * Waits for the store and sync code (at most {@link CODE_TIMEOUT_MS}: it may come over a
   * slow network), then at most `loadTimeoutMs` for `load`: the stored state's bound does
   * not start counting before the code that reads it is in.
   */
  async function afterCode(load: (state: SharedState) => unknown, key: string): Promise<void> {
    if (shared === undefined) await within(sharing, CODE_TIMEOUT_MS, key, "loading store code");
    if (shared !== undefined)
      await within(load(shared), loadTimeoutMs, key, "loading stored state");
  }

  /** Waits for `loading`, but at most `ms` (then reports it and goes on). */
  async function within(loading: unknown, ms: number, key: string, what: string) {
    if (!(await settlesWithin(loading, ms))) {
      report(key, new Error(`cbfetch: ${what} took over ${ms} ms`));
    }
  }

  /** Reports a storage or channel problem as a `storeerror` event. */
  function report(key: string, error: unknown): void {
    const state = (key && registry.peek(key)?.breaker.state) || "closed";
    events.emit("storeerror", { key, state, error });
  }

  function withBulkhead(
    entry: Entry,
    bulkhead: Bulkhead,
    url: string,
    input: FetchInput,
    init: RequestInit | undefined,
  ): Promise<Response> {
    const { maxConcurrent, maxQueue } = bulkhead;
    return bulkhead.run(
      signalOf(input, init),
      () => guarded(entry, url, input, init),
      () => {
        const error = new BulkheadFullError(entry.breaker.key, maxConcurrent, maxQueue);
        return refuse(entry, url, input, init, error);
      },
    );
  }

  function guarded(entry: Entry, url: string, input: FetchInput, init: RequestInit | undefined) {
    const permit = entry.breaker.allow();
    if (permit === undefined || permit.probe) return notClosed(entry, permit, url, input, init);
    return attempt(entry.breaker, permit, url, input, init);
  }

  /** A call the breaker refused (no permit), or a half-open probe. */
  function notClosed(
    entry: Entry,
    permit: Permit | undefined,
    url: string,
    input: FetchInput,
    init: RequestInit | undefined,
  ): Promise<Response> {
    if (permit === undefined) return refuse(entry, url, input, init, entry.breaker.openError());
    // Where several contexts share a breaker, a probe also needs a shared slot.
    if (shared?.probeGate !== undefined) {
      return shared.probe(entry, permit, url, input, init, attempt, guarded, refuse);
    }
    return attempt(entry.breaker, permit, url, input, init);
  }

  // `.then` rather than an async function: one promise less per call, measurably cheaper.
  function attempt(
    breaker: Breaker,
    permit: Permit,
    url: string,
    input: FetchInput,
    init: RequestInit | undefined,
  ): Promise<Response> {
    // Only until its code has loaded: a key's first call waits for it (see `hydrate`).
    if (timeoutMs !== undefined && TimeoutClass === undefined && timeouts !== undefined) {
      return timeouts.then(() => attempt(breaker, permit, url, input, init));
    }
    const start = timed ? clock.now() : 0;
    let timeout: Timeout | undefined;
    let stream: StreamMark | undefined;
    let pending: Promise<Response>;
    try {
      // Only a call with a body can have a stream to note (a string URL alone has none).
      if (init !== undefined || typeof input !== "string") stream = streamBefore(input, init);
      if (timeoutMs === undefined || TimeoutClass === undefined) pending = fetchImpl()(input, init);
      else {
        timeout = new TimeoutClass(breaker.key, timeoutMs, signalOf(input, init), deadlines);
        pending = fetchImpl()(input, timeout.init(input, init));
      }
    } catch (error) {
      pending = Promise.reject(error); // a fetch that throws synchronously still rejects
    }
    return pending.then(
      (response) => {
        timeout?.settle(response);
        onResponse(breaker, permit, response, start);
        return response;
      },
      (error: unknown) => {
        timeout?.settle();
        const timedOut = timeout?.fired === true || ownDeadline(input, init);
        return onRejected(breaker, permit, url, input, init, error, timedOut, stream, start);
      },
    );
  }

  /** Whether the signal the call was given is one of cbfetch's deadlines that fired. */
  function ownDeadline(input: FetchInput, init: RequestInit | undefined): boolean {
    try {
      const signal = signalOf(input, init);
      return signal !== undefined && deadlines.has(signal);
    } catch {
      return false; // an init that throws: the caller's
    }
  }

  // Events fire only for outcomes the breaker counted, so they add up to its stats.
  function onResponse(breaker: Breaker, permit: Permit, response: Response, start: number) {
    const durationMs = timed ? clock.now() - start : undefined;
    let failed: boolean;
    try {
      failed = isFailure(response);
    } catch (error) {
      permit.release(); // the caller's isFailure threw: not the origin's doing
      throw error;
    }
    if (failed) {
      const status = response.status;
      let retryAt: number | undefined;
      if (respectRetryAfter && (status === 429 || status === 503)) {
        const delay = retryAfterMs(response.headers.get("retry-after"), Date.now());
        if (delay !== undefined) retryAt = clock.now() + delay;
      }
      if (permit.failure("status", retryAt)) {
        emitFailure(breaker, { kind: "status", status, durationMs, retryAt });
      }
      // With `slowCallMs`, calls are always timed.
    } else if (slowCallMs !== undefined && (durationMs as number) > slowCallMs) {
      const status = response.status;
      if (permit.failure("slow")) emitFailure(breaker, { kind: "slow", status, durationMs });
    } else if (permit.success() && events.wants("success")) {
      events.emit("success", { key: breaker.key, state: breaker.state, durationMs });
    }
  }

  /**
   * A rejected fetch: the caller gets its error as fetch gave it, at once; the permit settles
   * when the judge has decided whether it counts (at once, unless the network is being checked).
   */
  function onRejected(
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
    const durationMs = timed ? clock.now() - start : undefined;
    const settle = (counts: boolean) => {
      const kind = timedOut ? "timeout" : "error";
      if (!counts)
        permit.release(); // not the origin's doing
      else if (permit.failure(kind)) emitFailure(breaker, { kind, error, durationMs });
    };
    const verdict = judge.counts(breaker, url, input, init, timedOut, stream);
    if (typeof verdict === "boolean") settle(verdict);
    else void verdict.then(settle);
    throw error;
  }

  function emitFailure(
    breaker: Breaker,
    detail: {
      kind: FailureKind;
      status?: number;
      error?: unknown;
      durationMs?: number;
      retryAt?: number;
    },
  ) {
    events.emit("failure", { key: breaker.key, state: breaker.state, ...detail });
  }

  /** A refused call: an alternate origin or the fallback answers it, else it rejects with `error`. */
  async function refuse(
    entry: Entry,
    url: string,
    input: FetchInput,
    init: RequestInit | undefined,
    error: CircuitOpenError | BulkheadFullError,
  ): Promise<Response> {
    const { key } = entry.breaker;
    events.emit("reject", {
      key,
      state: entry.breaker.state,
      retryAt: (error as Partial<CircuitOpenError>).retryAt ?? entry.breaker.retryAt,
      error,
    });
    // A retry the breaker refuses ends the retry loop with its last real outcome instead.
    if (answering !== undefined && !retries.has(init as object)) {
      const answer = (await answering)?.(key, url, input, init, error);
      if (answer !== undefined) return answer;
    }
    throw error;
  }

  /**
   * Times every call until `stop()` (for good with `slowCallMs`); the breakers' stats then also
   * get the error rate and latency (their code loads now, on demand like the bulkhead's;
   * `ready` resolves once it has).
   */
  function timeCalls() {
    timers++;
    timed = true;
    const ready = (metering ??= import("./meter.js").then(
      ({ trackStats }) => trackStats(instance),
      (error: unknown) => report("", error),
    ));
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      timed = --timers > 0;
    };
    return { ready, stop };
  }

  /** A URL (absolute, or `/`- or `.`-relative) or a key, as the registry's key. */
  function keyForLookup(urlOrKey: string | URL): string {
    const text = String(urlOrKey);
    if (registry.peek(text) !== undefined) return text;
    const relative = text.startsWith("/") || text.startsWith(".");
    let url: URL;
    try {
      url = new URL(text, relative ? globalThis.location?.href : undefined);
    } catch {
      return text;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return text;
    return keyOf ? keyOf(new Request(url)) : url.origin;
  }

  async function close(): Promise<void> {
    judge.close();
    // A hung store must not hang close(): writes still pending after a while are dropped.
    const closing = sharing?.then((state) => state?.close());
    await within(closing, CLOSE_TIMEOUT_MS, "", "writing to the store on close()");
  }

  const api = {
    state(urlOrKey: string | URL): CircuitState {
      return registry.peek(keyForLookup(urlOrKey))?.breaker.state ?? "closed";
    },
    breaker(urlOrKey: string | URL): Breaker {
      return registry.get(keyForLookup(urlOrKey)).breaker;
    },
    snapshot(): BreakerSnapshot[] {
      return Array.from(registry.values(), ({ breaker }) => ({
        key: breaker.key,
        ...breaker.stats,
      }));
    },
    ready: ready ?? Promise.resolve(),
    _timeCalls: timeCalls,
    flush: async () => {
      await (await sharing)?.flush();
    },
    close,
    events,
    addEventListener: events.addEventListener.bind(events),
    removeEventListener: events.removeEventListener.bind(events),
    [Symbol.asyncDispose]: close,
    [Symbol.dispose](): void {
      void close();
    },
  };
  // Retries load only where they are used, like the bulkhead; calls wait for their code.
  const retrying: Promise<typeof cb> | undefined =
    config.retry &&
    Promise.all([import("../retry/retry.js"), keying]).then(
      ([{ retrier }]) =>
        retrier(config, cb, instance, { keyFor, urlOf, retryAfterMs, deadlines, retries }),
      (error: unknown) => (report("", error), cb), // calls go without retries
    );
  /** The key guarding a request, or `undefined` when it passes through (`keyOf` loaded). */
  function keyFor(url: string, input: FetchInput, init: RequestInit | undefined) {
    return (keyOf && keyed ? keyed(keyOf, registry, url, input, init) : registry.forUrl(url))
      ?.breaker.key;
  }
  const instance: CbFetch = Object.assign(
    retrying
      ? (input: FetchInput, init?: RequestInit) => retrying.then((call) => call(input, init))
      : cb,
    api,
  );
  if (slowCallMs !== undefined) timeCalls(); // for good
  return instance;
}

/** Whether `promise` settles within `ms` (its outcome is ignored); not a promise: true. */
async function settlesWithin(promise: unknown, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  const settled = await Promise.race([
    Promise.resolve(promise).then(
      () => true,
      () => true,
    ),
    timeout,
  ]);
  clearTimeout(timer);
  return settled;
}
