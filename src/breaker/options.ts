import { systemClock } from "./clock.js";
import { ConsecutivePolicy, FailureRatePolicy, type TripPolicy } from "./policy.js";
import type { BreakerOptions, Clock, FailureRateOptions } from "./types.js";

/** Breaker options with every default filled in, shared by all breakers of one instance. */
export interface ResolvedBreakerOptions {
  readonly failureThreshold: number;
  readonly failureRate: FailureRateOptions | undefined;
  readonly slowCallMs: number | undefined;
  readonly successThreshold: number;
  readonly halfOpenMaxProbes: number;
  readonly probeTimeoutMs: number;
  readonly openMs: number;
  readonly backoff: number;
  readonly maxOpenMs: number;
  readonly jitter: number;
  readonly clock: Clock;
  readonly random: () => number;
  /** Builds the trip policy of one breaker. */
  readonly createPolicy: () => TripPolicy;
}

export const BREAKER_OPTION_NAMES: readonly string[] = [
  "failureThreshold",
  "failureRate",
  "slowCallMs",
  "successThreshold",
  "halfOpenMaxProbes",
  "probeTimeoutMs",
  "openMs",
  "backoff",
  "maxOpenMs",
  "jitter",
  "clock",
  "random",
];

/** Shows a bad value in an error message without throwing on odd inputs. */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value == null) {
    return String(value);
  }
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** Throws a TypeError or RangeError naming `name` unless `value` is a number in range. */
export function checkNumber(
  name: string,
  value: unknown,
  { min = 0, max = Number.POSITIVE_INFINITY, integer = false, minExclusive = false } = {},
): number {
  if (typeof value !== "number") {
    throw new TypeError(`cbfetch: option "${name}" must be a number, got ${describe(value)}`);
  }
  const tooLow = minExclusive ? value <= min : value < min;
  if (!Number.isFinite(value) || tooLow || value > max || (integer && !Number.isInteger(value))) {
    const kind = integer ? "an integer" : "a finite number";
    const range = `${minExclusive ? ">" : ">="} ${min}${max < Number.POSITIVE_INFINITY ? ` and <= ${max}` : ""}`;
    throw new RangeError(
      `cbfetch: option "${name}" must be ${kind} ${range}, got ${describe(value)}`,
    );
  }
  return value;
}

export function checkFunction<T>(name: string, value: T): T {
  if (typeof value !== "function") {
    throw new TypeError(`cbfetch: option "${name}" must be a function, got ${describe(value)}`);
  }
  return value;
}

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`cbfetch: option "${name}" must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Rejects keys not in `known`, so a typo like `failureTreshold` is not silently ignored. */
export function checkKnownKeys(
  where: string,
  options: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(`cbfetch: unknown option "${key}" passed to ${where}`);
    }
  }
}

function optional<T>(value: T | undefined, check: (value: T) => T): T | undefined {
  return value === undefined ? undefined : check(value);
}

function resolveFailureRate(value: unknown): FailureRateOptions {
  const rate = checkObject("failureRate", value);
  checkKnownKeys("failureRate", rate, ["threshold", "windowMs", "minimumCalls"]);
  return {
    threshold: checkNumber("failureRate.threshold", rate.threshold, { max: 1, minExclusive: true }),
    windowMs: checkNumber("failureRate.windowMs", rate.windowMs, { minExclusive: true }),
    minimumCalls: checkNumber("failureRate.minimumCalls", rate.minimumCalls, {
      min: 1,
      integer: true,
    }),
  };
}

/** Validates breaker options and fills in the defaults. Throws naming the bad option. */
export function resolveBreakerOptions(options: BreakerOptions): ResolvedBreakerOptions {
  const int = { min: 1, integer: true };
  const positive = { minExclusive: true };
  const failureThreshold = checkNumber("failureThreshold", options.failureThreshold ?? 5, int);
  const failureRate = optional(options.failureRate, resolveFailureRate);
  const openMs = checkNumber("openMs", options.openMs ?? 30_000, positive);
  const maxOpenMs = checkNumber("maxOpenMs", options.maxOpenMs ?? Math.max(300_000, openMs), {
    min: openMs,
  });
  const createPolicy = failureRate
    ? () => new FailureRatePolicy(failureRate)
    : () => new ConsecutivePolicy(failureThreshold);
  return {
    failureThreshold,
    failureRate,
    slowCallMs: optional(options.slowCallMs, (v) => checkNumber("slowCallMs", v, positive)),
    successThreshold: checkNumber("successThreshold", options.successThreshold ?? 1, int),
    halfOpenMaxProbes: checkNumber("halfOpenMaxProbes", options.halfOpenMaxProbes ?? 1, int),
    probeTimeoutMs: checkNumber("probeTimeoutMs", options.probeTimeoutMs ?? 30_000, positive),
    openMs,
    backoff: checkNumber("backoff", options.backoff ?? 2, { min: 1 }),
    maxOpenMs,
    jitter: checkNumber("jitter", options.jitter ?? 0.2, { max: 1 - Number.EPSILON }),
    clock: options.clock === undefined ? systemClock() : checkClock(options.clock),
    random: options.random === undefined ? Math.random : checkFunction("random", options.random),
    createPolicy,
  };
}

function checkClock(clock: unknown): Clock {
  checkFunction("clock.now", checkObject("clock", clock).now);
  return clock as Clock;
}
