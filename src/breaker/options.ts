import { systemClock } from "./clock.js";
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
}

/** A numeric option's rule: `[default, minimum, kind, maximum]`; a `null` default: required. */
export type NumberRule = readonly [
  fallback: number | undefined | null,
  min: number,
  kind?: "integer" | "above" | "at least",
  max?: number,
];

/**
 * The longest delay `setTimeout` keeps (2^31 − 1 ms, about 24.8 days): a longer one overflows
 * and fires after 1 ms, so options that end up in a timer are refused above it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Numeric breaker options. `above`: the minimum itself is not allowed. */
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

/** Shows a bad value in an error message without throwing on odd inputs. */
function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  return typeof value === "object" && value !== null
    ? `a ${value.constructor?.name ?? "object"}`
    : String(value);
}

/** Throws a TypeError naming the option and the value. */
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

/** Checks every numeric option of `rules` in `options`, with defaults; names get `prefix`. */
export function checkNumbers(
  rules: Record<string, NumberRule>,
  options: object,
  prefix = "",
): Record<string, number> {
  const values: Record<string, number> = {};
  for (const [name, rule] of Object.entries(rules)) {
    const value = (options as Record<string, unknown>)[name];
    values[name] = checkNumber(prefix + name, value, rule) as number;
  }
  return values;
}

/**
 * An option that is an object of numbers (and of `others`, checked by the caller): unknown
 * keys are refused, numbers checked against `rules` as `name.field`, and copied, so later
 * changes to the caller's object cannot reach us.
 */
export function checkGroup(
  name: string,
  value: unknown,
  rules: Record<string, NumberRule>,
  others: readonly string[] = [],
): Record<string, unknown> {
  const group = checkObject(name, value);
  checkKnownKeys(name, group, [...Object.keys(rules), ...others]);
  return { ...group, ...checkNumbers(rules, group, `${name}.`) };
}

export function checkType<T>(name: string, value: T, type: "function" | "boolean" | "string"): T {
  if (value !== undefined && typeof value !== type) badOption(name, `a ${type}`, value);
  return value;
}

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    badOption(name, "an object", value);
  }
  return value as Record<string, unknown>;
}

/** Rejects keys not in `known`, so a typo like `failureTreshold` is not silently ignored. */
export function checkKnownKeys(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new TypeError(`cbfetch: unknown option "${key}" in ${where}`);
  }
}

/** Every option name of {@link BreakerOptions}. */
export const BREAKER_OPTION_NAMES: readonly string[] = [
  ...Object.keys(BREAKER_NUMBERS),
  "failureRate",
  "maxOpenMs",
  "clock",
  "random",
];

/** `failureRate`'s fields, all three required. */
const FAILURE_RATE: Record<string, NumberRule> = {
  threshold: [null, 0, "above", 1],
  windowMs: [null, 0, "above"],
  minimumCalls: [null, 1, "integer"],
};

/** Validates breaker options and fills in the defaults. Throws naming the bad option. */
export function resolveBreakerOptions(options: BreakerOptions): ResolvedBreakerOptions {
  const numbers = checkNumbers(BREAKER_NUMBERS, options) as unknown as ResolvedBreakerOptions;
  const { failureRate, clock, random } = options;
  const rate =
    failureRate === undefined
      ? undefined
      : (checkGroup("failureRate", failureRate, FAILURE_RATE) as unknown as FailureRateOptions);
  if (clock !== undefined) checkType("clock.now", checkObject("clock", clock).now, "function");
  const { openMs } = numbers;
  return {
    ...numbers,
    failureRate: rate,
    maxOpenMs: checkNumber("maxOpenMs", options.maxOpenMs, [
      Math.max(300_000, openMs),
      openMs,
    ]) as number,
    clock: clock ?? systemClock(),
    random: checkType("random", random, "function") ?? Math.random,
  };
}
