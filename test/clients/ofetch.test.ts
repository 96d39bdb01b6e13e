import { FetchError, ofetch } from "ofetch";
import { describe, expect, it } from "vitest";
import { CircuitOpenError, createCbFetch, isRefusal } from "../../src/index.js";
import { respond, useServer } from "../helpers/server.js";
import { refusals, settle, tripsThenRefuses } from "./kit.js";

// ofetch 1.x, real, against a real server on 127.0.0.1. The code between "recipe" comments is
// the README's, as written there.
const server = useServer();

// cbfetch's retries wait up to 300 ms and 600 ms (full jitter): room for a loaded machine.
describe("ofetch", { timeout: 20_000 }, () => {
  it("by default, ofetch retries a refused GET once (a refusal has no response: it counts as a 500)", async () => {
    const cb = createCbFetch({ failureThreshold: 1, openMs: 60_000 });
    const api = ofetch.create({ baseURL: server.origin }, { fetch: cb });
    server.handle(respond(503));
    await settle(api("/items")); // the 503 trips it; ofetch's one retry is refused
    const refused = refusals(cb);
    const outcome = await settle(api("/items"));
    expect(isRefusal((outcome as { error: unknown }).error)).toBe(true);
    expect(refused.count).toBe(2); // the call, and ofetch's retry of the refusal
  });

  it("the recipe: retry 0 in ofetch, cbfetch retries; the refusal is FetchError's cause", async () => {
    const API = server.origin;
    // recipe: ofetch
    const cb = createCbFetch({ retry: 2 });
    const api = ofetch.create({ baseURL: API, retry: 0 }, { fetch: cb });
    // end recipe
    const errors = await tripsThenRefuses(server, cb, () => api("/items"));
    for (const error of errors) {
      expect(error).toBeInstanceOf(FetchError);
      expect((error as FetchError).cause).toBeInstanceOf(CircuitOpenError);
    }
  });

  it("parses a healthy answer as ofetch does", async () => {
    const api = ofetch.create({ baseURL: server.origin, retry: 0 }, { fetch: createCbFetch() });
    server.handle(respond(200, '{"ok":true}', { "content-type": "application/json" }));
    expect(await api("/items", { method: "POST", body: { a: 1 } })).toEqual({ ok: true });
    expect(server.received.at(-1)?.body).toBe('{"a":1}');
  });
});
