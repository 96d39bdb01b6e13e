import { AxiosError } from "axios";
import { FetchError } from "ofetch";
import { describe, expect, it } from "vitest";
import {
  BulkheadFullError,
  CircuitOpenError,
  createCbFetch,
  isCircuitOpenError,
  isRefusal,
  RefusalError,
  refusalOf,
  ThrottledError,
} from "../src/index.js";
import { rejection, useServer } from "./helpers/server.js";

// The guards (issue 25): a refusal recognised through the wrappers other clients put around
// it, with its retryAfterMs reachable. The wrappers are the real clients' own error classes.
const open = new CircuitOpenError("https://api.example.com", "open", 1_000_030_000, 1_000_000_000);
const full = new BulkheadFullError("https://api.example.com", 2, 0);
const throttled = new ThrottledError("https://api.example.com", 0.5, 250);

/** `error` wrapped as `Error`'s own `cause` does, `depth` times. */
const wrapped = (error: unknown, depth: number): unknown =>
  depth === 0 ? error : wrapped(new Error(`wrapper ${depth}`, { cause: error }), depth - 1);

describe("refusal guards", () => {
  it("every refusal shares one base class, and is no TypeError (clients retry those)", () => {
    for (const refusal of [open, full, throttled]) {
      expect(refusal).toBeInstanceOf(RefusalError);
      expect(refusal).toBeInstanceOf(Error);
      expect(refusal).not.toBeInstanceOf(TypeError);
      expect(refusalOf(refusal)).toBe(refusal);
      expect(isRefusal(refusal)).toBe(true);
    }
    expect(open.retryAfterMs).toBe(30_000);
    expect([full.retryAfterMs, throttled.retryAfterMs]).toEqual([0, 250]);
  });

  it("isCircuitOpenError is true for an open circuit only; isRefusal for each refusal", () => {
    expect([open, full, throttled].map(isCircuitOpenError)).toEqual([true, false, false]);
    expect([open, full, throttled].map((e) => isRefusal(wrapped(e, 2)))).toEqual([
      true,
      true,
      true,
    ]);
    expect(isCircuitOpenError(wrapped(open, 3))).toBe(true);
    expect(isCircuitOpenError(wrapped(full, 3))).toBe(false);
  });

  it("sees through axios's AxiosError, which copies the refusal's name but not its key", () => {
    // What axios's fetch adapter throws when env.fetch rejects with anything but a TypeError.
    const error = AxiosError.from(open, undefined, { headers: {} } as never);
    expect(error).toBeInstanceOf(AxiosError);
    expect(error.name).toBe("CircuitOpenError"); // copied by AxiosError.from…
    expect(error).not.toBeInstanceOf(CircuitOpenError); // …so a name check alone would lie
    expect(refusalOf(error)).toBe(open);
    expect(refusalOf(error)?.retryAfterMs).toBe(30_000);
    expect(isCircuitOpenError(error)).toBe(true);
  });

  it("sees through ofetch's FetchError", () => {
    const error = new FetchError("[GET] /items: <no response>", { cause: throttled });
    expect(refusalOf(error)).toBe(throttled);
    expect(refusalOf(error)?.retryAfterMs).toBe(250);
    expect(isCircuitOpenError(error)).toBe(false);
  });

  it("recognises another copy of cbfetch's refusal (another bundle) by its name and key", () => {
    class CircuitOpenError extends Error {
      override name = "CircuitOpenError";
      key = "https://api.example.com";
      retryAfterMs = 5;
    }
    const foreign = new CircuitOpenError("open");
    expect(refusalOf(wrapped(foreign, 1))).toBe(foreign);
    expect(isCircuitOpenError(foreign)).toBe(true);
    // A plain object is an error in JavaScript too (a structured clone, a postMessage).
    const cloned = { name: "BulkheadFullError", key: "k", retryAfterMs: 0 };
    expect(refusalOf({ cause: cloned })).toBe(cloned);
  });

  it("is not fooled by a name alone, nor by errors that are not refusals", () => {
    const named = Object.assign(new Error("x"), { name: "CircuitOpenError" });
    expect(isRefusal(named)).toBe(false);
    expect(isRefusal(new TypeError("fetch failed"))).toBe(false);
    expect(isRefusal(new DOMException("aborted", "AbortError"))).toBe(false);
    expect(isRefusal(wrapped(new Error("boom"), 3))).toBe(false);
  });

  it("answers false for what is not an error at all, and for causes that are not errors", () => {
    for (const value of [undefined, null, 0, 42, "CircuitOpenError", true, Symbol("x"), () => {}]) {
      expect(isRefusal(value)).toBe(false);
      expect(isRefusal(new Error("wrapper", { cause: value }))).toBe(false);
      expect(refusalOf({ cause: value })).toBeUndefined();
    }
  });

  it("ends on a cycle in a cause chain", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    Object.defineProperty(a, "cause", { value: b });
    expect(isRefusal(a)).toBe(false);
    const self: { cause?: unknown } = {};
    self.cause = self;
    expect(refusalOf(self)).toBeUndefined();
  });

  it("looks 8 levels deep: the refusal and 7 wrappers", () => {
    expect(refusalOf(wrapped(open, 7))).toBe(open);
    expect(refusalOf(wrapped(open, 8))).toBeUndefined();
  });

  it("never throws, even on an error whose getters throw (Safari's branded DOMException-likes)", () => {
    const hostile = Object.create(DOMException.prototype) as unknown; // its `name` getter throws
    expect(() => (hostile as Error).name).toThrow();
    expect(isRefusal(hostile)).toBe(false);
    expect(isRefusal(new Error("wrapper", { cause: hostile }))).toBe(false);
    const trap = new Proxy(
      {},
      {
        get() {
          throw new Error("trap");
        },
        getPrototypeOf() {
          throw new Error("trap");
        },
      },
    );
    expect(refusalOf(trap)).toBeUndefined();
    expect(isCircuitOpenError({ cause: trap })).toBe(false);
  });
});

describe("a real refusal through a real call", () => {
  const server = useServer();

  it("rejects with a CircuitOpenError whose retryAfterMs counts down to the circuit's retryAt", async () => {
    const cb = createCbFetch({ failureThreshold: 1, openMs: 60_000, jitter: 0 });
    server.handle((_req, res) => res.writeHead(503).end());
    await cb(server.url("/a"));
    const error = await rejection(cb(server.url("/b")));
    expect(server.hits).toBe(1);
    expect(isCircuitOpenError(error)).toBe(true);
    const refusal = refusalOf(new Error("wrapped", { cause: error }))!;
    expect(refusal.key).toBe(server.origin);
    expect(refusal.retryAfterMs).toBeGreaterThan(0);
    expect(refusal.retryAfterMs).toBeLessThanOrEqual(60_000);
  });
});
