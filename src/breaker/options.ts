import { systemClock } from "./clock.js";
import { ConsecutivePolicy } from "./consecutive.js";
import type { Policy } from "./policy.js";
import type { BreakerOptions, Clock, FailureRateOptions, ThrottleOptions } from "./types.js";

/** Breaker options with every default filled in, shared by all breakers of one instance. */
export interface ResolvedBreakerOptions {
  readonly failureThreshold: number;
  readonly failureRate: FailureRateOptions | undefined;
  readonly throttle: Required<ThrottleOptions> | undefined;
  readonly slowCallMs: number | undefined;
  readonly successThreshold: number;
  readonly halfOpenMaxProbes: number;
  readonly probeTimeoutMs: number;
  readonly openMs: number;
  readonly backoff: number;
  readonly maxOpenMs: number;
  readonly jitter: number;
  readonly clock: Clock;
  /**
   * The time of outcomes for a windowed policy: only durations matter there, so the injected
   * clock, or else `Date.now()` (one native read per call, where the default clock takes two).
   */
  readonly windowClock: Clock;
  readonly random: () => number;
  /**
   * Makes a breaker's policy, asked on its first counted outcome. The default policy (one for
   * every breaker); set to the failure-rate policy where `failureRate` is, once its code is in
   * (`createBreaker` imports it; a fetch instance loads it on demand before its first call).
   */
  policy: () => Policy;
}

/**
 * A numeric option's rule: `[default, minimum, kind, maximum]`. `kind`: `integer` (at least the
 * minimum), `above` (more than it) or `at least` (the default). A `null` default: required.
 */
export type NumberRule = readonly [
  fallback: number | undefined | null,
  min: number,
  kind?: "integer" | "above" | "at least",
  max?: number,
];

/** What an option that is not a number must be: a `typeof`, or `any` (checked on its own). */
export type TypeRule = "function" | "boolean" | "object" | "any";

/**
 * The longest delay `setTimeout` keeps (2^31 − 1 ms, about 24.8 days): a longer one overflows
 * and fires after 1 ms, so options that end up in a timer are refused above it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Numeric breaker options. */
export const BREAKER_NUMBERS: Record<string, NumberRule> = {
  failureThreshold: [5, 1, "integer"],
  successThreshold: [1, 1, "integer"],
  halfOpenMaxProbes: [1, 1, "integer"],
  // Also the longest hold of the cross-tab probe lock, a timer.
  probeTimeoutMs: [30_000, 0, "above", MAX_TIMER_MS],
  openMs: [30_000, 0, "above"],
  slowCallMs: [undefined, 0, "above"],
  backoff: [2, 1],
  jitter: [0.2, 0, "at least", 1],
};

/** The breaker's other options (`maxOpenMs` depends on `openMs`: checked on its own). */
export const BREAKER_OTHERS: Record<string, TypeRule> = {
  failureRate: "object",
  throttle: "any",
  maxOpenMs: "any",
  clock: "object",
  random: "function",
};

/** `failureRate`'s fields, all three required. */
const FAILURE_RATE: Record<string, NumberRule> = {
  threshold: [null, 0, "above", 1],
  windowMs: [null, 0, "above"],
  minimumCalls: [null, 1, "integer"],
};

/** `throttle`'s fields, when it is an object. */
export const THROTTLE_NUMBERS: Record<string, NumberRule> = {
  k: [2, 1],
  windowMs: [1000, 0, "above"],
  minRequests: [10, 0, "integer"],
};

/** Shows a bad value in an error message without throwing on odd inputs. */
function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  return typeof value === "object" && value !== null
    ? `a ${value.constructor?.name ?? "object"}`
    : String(value);
}

/** Throws a TypeError (or `Type`) naming the option and the value. */
export function badOption(name: string, expected: string, value: unknown, Type = TypeError): never {
  throw new Type(`cbfetch: option "${name}" must be ${expected}, got ${describe(value)}`);
}

/**
 * `value` checked against `rule`, or the rule's default when `undefined` (a `null` value is bad
 * input; a `null` default makes the option required).
 */
export function checkNumber(name: string, value: unknown, rule: NumberRule): number | undefined {
  const [fallback, min, kind = "at least", max = Infinity] = rule;
  if (value === undefined && fallback !== null) return fallback;
  if (typeof value !== "number") badOption(name, "a number", value);
  if (
    !(value <= max) ||
    (kind === "above" ? value <= min : value < min) ||
    (kind === "integer" && !Number.isInteger(value)) ||
    !Number.isFinite(value)
  ) {
    const range = `${kind === "integer" ? "an integer" : "a number"} ${kind === "above" ? ">" : ">="} ${min}`;
    badOption(name, max < Infinity ? `${range} and <= ${max}` : range, value, RangeError);
  }
  return value;
}

