import type { Breaker, TransitionListener } from "../breaker/breaker.js";
import type { CircuitState } from "../breaker/types.js";
import { isRefusal } from "../errors.js";
import { originOf } from "../keys/key.js";
import { type Entry, Registry } from "../keys/registry.js";
import { createJudge } from "../outcome/judge.js";
import { isCallersMistake, refusedRedirect } from "../outcome/mistakes.js";
import { retryAfterMs } from "../outcome/status.js";
import { type FetchInput, initWith, isRequest, signalOf, urlOf } from "../request.js";
import { call } from "./call.js";
import type { Core } from "./core.js";
import { CircuitEvents } from "./events.js";
import { resolveCbFetchOptions } from "./options.js";
import { loadPart, noParts, type PartLoaders, type PartName, partsFor } from "./parts.js";
import type { BreakerSnapshot, CbFetch, CbFetchOptions } from "./types.js";

/** How long close() waits for the store to take pending writes. */
const CLOSE_TIMEOUT_MS = 1000;
/** How long calls wait for the parts their options ask for (they may come over a slow network). */
const CODE_TIMEOUT_MS = 10_000;

/** The core's helpers its parts use, handed over (see `Core.kit`). */
const KIT = {
  isRefusal,
  isCallersMistake,
  refusedRedirect,
  retryAfterMs,
  initWith,
  isRequest,
  signalOf,
  urlOf,
  originOf,
};

/**
 * A breaker-aware fetch (`createCbFetch`), with its parts had by `loaders` (see
 * {@link PartLoaders}). This module reaches no `import()`: `createCbFetch` of `cbfetch` hands
 * the lazy loaders (lazy.ts), the Workers middleware the same without the cross-tab channel,
 * and `cbfetch/sw` the modules themselves (a Service Worker may not use `import()`).
 * @internal
 */
