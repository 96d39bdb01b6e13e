import type { BreakerRecord } from "../persist/record.js";
import type { BreakerStore } from "../persist/store.js";
import type {
  CircuitBreakerStub,
  DurableObjectNamespaceLike,
  DurableObjectStoreOptions,
} from "./types.js";

/** A store that can also lease the half-open probe across every isolate. */
export interface ProbeLeasingStore extends BreakerStore {
  /** A release function when this isolate may probe `key`, `undefined` when another one is. */
  acquireProbe(key: string, leaseMs: number): Promise<(() => void) | undefined>;
}

/**
 * A {@link BreakerStore} on {@link CircuitBreakerObject}s: one object per key (or per key and
 * location with `scope: "colo"`). Loads and reports are RPC calls, made only for a key's first
 * call in an isolate and for changes, never for a healthy call. The object answers a report
 * with the record it holds, so an isolate learns what the others decided.
 */
export function durableObjectStore(
  namespace: DurableObjectNamespaceLike,
  options: DurableObjectStoreOptions = {},
): ProbeLeasingStore {
  const { scope = "global", colo = "unknown" } = options;
  if (scope !== "global" && scope !== "colo") {
    throw new TypeError(`cbfetch: option "scope" must be "global" or "colo", got ${String(scope)}`);
  }
  const holder = Math.random().toString(36).slice(2, 12);
  const stub = (key: string) =>
    namespace.get(
      namespace.idFromName(scope === "colo" ? `${colo}|${key}` : key) as never,
    ) as CircuitBreakerStub;
  return {
    load: (key) => stub(key).load(),
    save: (record: BreakerRecord) => stub(record.key).report(record),
    async acquireProbe(key, leaseMs) {
      const object = stub(key);
      if (!(await object.acquireProbe(holder, leaseMs))) return undefined;
      // Best effort: if the release is lost, the lease expires by itself.
      return () => void object.releaseProbe(holder).catch(() => {});
    },
  };
}