/**
 * Reads a group of options (the top level, or one like `failureRate`): refuses names it does
 * not know (so a typo like `failureTreshold` is not silently ignored), checks every number
 * against its rule with its default filled in, and every other option against its type. Returns
 * a copy (later changes to the caller's object cannot reach us). `name`: the group's name in
 * messages; `prefix`: what its options' names get there (`"failureRate."`).
 */
export function readGroup<T extends object = Record<string, unknown>>(
  name: string,
  value: unknown,
  numbers: Record<string, NumberRule>,
  others: Record<string, TypeRule> = {},
  prefix = "",
): T {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    badOption(prefix ? prefix.slice(0, -1) : "options", "an object", value);
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!(key in numbers || key in others)) {
      throw new TypeError(`cbfetch: unknown option "${key}" in ${name}`);
    }
  }
  // Built in the tables' order, whatever the caller's: every instance's options then share one
  // shape, so the code that reads them on each call stays monomorphic.
  const group: Record<string, unknown> = {};
  for (const [key, rule] of Object.entries(numbers)) {
    group[key] = checkNumber(prefix + key, given[key], rule);
  }
  for (const [key, type] of Object.entries(others)) {
    const field = (group[key] = given[key]);
    const ok = field === undefined || type === "any" || typeof field === type;
    if (!ok || (type === "object" && field === null)) {
      badOption(prefix + key, type === "object" ? "an object" : `a ${type}`, field);
    }
  }
  return group as T; // checked above, field by field
}

/** The time of outcomes where no clock is injected: `Date.now()`, read at each call (fakes apply). */
const DATE_CLOCK: Clock = { now: () => Date.now() };
/** The default policy, one per threshold: it holds no state (see ConsecutivePolicy). */
const consecutive = new Map<number, ConsecutivePolicy>();

/**
 * Breaker options (already read by {@link readGroup}) with every default filled in: only the
 * breaker's own fields, so a breaker of its own (`createBreaker`) stays small.
 */
export function resolveBreakerOptions(options: Record<string, unknown>): ResolvedBreakerOptions {
  const read = options as Required<BreakerOptions>;
  const { failureThreshold, failureRate, clock, throttle } = read;
  if (typeof clock?.now !== "function" && clock !== undefined) {
    badOption("clock.now", "a function", clock.now);
  }
  let policy = consecutive.get(failureThreshold);
  if (policy === undefined)
    consecutive.set(failureThreshold, (policy = new ConsecutivePolicy(failureThreshold)));
  const shared = policy;
  return {
    failureThreshold,
    failureRate:
      failureRate &&
      readGroup<FailureRateOptions>("failureRate", failureRate, FAILURE_RATE, {}, "failureRate."),
    // `true`: the defaults; an object: its fields; anything else but `false` is refused.
    throttle:
      throttle === undefined || throttle === false
        ? undefined
        : readGroup<Required<ThrottleOptions>>(
            "throttle",
            throttle === true
              ? {}
              : typeof throttle === "object" && throttle !== null
                ? throttle
                : badOption("throttle", "true, false or an object", throttle),
            THROTTLE_NUMBERS,
            {},
            "throttle.",
          ),
    slowCallMs: read.slowCallMs,
    successThreshold: read.successThreshold,
    halfOpenMaxProbes: read.halfOpenMaxProbes,
    probeTimeoutMs: read.probeTimeoutMs,
    openMs: read.openMs,
    backoff: read.backoff,
    maxOpenMs: checkNumber("maxOpenMs", read.maxOpenMs, [
      Math.max(300_000, read.openMs),
      read.openMs,
    ])!,
    jitter: read.jitter,
    clock: clock ?? systemClock(),
    windowClock: clock ?? DATE_CLOCK,
    random: read.random ?? Math.random,
    policy: DEFAULT_POLICIES.get(shared) ?? makeDefault(shared),
  };
}

/** The factory of each default policy, made once (a breaker of its own then adds none). */
const DEFAULT_POLICIES = new Map<Policy, () => Policy>();
function makeDefault(policy: Policy): () => Policy {
  const factory = () => policy;
  DEFAULT_POLICIES.set(policy, factory);
  return factory;
}
