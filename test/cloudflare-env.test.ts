import { describe, expect, it } from "vitest";
import { optionsFromEnv } from "../src/cloudflare/env.js";
import { createCbFetch } from "../src/index.js";

describe("optionsFromEnv", () => {
  it("reads numbers and booleans from prefixed vars, ignoring everything else", () => {
    const env = {
      CB_FAILURE_THRESHOLD: "3",
      CB_OPEN_MS: " 10000 ",
      CB_JITTER: "0",
      CB_RESPECT_RETRY_AFTER: "false",
      CB_LOAD_TIMEOUT_MS: "50",
      UPSTREAM: "https://api.example.com",
      CIRCUIT_BREAKER: {},
    };
    expect(optionsFromEnv(env)).toEqual({
      failureThreshold: 3,
      openMs: 10_000,
      jitter: 0,
      respectRetryAfter: false,
      loadTimeoutMs: 50,
    });
    expect(optionsFromEnv({ BREAKER_MAX_OPEN_MS: "60000" }, "BREAKER_")).toEqual({
      maxOpenMs: 60_000,
    });
  });

  it.each([
    [{ CB_FAILURE_TRESHOLD: "3" }, /CB_FAILURE_TRESHOLD names no option/],
    [{ CB_OPEN_MS: "30s" }, /CB_OPEN_MS must be a number, got "30s"/],
    [{ CB_OPEN_MS: "" }, /CB_OPEN_MS must be a number/],
    [{ CB_RESPECT_RETRY_AFTER: "yes" }, /CB_RESPECT_RETRY_AFTER must be true or false/],
  ])("rejects %o naming the var", (env, message) => {
    expect(() => optionsFromEnv(env)).toThrow(message);
  });

  it("values go through createCbFetch's own validation", () => {
    expect(() => createCbFetch(optionsFromEnv({ CB_OPEN_MS: "-1" }))).toThrow(
      /option "openMs" must be a number > 0, got -1/,
    );
    expect(() => createCbFetch(optionsFromEnv({ CB_FAILURE_THRESHOLD: "2.5" }))).toThrow(
      RangeError,
    );
  });
});
