import { describe, expect, it } from "vitest";
import { createBreaker, createCbFetch } from "../src/index.js";

type Row = [option: string, value: unknown, error: typeof TypeError | typeof RangeError];

const numeric = (name: string, { integer = false, zeroOk = false } = {}): Row[] => [
  [name, "5", TypeError],
  [name, null, TypeError],
  [name, -1, RangeError],
  [name, Number.NaN, RangeError],
  [name, Number.POSITIVE_INFINITY, RangeError],
  ...(zeroOk ? [] : ([[name, 0, RangeError]] as Row[])),
  ...(integer ? ([[name, 1.5, RangeError]] as Row[]) : []),
];

const rows: Row[] = [
  ...numeric("failureThreshold", { integer: true }),
  ...numeric("successThreshold", { integer: true }),
  ...numeric("halfOpenMaxProbes", { integer: true }),
  ...numeric("probeTimeoutMs"),
  ...numeric("openMs"),
  ...numeric("slowCallMs"),
  ...numeric("timeoutMs"),
  ...numeric("maxBreakers", { integer: true }),
  ...numeric("maxConcurrent", { integer: true }),
  ...numeric("maxQueue", { integer: true, zeroOk: true }),
  ...numeric("backoff"),
  ["backoff", 0.5, RangeError],
  ...numeric("jitter", { zeroOk: true }),
  ["jitter", 1.5, RangeError],
  ["maxOpenMs", 10, RangeError], // below openMs
  ["maxOpenMs", "1", TypeError],
  ["failureRate", 0.5, TypeError],
  ["failureRate", { threshold: 0, windowMs: 1000, minimumCalls: 1 }, RangeError],
  ["failureRate", { threshold: 1.5, windowMs: 1000, minimumCalls: 1 }, RangeError],
  ["failureRate", { threshold: 0.5, windowMs: -1, minimumCalls: 1 }, RangeError],
  ["failureRate", { threshold: 0.5, windowMs: 1000, minimumCalls: 0 }, RangeError],
  ["failureRate", { threshold: 0.5, windowMs: 1000 }, TypeError],
  ["failureRate", { threshold: 0.5, windowMs: 1000, minimumCalls: 1, extra: 1 }, TypeError],
  ["respectRetryAfter", "yes", TypeError],
  ["fetch", "fetch", TypeError],
  ["keyOf", {}, TypeError],
  ["isFailure", 1, TypeError],
  ["fallback", true, TypeError],
  ["fallbackOrigins", ["https://a.example"], TypeError],
  ["fallbackOrigins", { "https://a.example": "https://b.example" }, TypeError],
  ["fallbackOrigins", { "https://a.example": ["ftp://b.example"] }, TypeError],
  ["fallbackOrigins", { "not a url": ["https://b.example"] }, TypeError],
  ["clock", Date, TypeError],
  ["clock", { now: 1 }, TypeError],
  ["random", 0.5, TypeError],
  ["failureTreshold", 3, TypeError], // a typo is not silently ignored
  // Timers fire after 1 ms from 2^31 ms on (setTimeout overflows): refused, not silently wrong.
  ["timeoutMs", 2 ** 31, RangeError],
  ["loadTimeoutMs", 2 ** 31, RangeError],
  ["probeTimeoutMs", 2 ** 31, RangeError],
];

describe("invalid options throw at creation, naming the option and the value", () => {
  it.each(rows)("%s = %o", (option, value, ErrorType) => {
    const create = () => createCbFetch({ [option]: value });
    expect(create).toThrow(ErrorType);
    const message = (() => {
      try {
        create();
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(message).toContain(option.replace("failureTreshold", "failureTreshold"));
    if (typeof value === "number" && option !== "failureTreshold") {
      expect(message).toContain(String(value));
    }
  });

  it("createBreaker validates the same way", () => {
    expect(() => createBreaker({ openMs: -5 })).toThrow(/"openMs".*-5/);
    expect(() => createBreaker({ key: 5 as unknown as string })).toThrow(TypeError);
    expect(() => createBreaker({ timeoutMs: 5 } as never)).toThrow(/unknown option "timeoutMs"/);
    expect(() => createBreaker({ probeTimeoutMs: 2 ** 31 })).toThrow(
      /"probeTimeoutMs".*2147483648/,
    );
  });

  it("accepts timer durations up to 2^31 - 1 ms, the longest setTimeout keeps", () => {
    const longest = 2 ** 31 - 1;
    expect(() =>
      createCbFetch({ timeoutMs: longest, loadTimeoutMs: longest, probeTimeoutMs: longest }),
    ).not.toThrow();
  });

  it("accepts every option at a valid value", () => {
    expect(() =>
      createCbFetch({
        failureThreshold: 1,
        failureRate: { threshold: 1, windowMs: 1, minimumCalls: 1 },
        slowCallMs: 1,
        successThreshold: 1,
        halfOpenMaxProbes: 1,
        probeTimeoutMs: 1,
        openMs: 1,
        backoff: 1,
        maxOpenMs: 1,
        jitter: 0,
        clock: { now: () => 0 },
        random: () => 0,
        fetch: async () => new Response(),
        keyOf: () => "k",
        isFailure: () => false,
        timeoutMs: 1,
        respectRetryAfter: false,
        maxBreakers: 1,
        maxConcurrent: 1,
        maxQueue: 0,
        fallback: () => new Response(),
        fallbackOrigins: { "https://a.example": ["https://b.example:8443/ignored-path"] },
      }),
    ).not.toThrow();
  });
});
