import type { BreakerRecord } from "../shared/record.js";
import type { BreakerStore, ProbeLease } from "../shared/store.js";
import type {
  CircuitBreakerStub,
  DurableObjectNamespaceLike,
  DurableObjectStoreOptions,
} from "./types.js";

/** A store that can also lease the half-open probe across every isolate. */
export interface ProbeLeasingStore extends BreakerStore {
  /** A lease with its release function, or a refusal saying until when (with the record). */
  acquireProbe(key: string, leaseMs: number): Promise<ProbeLease>;
}

type KeepAlive = (work: Promise<unknown>) => void;
let runtimeKeepAlive: KeepAlive | undefined;

/** Set by the Durable Object's module: `waitUntil` from `cloudflare:workers`. @internal */
export function keepAliveWith(waitUntil: KeepAlive): void {
  runtimeKeepAlive = waitUntil;
}

/**
 * A {@link BreakerStore} on {@link CircuitBreakerObject}s: one object per key (or per key and
 * location with `scope: "colo"`). Loads and reports are RPC calls, made only for a key's first
 * call in an isolate and for changes, never for a healthy call. The object answers a report
 * with the record it holds, so an isolate learns what the others decided. A recovery costs two
 * calls: the probe lease, and the report of the probe's outcome, which also ends the lease
 * (a release call is made only when the probe changed nothing).
 */
export function durableObjectStore(
  namespace: DurableObjectNamespaceLike,
  options: DurableObjectStoreOptions = {},
): ProbeLeasingStore {
  const { scope = "global", colo = "unknown", waitUntil, locationHint } = options;
  if (scope !== "global" && scope !== "colo") {
    throw new TypeError(`cbfetch: option "scope" must be "global" or "colo", got ${String(scope)}`);
  }
  const holder = Math.random().toString(36).slice(2, 12);
  /** Keys whose probe lease this isolate holds, with its end: the next report ends it. */
  const leases = new Map<string, number>();
  const keepAlive = (work: Promise<unknown>) => {
    try {
      (waitUntil ?? runtimeKeepAlive)?.(work);
    } catch {
      // Outside any request: nothing to extend.
    }
  };
  const where = locationHint === undefined ? undefined : { locationHint };
  const stub = (key: string) =>
    namespace.get(
      namespace.idFromName(scope === "colo" ? `${colo}|${key}` : key) as never,
      where,
    ) as CircuitBreakerStub;
  return {
    load: (key) => stub(key).load(key),
    save(record: BreakerRecord) {
      const until = leases.get(record.key);
      leases.delete(record.key);
      return stub(record.key).report(record, until === undefined ? undefined : { holder, until });
    },
    async acquireProbe(key, leaseMs) {
      const answer = await stub(key).acquireProbe(holder, leaseMs, key);
      if (answer?.granted === true) {
        const until = Number(answer.until);
        leases.set(key, until);
        // Unless a report has ended it. Best effort: if lost, the lease expires by itself.
        const release = (record?: BreakerRecord) => {
          if (leases.get(key) !== until) return;
          leases.delete(key);
          keepAlive(
            stub(key)
              .releaseProbe(holder, record, until)
              .catch(() => {}),
          );
        };
        return { granted: true, release };
      }
      const until = Number(answer?.until);
      return { granted: false, until: Number.isFinite(until) ? until : 0, record: answer?.record };
    },
    keepAlive,
  };
}
