import type { CbFetchOptions } from "../fetch/types.js";

/** The slice of `DurableObjectState` the breaker object uses. */
export interface DurableObjectStateLike {
  storage: {
    get(key: string): Promise<unknown>;
    put(key: string, value: unknown): Promise<void>;
    list(options: { prefix: string }): Promise<Map<string, unknown>>;
    setAlarm(time: number): Promise<void>;
    deleteAll(): Promise<void>;
  };
}

/** What {@link CircuitBreakerObject.acquireProbe} answers. */
export interface ObjectProbeAnswer {
  /** Whether the caller may probe now. */
  granted: boolean;
  /** Epoch ms when the lease granted ends, or until when the probe is refused. */
  until: number;
  /** The object's record of the key, on a refusal (the caller adopts it). */
  record?: unknown;
}

/** The RPC methods of a {@link CircuitBreakerObject} stub. */
export interface CircuitBreakerStub {
  load(key: string): Promise<unknown>;
  report(record: unknown, lease?: { holder: string; until?: number }): Promise<unknown>;
  acquireProbe(holder: string, leaseMs: number, key: string): Promise<ObjectProbeAnswer>;
  releaseProbe(holder: string, record?: unknown, until?: number): Promise<void>;
}

/** The slice of a `DurableObjectNamespace` binding the store uses. */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: never, options?: { locationHint?: string }): unknown;
}

/** The slice of `ExecutionContext` the middleware uses. */
export interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
}

/** Options of {@link durableObjectStore}. */
export interface DurableObjectStoreOptions {
  /**
   * `"global"`: one object per key. `"colo"`: one per key and Cloudflare location, so one
   * location's bad network cannot open the circuit for the whole world.
   * @default "global"
   */
  scope?: "global" | "colo";
  /** The location (`request.cf.colo`) for `scope: "colo"`. @default "unknown" */
  colo?: string;
  /**
   * Where to create each key's object the first time (`"wnam"`, `"weur"`, `"apac"`, …; see
   * Cloudflare's Durable Objects data location docs): near the isolates that use it.
   * @default undefined (near the first request)
   */
  locationHint?: string;
  /**
   * Keeps the runtime alive while a write is in flight. Where `CircuitBreakerObject` is
   * loaded, `waitUntil` from `cloudflare:workers` is used, so writes survive the request or
   * `waitUntil` work that made the change.
   * @default `waitUntil` from `cloudflare:workers`, where available
   */
  waitUntil?: (work: Promise<unknown>) => void;
}

/** Options of the Workers middleware: every `createCbFetch` option, plus where the state lives. */
export interface CircuitBreakerOptions extends CbFetchOptions, DurableObjectStoreOptions {
  /**
   * The breakers' identity in the isolate: every middleware of this name shares one instance
   * (made from the options of the first one used; later ones' options are not read). Give one
   * when the middleware is made per request, inside a handler: without it, each middleware
   * made has its own breakers, so one made per request starts afresh on every request.
   * @default undefined (one instance per middleware made)
   */
  name?: string;
  /**
   * The env binding of the `CircuitBreakerObject` namespace. Without it (or when the binding
   * is missing) the breaker works per isolate.
   * @default "CIRCUIT_BREAKER"
   */
  binding?: string;
  /**
   * Also read options from env vars with this prefix (see {@link optionsFromEnv}); `false`
   * turns that off. Options given in code win.
   * @default "CB_"
   */
  envPrefix?: string | false;
  /**
   * Logs every transition as one structured line, `{ key, from, to, retryAt }`; `false` turns
   * it off.
   * @default one JSON line per transition with `console.log`
   */
  log?: false | ((line: TransitionLine) => void);
}

/** One logged transition of a circuit. */
export interface TransitionLine {
  key: string;
  from: string | undefined;
  to: string;
  /** When an open circuit admits a probe (epoch ms). */
  retryAt: number | undefined;
}
