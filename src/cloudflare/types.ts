import type { CbFetchOptions } from "../fetch/types.js";

/** The slice of `DurableObjectState` the breaker object uses. */
export interface DurableObjectStateLike {
  storage: {
    get(key: string): Promise<unknown>;
    put(key: string, value: unknown): Promise<void>;
  };
}

/** The RPC methods of a {@link CircuitBreakerObject} stub. */
export interface CircuitBreakerStub {
  load(): Promise<unknown>;
  report(record: unknown): Promise<unknown>;
  acquireProbe(holder: string, leaseMs: number): Promise<boolean>;
  releaseProbe(holder: string): Promise<void>;
}

/** The slice of a `DurableObjectNamespace` binding the store uses. */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: never): unknown;
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
}

/** Options of the Workers middleware: every `createCbFetch` option, plus where the state lives. */
export interface CircuitBreakerOptions extends CbFetchOptions, DurableObjectStoreOptions {
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
}
