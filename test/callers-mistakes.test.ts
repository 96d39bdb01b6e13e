import { afterEach, describe, expect, it, vi } from "vitest";
import { type CbFetchOptions, CircuitOpenError, createCbFetch } from "../src/index.js";
import { ManualClock } from "./helpers/clock.js";
import { rejection, respond, useServer } from "./helpers/server.js";

// DESIGN §2: errors the caller caused are never the origin's. Every way a call can fail on
// the caller's side is rethrown unchanged (or contained) and never counted: two of them in a
// row must not open a healthy origin's circuit, and one in half-open must not hold the probe.
// Runs in plain Node and again under happy-dom (vitest.config.ts).
const server = useServer();
afterEach(() => vi.unstubAllGlobals());
const url = (path = "/") => server.origin + path;

const mine = new Error("the caller's own");
type Call = () => Promise<[input: RequestInfo | URL, init?: RequestInit]>;
interface Row {
  /** Makes a fresh input (a used body stays used). */
  call: Call;
  options?: CbFetchOptions;
  /** The exact error expected; otherwise the one raw fetch gives for the same call. */
  error?: unknown;
  /** Whether the request leaves (only a throwing isFailure: the origin answered). */
  sent?: boolean;
  /** Where happy-dom's own fetch, unlike browsers and Node, does not reject it. */
  notInHappyDom?: boolean;
}

const usedRequest = async () => {
  const request = new Request(url("/used"), { method: "POST", body: "once" });
  await request.text();
  return request;
};

const rows: Record<string, Row> = {
  "a Request whose body was already used": { call: async () => [await usedRequest()] },
  "a Request whose body was already used, as init": {
    call: async () => [url(), await usedRequest()],
  },
  "a body on a GET": { call: async () => [url(), { body: "x" }] },
  "a header name with a space": { call: async () => [url(), { headers: { "bad header": "x" } }] },
  "a forbidden method": { call: async () => [url(), { method: "CONNECT" }] },
  "a stream body without duplex": {
    call: async () => [url(), { method: "POST", body: new ReadableStream() }],
    notInHappyDom: true,
  },
  "an init that is not an object": {
    call: async () => [url(), 5 as RequestInit],
    notInHappyDom: true,
  },
  "a signal that is not an AbortSignal": {
    // With a no-op removeEventListener: happy-dom's fetch keeps a task for it that calls that
    // method when the window is torn down (an unhandled TypeError that failed the run).
    call: async () => [url(), { signal: { removeEventListener() {} } as unknown as AbortSignal }],
  },
  "an init whose getter throws": {
    call: async () => [
      url(),
      {
        get method(): string {
          throw mine;
        },
      },
    ],
    error: mine,
  },
  "an invalid URL": { call: async () => ["http://["] },
  "credentials in the URL": { call: async () => [url().replace("http://", "http://u:p@")] },
  "a throwing keyOf": {
    call: async () => [url()],
    options: {
      keyOf: () => {
        throw mine;
      },
    },
    error: mine,
  },
  "a throwing isFailure": {
    call: async () => [url()],
    options: {
      isFailure: () => {
        throw mine;
      },
    },
    error: mine,
    sent: true,
  },
};

const happyDom = typeof window !== "undefined";
const cases = Object.entries(rows)
  .filter(([, row]) => !(happyDom && row.notInHappyDom))
  .flatMap(([name, row]) => [undefined, 5000].map((timeoutMs) => ({ name, row, timeoutMs })));

describe("the caller's mistakes are rethrown and never counted", () => {
  it.each(cases)("$name (timeoutMs: $timeoutMs)", async ({ row, timeoutMs }) => {
    const clock = new ManualClock();
    const cb = createCbFetch({ clock, jitter: 0, failureThreshold: 2, timeoutMs, ...row.options });
    const expected = async () => {
      if (row.error !== undefined) return row.error;
      const [input, init] = await row.call();
      return rejection(fetch(input, init));
    };
    const check = async () => {
      const [input, init] = await row.call();
      const hits = server.hits;
      let pending: Promise<Response> | undefined;
      expect(() => {
        pending = cb(input, init);
      }).not.toThrow();
      const error = await rejection(pending as Promise<Response>);
      const raw = await expected();
      if (row.error !== undefined) expect(error).toBe(raw);
      else {
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).constructor).toBe((raw as Error).constructor);
        expect((error as Error).name).toBe((raw as Error).name);
      }
      expect(server.hits).toBe(row.sent ? hits + 1 : hits);
    };

    await check();
    await check();
    // Read without keyOf (which may be the throwing one): the only breaker there is, if any.
    const breaker = () => cb.snapshot()[0] ?? { failures: 0, successes: 0, probesInFlight: 0 };
    expect(cb.snapshot().every((b) => b.state === "closed")).toBe(true);
    expect(breaker()).toMatchObject({ failures: 0, successes: 0, probesInFlight: 0 });
    if (row.options?.keyOf) return;

    // In half-open, the mistake does not keep the probe slot: the next call is the probe.
    cb.breaker(url()).forceOpen(10);
    clock.advance(10);
    await check();
    expect(breaker()).toMatchObject({ failures: 0, successes: 0, probesInFlight: 0 });
    if (row.options === undefined) {
      server.handle(respond(200));
      expect((await cb(url())).status).toBe(200);
      expect(cb.state(url())).toBe("closed");
    }
  });
});

describe("a throwing listener is contained", () => {
  it.each(["statechange", "reject", "failure", "success"] as const)("%s", async (type) => {
    const reported: unknown[] = [];
    vi.stubGlobal("reportError", (error: unknown) => reported.push(error));
    const cb = createCbFetch({ clock: new ManualClock(), jitter: 0, failureThreshold: 1 });
    cb.addEventListener(type, () => {
      throw mine;
    });
    expect((await cb(url())).status).toBe(200);
    server.handle(respond(503));
    expect((await cb(url())).status).toBe(503);
    expect(await rejection(cb(url()))).toBeInstanceOf(CircuitOpenError);
    expect(cb.breaker(url()).stats).toMatchObject({ successes: 1, failures: 1, rejections: 1 });
    expect(reported.length).toBeGreaterThan(0);
    expect(reported.every((error) => error === mine)).toBe(true);
  });

  it("without reportError (Node), it goes to console.error", async () => {
    vi.stubGlobal("reportError", undefined);
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const cb = createCbFetch();
      cb.addEventListener("success", () => {
        throw mine;
      });
      expect((await cb(url())).status).toBe(200);
      expect(logged).toHaveBeenCalledWith(mine);
    } finally {
      logged.mockRestore();
    }
  });
});
