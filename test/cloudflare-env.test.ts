import { afterEach, describe, expect, it, vi } from "vitest";
import { optionsFromEnv } from "../src/cloudflare/env.js";
import { createCbFetch } from "../src/index.js";

afterEach(() => vi.restoreAllMocks());

describe("optionsFromEnv", () => {
  it("reads numbers and booleans from prefixed vars, ignoring everything else", () => {
    const env = {
      CB_FAILURE_THRESHOLD: "3",
      CB_OPEN_MS: " 10000 ",
      CB_JITTER: "0.25",
      CB_RESPECT_RETRY_AFTER: "false",
      CB_LOAD_TIMEOUT_MS: "50",
      UPSTREAM: "https://api.example.com",
      CIRCUIT_BREAKER: {},
    };
    expect(optionsFromEnv(env)).toEqual({
      failureThreshold: 3,
      openMs: 10_000,
      jitter: 0.25,
      respectRetryAfter: false,
      loadTimeoutMs: 50,
    });
    expect(optionsFromEnv({ BREAKER_MAX_OPEN_MS: "60000" }, "BREAKER_")).toEqual({
      maxOpenMs: 60_000,
    });
  });

  it("turns the throttle on with CB_THROTTLE or any of its fields, and off with CB_THROTTLE=false", () => {
    expect(optionsFromEnv({ CB_THROTTLE: "true" })).toEqual({ throttle: true });
    expect(optionsFromEnv({ CB_THROTTLE: "false" })).toEqual({ throttle: false });
    expect(
      optionsFromEnv({
        CB_THROTTLE_K: "1.5",
        CB_THROTTLE_WINDOW_MS: "2000",
        CB_THROTTLE_MIN_REQUESTS: "20",
      }),
    ).toEqual({ throttle: { k: 1.5, windowMs: 2000, minRequests: 20 } });
    expect(optionsFromEnv({ CB_THROTTLE: "true", CB_THROTTLE_K: "3" })).toEqual({
      throttle: { k: 3 },
    });
    expect(optionsFromEnv({ CB_THROTTLE: "false", CB_THROTTLE_K: "3" })).toEqual({
      throttle: false,
    });
    const cb = createCbFetch(optionsFromEnv({ CB_THROTTLE_K: "3" }));
    expect(typeof cb).toBe("function");
    expect(() => optionsFromEnv({ CB_THROTTLE_K: "0.5" })).toThrow(
      /CB_THROTTLE_K must be a number >= 1, got "0.5"/,
    );
    expect(() => optionsFromEnv({ CB_THROTTLE: "on" })).toThrow(
      /CB_THROTTLE must be true or false/,
    );
  });

  // Each error names the variable and its value, not the option behind it.
  it.each([
    [{ CB_OPEN_MS: "30s" }, /CB_OPEN_MS must be a decimal number, got "30s"/],
    [{ CB_OPEN_MS: "" }, /CB_OPEN_MS must be a decimal number, got ""/],
    [{ CB_OPEN_MS: "0x10" }, /CB_OPEN_MS must be a decimal number, got "0x10"/],
    [{ CB_TIMEOUT_MS: "Infinity" }, /CB_TIMEOUT_MS must be a decimal number, got "Infinity"/],
    [{ CB_OPEN_MS: "-5" }, /CB_OPEN_MS must be a number > 0, got "-5"/],
    [{ CB_FAILURE_THRESHOLD: "0" }, /CB_FAILURE_THRESHOLD must be an integer >= 1, got "0"/],
    [{ CB_FAILURE_THRESHOLD: "2.5" }, /CB_FAILURE_THRESHOLD must be an integer >= 1, got "2.5"/],
    [{ CB_JITTER: "2" }, /CB_JITTER must be a number >= 0 and <= 1, got "2"/],
    [{ CB_RESPECT_RETRY_AFTER: "yes" }, /CB_RESPECT_RETRY_AFTER must be true or false, got "yes"/],
  ])("rejects %o naming the variable and the value", (env, message) => {
    expect(() => optionsFromEnv(env)).toThrow(message);
  });

  it("an unrelated variable of the prefix does not take the worker down; a likely typo is reported once", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const env = { CB_API_TOKEN: "secret", CB_FAILURE_TRESHOLD: "3", CB_OPEN_MS: "1000" };
    expect(optionsFromEnv(env)).toEqual({ openMs: 1000 });
    expect(optionsFromEnv(env)).toEqual({ openMs: 1000 });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(
      /CB_FAILURE_TRESHOLD names no option; did you mean CB_FAILURE_THRESHOLD\?/,
    );
    expect(String(warn.mock.calls[0]?.[0])).not.toContain("secret");
  });

  it("reports a variable missing its unit suffix (CB_THROTTLE_WINDOW for CB_THROTTLE_WINDOW_MS)", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    expect(optionsFromEnv({ CB_THROTTLE_WINDOW: "500" })).toEqual({});
    expect(String(warn.mock.calls[0]?.[0])).toMatch(
      /CB_THROTTLE_WINDOW names no option; did you mean CB_THROTTLE_WINDOW_MS\?/,
    );
    warn.mockRestore();
  });

  it("what it returns is valid for createCbFetch", () => {
    expect(() => createCbFetch(optionsFromEnv({ CB_OPEN_MS: "1", CB_JITTER: "1" }))).not.toThrow();
  });
});
