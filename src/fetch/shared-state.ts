import type { ResolvedCbFetchOptions } from "./options.js";
import { Persistence } from "./persistence.js";
import type { Entry, Registry } from "./registry.js";
import { type Report, Replica } from "./replica.js";
import { type Release, Sync } from "./sync.js";

/** Takes a shared half-open probe slot: a release function, or `undefined` when all are taken. */
export type ProbeGate = (key: string) => Promise<Release | undefined>;
type LeaseProbe = (key: string, leaseMs: number) => Promise<Release | undefined>;

/**
 * Breaker state shared beyond one instance: the store (reloads, cold starts) and the
 * cross-tab channel. `createCbFetch` loads this module only when `store` or `sync` is set, so
 * an app using neither does not carry its code.
 */
export class SharedState {
  /** Resolves once `loadAll` and the cross-tab join are done; never rejects. */
  readonly ready: Promise<unknown>;
  /** Where several contexts share a breaker: a Durable Object lease, or a Web Lock. */
  readonly probeGate: ProbeGate | undefined;
  readonly #replica: Replica;
  readonly #persistence: Persistence | undefined;
  readonly #sync: Sync | undefined;

  constructor(config: ResolvedCbFetchOptions, registry: Registry, report: Report) {
    const { store, sync: channel } = config;
    const { halfOpenMaxProbes, probeTimeoutMs } = config.breaker;
    const replica = new Replica(registry, report);
    const persistence = store && new Persistence(store, replica);
    const sync = channel === undefined ? undefined : new Sync(channel, replica);
    const leasing = (store as { acquireProbe?: unknown } | undefined)?.acquireProbe;
    this.#replica = replica;
    this.#persistence = persistence;
    this.#sync = sync;
    this.ready = Promise.all([persistence?.ready, sync?.joined]);
    this.probeGate =
      typeof leasing === "function"
        ? (key) => (leasing as LeaseProbe).call(store, key, probeTimeoutMs)
        : sync && ((key) => sync.acquireProbe(key, halfOpenMaxProbes, probeTimeoutMs));
  }

  /** A local change of `entry`: stored and sent to the other tabs (not if it came from them). */
  changed(entry: Entry, transition: boolean): void {
    if (this.#replica.applying) return;
    this.#replica.bump(entry);
    this.#persistence?.schedule(entry, transition);
    this.#sync?.post(entry);
  }

  /** Loads the stored state of `entry`, after the other tabs' answer. */
  load(entry: Entry): Promise<unknown> {
    return Promise.all([this.#sync?.joined, this.#persistence?.load(entry)]);
  }

  /** Writes pending changes now. */
  flush(): Promise<void> | undefined {
    return this.#persistence?.flush();
  }

  /** Closes the channel; flushes and closes the store. */
  close(): Promise<void> | undefined {
    this.#sync?.close();
    return this.#persistence?.close();
  }
}
