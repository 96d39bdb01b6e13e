import type { Breaker } from "../breaker/breaker.js";
import type { Permit } from "../breaker/permit.js";
import type { ResolvedBreakerOptions } from "../breaker/options.js";
import type { CircuitOpenError } from "../errors.js";
import type { CircuitState } from "../breaker/types.js";
import type { Channel, Release } from "./channel.js";
import { Pipeline } from "./pipeline.js";
import { FAILED } from "./store-call.js";
import { type Entry, type Registry, type Report, Replica } from "./replica.js";
import type { BreakerStore, ProbeLease } from "./store.js";

/** What a half-open probe needs of its call (the core's `Call`). */
export interface ProbeCall {
  /** Sends the call through `breaker` on `permit`. */
  send(breaker: Breaker, permit: Permit): Promise<Response>;
  /** Asks the breaker again: a refusal brought news of a close, so a closed-state call. */
  decide(entry: Entry): Promise<Response>;
  /** Refuses the call with `error`. */
  refuse(entry: Entry, error: CircuitOpenError): Promise<Response>;
}

/**
 * Takes a shared half-open probe slot: a release function, or, when another context holds
 * every slot, the epoch ms until which it may (a refused call's `retryAt`).
 */
export type ProbeGate = (key: string) => Promise<Release | number>;

/** The instance options shared state reads (a slice of `createCbFetch`'s, resolved). */
export interface SharedOptions {
  readonly store: BreakerStore | undefined;
  /** The channel name, or `undefined` when sync is off. */
  readonly sync: string | undefined;
  /** How long a new instance waits for its peers' state (0: not at all). */
  readonly syncWaitMs: number;
  /** How long a call waits for shared state: a key's stored record, a probe lease. */
  readonly loadTimeoutMs: number;
  readonly maxBreakers: number;
  readonly breaker: ResolvedBreakerOptions;
}

interface LeasingStore extends BreakerStore {
  acquireProbe(key: string, leaseMs: number): Promise<ProbeLease>;
}

/**
 * Breaker state shared beyond one instance: the store (reloads, cold starts) and the
 * cross-tab channel, around one replica of the shared records. `createCbFetch` loads this
 * module only when `store` or `sync` is set, so an app using neither does not carry its code.
 */
export class SharedState {
  /** Resolves once `loadAll` and the cross-tab join are done; never rejects. */
  readonly ready: Promise<unknown>;
  /** Where several contexts share a breaker: a Durable Object lease, or a Web Lock. */
  readonly probeGate: ProbeGate | undefined;
  readonly #replica: Replica;
  readonly #pipeline: Pipeline | undefined;
  readonly #channel: Channel | undefined;
  readonly #leave: () => void;

  /**
   * `Sync`: the cross-tab channel's class, loaded apart (Workers bundles leave it out); `wait`:
   * the `setTimeout` of the instance's creation, for the channel's join wait.
   */
  constructor(
    config: SharedOptions,
    registry: Registry,
    report: Report,
    Sync?: typeof Channel,
    wait?: typeof setTimeout,
  ) {
    const { store, sync } = config;
    const { halfOpenMaxProbes, probeTimeoutMs, maxOpenMs, clock } = config.breaker;
    const replica = new Replica(registry, report, clock);
    const pipeline =
      store && new Pipeline(store, replica, { maxRecords: config.maxBreakers, idleMs: maxOpenMs });
    const channel =
      sync === undefined || Sync === undefined
        ? undefined
        : new Sync(sync, replica, config.syncWaitMs, wait);
    replica.share = (entry) => {
      pipeline?.schedule(entry);
      channel?.post(entry);
    };
    this.#replica = replica;
    this.#pipeline = pipeline;
    this.#channel = channel;
    this.ready = Promise.all([pipeline?.ready, channel?.joined]);
    if (pipeline && typeof (store as Partial<LeasingStore>).acquireProbe === "function") {
      const lease = { leaseMs: probeTimeoutMs, waitMs: config.loadTimeoutMs };
      this.probeGate = leaseGate(store as LeasingStore, pipeline, replica, lease);
    } else if (channel !== undefined) {
      this.probeGate = async (key) =>
        (await channel.acquireProbe(key, halfOpenMaxProbes, probeTimeoutMs)) ??
        clock.now() + probeTimeoutMs;
    }
    this.#leave = followPageLifecycle(registry, channel);
  }

  /**
   * A half-open probe where several contexts share a breaker: it also needs one of the shared
   * probe slots, a Durable Object lease (Workers) or a Web Lock (tabs). Here rather than in the
   * core: only instances with a store or sync get here.
   */
  async probe(call: ProbeCall, entry: Entry, permit: Permit): Promise<Response> {
    const { breaker } = entry;
    let release: (() => void) | number;
    try {
      release = await this.probeGate!(breaker.key);
    } catch {
      // The coordination layer is down: probe on this context's own permit.
      release = () => {};
    }
    // Another context is probing (until `release` at the latest): a refusal like any other.
    if (typeof release === "number") {
      // Unless the refusal brought news that the origin works: then a closed-state call (the
      // probe permit, stale since that close, is dropped uncounted: this is one call).
      if (breaker.state === "closed") return call.decide(entry);
      return call.refuse(entry, breaker._refuse(permit, release));
    }
    try {
      return await call.send(breaker, permit);
    } finally {
      release();
    }
  }