export function create(options: CbFetchOptions, loaders: PartLoaders): CbFetch {
  const config = resolveCbFetchOptions(options);
  const events = new CircuitEvents();
  const onChange: TransitionListener = (breaker, from, to, cause) => {
    if (from !== to) {
      events.emit("statechange", {
        key: breaker.key,
        state: to,
        previousState: from,
        retryAt: breaker.retryAt,
      });
    }
    if (cause) core.emitFailure(breaker, { kind: cause }); // a failure no call reports
    const entry = config.persisted && registry.peek(breaker.key);
    if (!entry) return;
    if (core.shared !== undefined) core.shared.changed(entry, from, to);
    else core.unshared?.push([entry, from, to]);
  };
  const registry = new Registry(config, onChange);
  const breakers = () => Array.from(registry.values(), (entry) => entry.breaker);

  const core: Core = {
    config,
    registry,
    events,
    parts: noParts(),
    // How a rejected fetch counts: in the core, not loaded on demand, since it must be here
    // before the first failure (a dead uplink would make a page download it over the failing
    // network, and a Service Worker may not use `import()` at all). In a browser, its active
    // half (the check of a second place) is the `network` part, loaded at once below.
    judge: createJudge(config.networkErrors, breakers),
    ready: false,
    loading: Promise.resolve(),
    timed: false,
    shared: undefined,
    unshared: config.persisted ? [] : undefined,
    retrying: undefined,
    deadlines: new WeakSet(),
    retries: new WeakSet(),
    // The channel's join wait runs on the timers of this moment: an instance made before a
    // test's fake timers waits in real time, not on a fake timer nobody advances.
    wait: setTimeout,
    kit: KIT,
    fetch: () => config.fetch ?? globalThis.fetch,
    breakers,
    report(key, error) {
      const state = (key && registry.peek(key)?.breaker.state) || "closed";
      events.emit("storeerror", { key, state, error });
    },
    emitFailure(breaker, detail) {
      events.emit("failure", { key: breaker.key, state: breaker.state, ...detail });
    },
    // An attempt of the retry loop: past the retries, straight to the breaker.
    call: (input, init) =>
      core.ready ? call(core, input, init) : core.loading.then(() => call(core, input, init)),
    keyFor,
    hydrate,
  };

  /** Loads part `name`, then lets it hook itself in (see parts.ts). Never rejects. */
  const load = (name: PartName) =>
    loadPart(core.parts, loaders, name, (error) => core.report("", error));
  // Each part's `install` takes the core by the slice it reads (typed in the part's module).
  const install = (name: PartName) =>
    (core.parts[name] as { install?(core: Core, instance: CbFetch): void } | undefined)?.install?.(
      core,
      instance,
    );

  // The parts the options ask for load now; once all are in (or failed), each hooks itself
  // in, in the table's order. Calls wait for that, but no longer than CODE_TIMEOUT_MS.
  const names = partsFor(config);
  if (names.length === 0) core.ready = true;
  else {
    const installed = Promise.all(names.map(load)).then(() => {
      for (const name of names) install(name);
      core.unshared = undefined; // the shared state took them, or cannot load
    });
    core.loading = within(installed, CODE_TIMEOUT_MS, "", "loading cbfetch's parts").then(() => {
      core.ready = true;
    });
  }
  // The browser rule's active half: at once, off the calls' path (they never wait for it).
  const watching =
    config.networkErrors === "verify" ? load("network").then(() => install("network")) : undefined;
  const ready = Promise.all([watching, config.persisted && core.loading.then(afterShared)]).then(
    () => {},
  );

  /** Resolves once stored state is loaded and the other tabs answered (bounded). */
  async function afterShared(): Promise<void> {
    const { shared } = core;
    if (shared) await within(shared.ready, config.loadTimeoutMs, "", "loading stored state");
  }

  /** A key's first call: its bulkhead, and (at most `loadTimeoutMs`) its stored state. */
  async function hydrate(entry: Entry): Promise<void> {
    const Bulkhead = core.parts.bulkhead?.Bulkhead;
    if (Bulkhead) entry.bulkhead ??= new Bulkhead(config.maxConcurrent ?? 1, config.maxQueue);
    const { shared } = core;
    const { key } = entry.breaker;
    if (shared) await within(shared.load(entry), config.loadTimeoutMs, key, "loading stored state");
  }

  /** Waits for `pending`, but at most `ms` (then reports it and goes on). */
  async function within(pending: unknown, ms: number, key: string, what: string) {
    if (!(await settlesWithin(pending, ms))) {
      core.report(key, new Error(`cbfetch: ${what} took over ${ms} ms`));
    }
  }

  /** The key guarding a request, or `undefined` when it passes through. */
  function keyFor(url: string, input: FetchInput, init: RequestInit | undefined) {
    const { keyOf } = config;
    const keyed = core.parts.keyOf;
    const entry =
      keyOf && keyed ? keyed.keyedEntry(keyOf, registry, url, input, init) : registry.forUrl(url);
    return entry?.breaker.key;
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
    return config.keyOf ? config.keyOf(new Request(url)) : url.origin;
  }

  // Calls are timed only where a clock is read anyway: with `slowCallMs`, or while instrumented.
  let timers = 0;
  function timeCalls() {
    timers++;
    core.timed = true;
    const ready = core.parts.meter ? Promise.resolve() : load("meter").then(() => install("meter"));
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      core.timed = --timers > 0;
    };
    return { ready, stop };
  }

  async function close(): Promise<void> {
    core.judge.close();
    // A hung store must not hang close(): writes still pending after a while are dropped.
    const closing = core.loading.then(() => core.shared?.close());
    await within(closing, CLOSE_TIMEOUT_MS, "", "writing to the store on close()");
  }

  function cb(input: FetchInput, init?: RequestInit): Promise<Response> {
    if (!core.ready) return core.loading.then(() => cb(input, init));
    return core.retrying ? core.retrying(input, init) : call(core, input, init);
  }

  const instance: CbFetch = Object.assign(cb, {
    state(urlOrKey: string | URL): CircuitState {
      return registry.peek(keyForLookup(urlOrKey))?.breaker.state ?? "closed";
    },
    breaker(urlOrKey: string | URL): Breaker {
      return registry.get(keyForLookup(urlOrKey)).breaker;
    },
    snapshot(): BreakerSnapshot[] {
      const retries = instance._retries;
      return Array.from(registry.values(), ({ breaker }) => {
        const row: BreakerSnapshot = { key: breaker.key, ...breaker.stats };
        if (retries) row.retries = retries(breaker.key);
        return row;
      });
    },
    ready,
    _timeCalls: timeCalls,
    _retries: undefined,
    flush: async () => {
      await core.loading;
      await core.shared?.flush();
    },
    close,
    events,
    addEventListener: events.addEventListener.bind(events),
    removeEventListener: events.removeEventListener.bind(events),
    [Symbol.asyncDispose]: close,
    [Symbol.dispose](): void {
      void close();
    },
  });
  if (config.breaker.slowCallMs !== undefined) timeCalls(); // for good
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
