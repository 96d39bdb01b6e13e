import wretch from "wretch";
import { retry } from "wretch/middlewares";
import { describe, expect, it } from "vitest";
import { CircuitOpenError, createCbFetch, isRefusal, refusalOf } from "../../src/index.js";
import { respond, useServer } from "../helpers/server.js";
import { refusals, settle, tripsThenRefuses } from "./kit.js";

// wretch 3, real, against a real server on 127.0.0.1. The code between "recipe" comments is
// the README's, as written there.
const server = useServer();

// cbfetch's retries wait up to 300 ms and 600 ms (full jitter): room for a loaded machine.
describe("wretch", { timeout: 20_000 }, () => {
  it("the recipe: cbfetch retries; a refusal rejects unwrapped, and a catcher by name sees it", async () => {
    const API = server.origin;
    // recipe: wretch
    const cb = createCbFetch({ retry: 2 });
    const api = wretch(API).fetchPolyfill(cb);
    // end recipe
    const errors = await tripsThenRefuses(server, cb, () => api.get("/items").text());
    for (const error of errors) expect(error).toBeInstanceOf(CircuitOpenError);
    const caught = await api
      .catcher(
        "CircuitOpenError",
        (error) => `retry in ${Math.ceil(refusalOf(error)!.retryAfterMs / 1000)} s`,
      )
      .get("/items")
      .text();
    expect(caught).toMatch(/^retry in \d+ s$/);
  });

  it("wretch's retry middleware, as it comes, never retries a refusal (retryOnNetworkError: false)", async () => {
    const cb = createCbFetch({ failureThreshold: 1, openMs: 60_000 });
    const api = wretch(server.origin)
      .fetchPolyfill(cb)
      .middlewares([retry({ delayTimer: 1, maxAttempts: 3 })]);
    server.handle(respond(503));
    await settle(api.get("/items").text()); // the 503 trips it; the middleware's retry is refused
    const refused = refusals(cb);
    const outcome = await settle(api.get("/items").text());
    expect(isRefusal((outcome as { error: unknown }).error)).toBe(true);
    expect(refused.count).toBe(1);
  });

  it("a healthy answer parses as wretch does", async () => {
    const api = wretch(server.origin).fetchPolyfill(createCbFetch());
    server.handle(respond(200, '{"ok":1}', { "content-type": "application/json" }));
    expect(await api.post({ a: 1 }, "/items").json()).toEqual({ ok: 1 });
    expect(server.received.at(-1)?.body).toBe('{"a":1}');
  });
});
