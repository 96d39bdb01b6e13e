import { afterEach, describe, expect, it, vi } from "vitest";
import { type CbFetchOptions, createCbFetch } from "../src/index.js";
import { jsonLine, logTransitions, type TransitionLine } from "../src/log/index.js";
import { ManualClock } from "./helpers/clock.js";
import { hang, rejection, respond, useServer } from "./helpers/server.js";

// One structured line per transition, with its reason, against a real local server.
const server = useServer();
afterEach(() => vi.restoreAllMocks());

function setup(options: CbFetchOptions = {}) {
  const clock = new ManualClock();
  const cb = createCbFetch({ clock, jitter: 0, failureThreshold: 2, openMs: 1000, ...options });
  const lines: TransitionLine[] = [];
  const stop = logTransitions(cb, (line) => lines.push(line));
  /** The lines so far as `from→to reason`, once the run that caused them has ended. */
  const log = async () => {
    await Promise.resolve();
    return lines.map((l) => `${l.from}→${l.to} ${l.reason}`);
  };
  return { cb, clock, lines, log, stop };
}

describe("logTransitions", () => {
  it("says why: trip, probe due, probe failed, probe succeeded", async () => {
    const { cb, clock, lines, log } = setup();
    server.handle(respond(503));
    await cb(server.url("/a?secret=1"));
    await cb(server.url("/a?secret=1"));
    clock.advance(1000);
    await cb(server.url("/a")); // the probe fails
    clock.advance(2000); // backoff: 2 x 1000
    server.handle(respond(200));
    await cb(server.url("/a"));
    expect(await log()).toEqual([
      "closed→open trip",
      "open→half-open probe-due",
      "half-open→open probe-failed",
      "open→half-open probe-due",
      "half-open→closed probe-succeeded",
    ]);
    expect(lines[0]).toEqual({
      key: server.origin,
      from: "closed",
      to: "open",
      reason: "trip",
      retryAt: clock.t - 3000 + 1000,
    });
    expect(lines.at(-1)?.retryAt).toBeUndefined();
  });

  it("says retry-after for a 429/503 Retry-After, probe-timeout for a hung probe", async () => {
    const { cb, clock, log } = setup({ probeTimeoutMs: 500 });
    server.handle(respond(503, "busy", { "retry-after": "5" }));
    await cb(server.url("/"));
    clock.advance(5000);
    server.handle(hang);
    const hits = server.hits;
    const probe = rejection(cb(server.url("/")));
    await vi.waitFor(() => expect(server.hits).toBe(hits + 1)); // the probe hangs there
    clock.advance(500);
    await rejection(cb(server.url("/"))); // notices the expired probe
    server.dropConnections();
    await probe;
    expect(await log()).toEqual([
      "closed→open retry-after",
      "open→half-open probe-due",
      "half-open→open probe-timeout",
    ]);
  });

  it("says external for forced transitions; stop() ends it", async () => {
    const { cb, log, stop } = setup();
    cb.breaker(server.url("/")).forceOpen(60_000);
    cb.breaker(server.url("/")).forceClose();
    expect(await log()).toEqual(["closed→open external", "open→closed external"]);
    stop();
    cb.breaker(server.url("/")).forceOpen();
    expect(await log()).toHaveLength(2);
  });

  it("stop() also drops the lines of this tick not yet logged (issue 23)", async () => {
    const { cb, log, stop } = setup();
    cb.breaker(server.url("/")).forceOpen(60_000); // its line waits for the end of this tick
    stop();
    expect(await log()).toEqual([]);
  });

  it("logs one JSON line by default; a throwing logger is reported, not thrown", async () => {
    const cb = createCbFetch();
    const print = vi.spyOn(console, "log").mockImplementation(() => {});
    logTransitions(cb);
    cb.breaker("https://api.example.com").forceOpen(1000);
    await Promise.resolve();
    expect(print).toHaveBeenCalledTimes(1);
    expect(JSON.parse(String(print.mock.calls[0]?.[0]))).toMatchObject({
      key: "https://api.example.com",
      from: "closed",
      to: "open",
      reason: "external",
    });
    expect(jsonLine).toBeTypeOf("function");

    const reported = vi.spyOn(console, "error").mockImplementation(() => {});
    logTransitions(cb, () => {
      throw new Error("logger broke");
    });
    cb.breaker("https://api.example.com").forceClose();
    await Promise.resolve();
    expect(reported).toHaveBeenCalledWith(expect.objectContaining({ message: "logger broke" }));
  });
});
