import { HTTPError } from "ky";
import { describe, expect, it } from "vitest";
import { createKy } from "../src/ky/index.js";
import { CircuitOpenError, createCbFetch } from "../src/index.js";
import { respond, useServer } from "./helpers/server.js";

// ky 2 through cbfetch against a real server on 127.0.0.1.
const server = useServer();
const url = (path = "/") => server.origin + path;
const fastRetries = { limit: 5, delay: () => 5 };

describe("cbfetch/ky", () => {
  it("sends every attempt through the breaker; an open circuit ends ky's retries at once", async () => {
    const cb = createCbFetch({ failureThreshold: 3, openMs: 60_000 });
    const api = createKy(cb, { retry: fastRetries });
    server.handle(respond(503));
    const hits = server.hits;
    const error = await api.get(url("/items")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CircuitOpenError); // not an HTTPError, not wrapped
    expect(server.hits - hits).toBe(3); // 3 attempts tripped it; the 4th never left
    expect(cb.state(url())).toBe("open");
  });

  it("never retries into an open circuit, even when the caller's shouldRetry says retry", async () => {
    const cb = createCbFetch({ failureThreshold: 1, openMs: 60_000 });
    let asked = 0;
    const api = createKy(cb, {
      retry: {
        ...fastRetries,
        shouldRetry: () => {
          asked++;
          return true;
        },
      },
    });
    server.handle(respond(503));
    const hits = server.hits;
    await expect(api.get(url("/always"))).rejects.toBeInstanceOf(CircuitOpenError);
    expect(server.hits - hits).toBe(1);
    expect(asked).toBe(1); // asked about the 503 only; the CircuitOpenError ended the loop
  });

  it("agrees with cbfetch on Retry-After: ky's retry after it is the probe", async () => {
    const cb = createCbFetch({ failureThreshold: 5, jitter: 0 });
    const api = createKy(cb, { retry: { limit: 2 } });
    let first = true;
    server.handle((req, res) => {
      if (first) {
        first = false;
        respond(503, "busy", { "retry-after": "1" })(req, res);
      } else respond(200, '{"ok":true}', { "content-type": "application/json" })(req, res);
    });
    const hits = server.hits;
    const started = Date.now();
    expect(await api.get(url("/retry")).json()).toEqual({ ok: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(server.hits - hits).toBe(2);
    expect(cb.state(url())).toBe("closed"); // the retry was the probe, and it closed
  });

  it("keeps ky's own errors and types: a 404 is an HTTPError and no failure", async () => {
    const cb = createCbFetch({ failureThreshold: 1 });
    const api = createKy(cb, { prefix: server.origin });
    server.handle(respond(404, "nope"));
    const error = await api.get("missing").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.status).toBe(404);
    expect(cb.state(url())).toBe("closed");
  });

  it("still asks the caller's shouldRetry for anything else", async () => {
    const cb = createCbFetch({ failureThreshold: 10 });
    const seen: unknown[] = [];
    const api = createKy(cb, {
      retry: {
        ...fastRetries,
        shouldRetry: ({ error }) => {
          seen.push(error);
          return false;
        },
      },
    });
    server.handle(respond(500));
    await api.get(url()).catch(() => {});
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(HTTPError);
    expect(() => createKy("nope" as never)).toThrow(/needs a fetch function/);
  });
});
