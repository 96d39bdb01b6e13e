// Types of bench/overload-model.mjs, for test/overload.test.ts (the bench runs the .mjs under
// plain Node, so the model is JavaScript).
import type { CreateBreakerOptions, RetryBudgetOptions } from "../src/index.js";
import type { ThrottleOptions } from "../src/index.js";
import type { Breaker, Clock } from "../src/index.js";
import type { RetryBudgets } from "../src/retry/budget.js";

export interface Scenario {
  /** Requests the upstream serves per second at most (C). */
  capacity: number;
  /** Offered load, × capacity. */
  load: number;
  overloadMs: number;
  outageMs: number;
  recoveryMs: number;
  /** Latency of a served request. */
  serviceMs: number;
  /** Latency of a 503. */
  rejectMs: number;
  /** What a 503 costs the upstream, as a share of a served request. */
  rejectCost: number;
  /** The token bucket holds this much of capacity. */
  burstMs: number;
  sliceMs: number;
  warmupMs: number;
}

export const SCENARIO: Readonly<Scenario>;

export function seeded(seed: number): () => number;
export function phaseAt(t: number, scenario?: Scenario): "overload" | "outage" | "recovery";

/** One logical request: `attempt` counts from 0; clients may keep their own fields on it. */
export interface ModelRequest {
  attempt: number;
  [field: string]: unknown;
}

export interface ModelClient {
  send(request: ModelRequest, t: number): boolean;
  settle(request: ModelRequest, t: number, ok: boolean): number | undefined;
}

export interface ModelEnv {
  clock: Clock;
  random: () => number;
  onTransition(from: string, to: string): void;
}

export type MakeClient = (env: ModelEnv) => ModelClient;

export interface Slice {
  arrivals: number;
  attempts: number;
  served: number;
  refused: number;
  succeeded: number;
  failed: number;
  transitions: number;
  trips: number;
}

export function simulate(
  makeClient: MakeClient,
  options?: { scenario?: Scenario; seed?: number },
): Slice[];

export interface Summary {
  offeredPerSecond: number;
  attemptsPerServed: number;
  goodput: number;
  tripsPerMinute: number;
  transitions: number;
  recoverySeconds: number | undefined;
  heldSeconds: number | undefined;
  goodputBySlice: number[];
}

export function summarize(slices: Slice[], scenario?: Scenario): Summary;

export interface ModelRetry {
  limit?: number;
  delayMs?: number;
  maxDelayMs?: number;
  budget?: RetryBudgetOptions | false;
}

export function modelClients(parts: {
  createBreaker: (options?: CreateBreakerOptions) => Breaker;
  RetryBudgets: typeof RetryBudgets;
}): {
  raw: MakeClient;
  kyRetry2: MakeClient;
  breaker: (options?: CreateBreakerOptions) => MakeClient;
  /** `createBreaker({ throttle })` (`true` unless given), with `breaker`'s other options. */
  throttle: (options?: {
    throttle?: true | ThrottleOptions;
    breaker?: CreateBreakerOptions;
    retry?: ModelRetry;
  }) => MakeClient;
};