  /** A local transition of `entry`: stored and sent to the other tabs if its record changed. */
  changed(entry: Entry, from: CircuitState, to: CircuitState): void {
    if (this.#replica.applying) return;
    if (this.#replica.changed(entry, from, to)) this.#replica.share(entry);
  }

  /** Loads the stored state of `entry`, after the other tabs' answer. */
  load(entry: Entry): Promise<unknown> {
    return Promise.all([this.#channel?.joined, this.#pipeline?.load(entry)]);
  }

  /** Writes pending changes now. */
  flush(): Promise<void> | undefined {
    return this.#pipeline?.flush();
  }

  /** Closes the channel; flushes and closes the store. */
  close(): Promise<void> | undefined {
    this.#leave();
    this.#channel?.close();
    return this.#pipeline?.close();
  }
}

/**
 * The page lifecycle, in a browser: a page going into the back/forward cache (or frozen) lets
 * go of its channel and locks, so nothing of cbfetch's keeps it out of the cache; one that is
 * restored (or resumed) rejoins its peers and looks its keys up again (peers' answers, the
 * store) before their next call, so an open decided while it was away is in force at once.
 * Returns what removes the listeners.
 */
function followPageLifecycle(registry: Registry, channel: Channel | undefined): () => void {
  const page = globalThis as Partial<EventTarget>;
  const document = globalThis.document as Document | undefined;
  if (typeof page.addEventListener !== "function") return () => {};
  const away = (event: Event) => {
    if (event.type === "freeze" || (event as PageTransitionEvent).persisted) channel?.suspend();
  };
  const back = (event: Event) => {
    if (event.type === "pageshow" && !(event as PageTransitionEvent).persisted) return;
    channel?.rejoin();
    for (const entry of registry.values()) {
      entry.loaded = false;
      entry.hydrating = undefined;
    }
  };
  page.addEventListener("pagehide", away);
  page.addEventListener("pageshow", back);
  document?.addEventListener("freeze", away);
  document?.addEventListener("resume", back);
  return () => {
    page.removeEventListener?.("pagehide", away);
    page.removeEventListener?.("pageshow", back);
    document?.removeEventListener("freeze", away);
    document?.removeEventListener("resume", back);
  };
}

/**
 * Probe leases from a store (a Durable Object): a refused context adopts the record the object
 * sent and remembers until when the probe is taken, so its refused calls make no further call.
 * The lease call waits at most `waitMs` (the request is waiting), and none is made while the
 * key's store calls fail: then this context probes on its own permit (local breaking).
 */
function leaseGate(
  store: LeasingStore,
  pipeline: Pipeline,
  replica: Replica,
  { leaseMs, waitMs }: { leaseMs: number; waitMs: number },
): ProbeGate {
  const refused = new Map<string, number>();
  // A lease granted after this context gave up waiting for it: given back at once.
  const giveBack = (late: ProbeLease) => late.granted && late.release();
  return async (key) => {
    const now = replica.clock.now();
    const until = refused.get(key);
    if (until !== undefined && now < until) return until;
    refused.delete(key);
    const acquire = () => store.acquireProbe(key, leaseMs);
    const lease = await pipeline.ask(key, acquire, waitMs, giveBack);
    if (lease === FAILED) return () => {};
    const entry = replica.registry.peek(key);
    if (lease.granted) {
      // The probe's outcome ends the lease: the write of that change (sent now, so the store
      // ends the lease with it), or, with no change to write, the release, which carries the
      // record. Either way the object knows a failed probe before another isolate may probe.
      return () => {
        void pipeline.flush();
        lease.release(entry && replica.recordOf(entry));
      };
    }
    if (lease.record !== undefined) replica.apply(lease.record, "Durable Object", key);
    if (refused.size >= 1024) refused.clear(); // bounded: a few keys are half-open at once
    refused.set(key, lease.until);
    return lease.until;
  };
}

/** What the shared state reads of its instance's core, and where it puts itself. */
export interface SharingCore {
  readonly config: SharedOptions;
  readonly registry: Registry;
  report: Report;
  /** The cross-tab channel's code, where `sync` is set (and the platform has BroadcastChannel). */
  readonly parts: { readonly channel?: { readonly Channel: typeof Channel } | undefined };
  /** The `setTimeout` of the instance's creation (for the channel's join wait). */
  readonly wait: typeof setTimeout;
  shared: SharedState | undefined;
  /** Changes made before this code was in, in order: they are stored and sent now. */
  unshared: Array<[Entry, CircuitState, CircuitState]> | undefined;
}

/** Hooks shared state into a fetch instance (which loads this part for `store` or `sync`). */
export function install(core: SharingCore): void {
  const { config, registry, report, wait } = core;
  const shared = new SharedState(config, registry, report, core.parts.channel?.Channel, wait);
  core.shared = shared;
  for (const [entry, from, to] of core.unshared ?? []) shared.changed(entry, from, to);
  core.unshared = undefined;
}
