import axios, { AxiosError } from "axios";
import axiosRetry, { isNetworkOrIdempotentRequestError } from "axios-retry";
import { describe, expect, it } from "vitest";
import { CircuitOpenError, createCbFetch, isRefusal } from "../../src/index.js";
import { hang, respond, useServer } from "../helpers/server.js";
import { HITS_TO_TRIP, refusals, settle, tripsThenRefuses } from "./kit.js";

// axios 1.x (its fetch adapter, env.fetch) and axios-retry, real, against a real server on
// 127.0.0.1. The code between "recipe" comments is the README's, as written there.
const server = useServer();

// cbfetch's retries wait up to 300 ms and 600 ms (full jitter): room for a loaded machine.
describe("axios", { timeout: 20_000 }, () => {
  it("two plain cb(url) calls make HITS_TO_TRIP requests before the circuit opens (the baseline)", async () => {
    const cb = createCbFetch({ retry: 2 });
    server.handle(respond(503));
    const before = server.hits;
    await cb(server.url("/items"));
    await cb(server.url("/items"));
    expect(server.hits - before).toBe(HITS_TO_TRIP);
    expect(cb.state(server.origin)).toBe("open");
  });

  it("the recipe: the fetch adapter sends through cb; cbfetch retries; a refusal arrives wrapped", async () => {
    const API = server.origin;
    // recipe: axios
    const cb = createCbFetch({ retry: 2 });
    const api = axios.create({ baseURL: API, adapter: "fetch", env: { fetch: cb } });
    // end recipe
    const errors = await tripsThenRefuses(server, cb, () => api.get("/items"));
    for (const error of errors) {
      expect(error).toBeInstanceOf(AxiosError); // so `instanceof CircuitOpenError` fails…
      expect(error).not.toBeInstanceOf(CircuitOpenError);
      expect((error as AxiosError).cause).toBeInstanceOf(CircuitOpenError); // …the guard looks here
    }
    // A 404 is axios's own error, not a failure of the API's: the circuit stays closed.
    server.handle(respond(404));
    const fresh = createCbFetch({ retry: 2 });
    const client = axios.create({ baseURL: API, adapter: "fetch", env: { fetch: fresh } });
    const notFound = await settle(client.get("/missing"));
    expect((notFound as { error: AxiosError }).error.response?.status).toBe(404);
    expect(fresh.state(API)).toBe("closed");
  });

  it("the response and its data arrive as axios parses them", async () => {
    const cb = createCbFetch({ retry: 2 });
    const api = axios.create({ baseURL: server.origin, adapter: "fetch", env: { fetch: cb } });
    server.handle(respond(200, '{"items":[1,2]}', { "content-type": "application/json" }));
    const response = await api.post("/items", { name: "x" });
    expect(response.data).toEqual({ items: [1, 2] });
    expect(server.received.at(-1)?.body).toBe('{"name":"x"}');
  });

  it("axios's timeout is the caller's abort to cbfetch (never a failure); cbfetch's timeoutMs is one", async () => {
    server.handle(hang);
    const withAxiosTimeout = createCbFetch({ failureThreshold: 1 });
    const api = axios.create({
      baseURL: server.origin,
      adapter: "fetch",
      env: { fetch: withAxiosTimeout },
      timeout: 50,
    });
    const aborted = await settle(api.get("/slow"));
    expect((aborted as { error: AxiosError }).error.code).toBe("ETIMEDOUT");
    expect(withAxiosTimeout.state(server.origin)).toBe("closed"); // a hung API never trips it
    const withTimeoutMs = createCbFetch({ failureThreshold: 1, timeoutMs: 50 });
    const cbApi = axios.create({
      baseURL: server.origin,
      adapter: "fetch",
      env: { fetch: withTimeoutMs },
    });
    await settle(cbApi.get("/slow"));
    expect(withTimeoutMs.state(server.origin)).toBe("open");
  });

  it("axios-retry's default retries a refused call 3 times (nothing sent, but the error comes late)", async () => {
    const cb = createCbFetch({ failureThreshold: 1, openMs: 60_000 });
    const api = axios.create({ baseURL: server.origin, adapter: "fetch", env: { fetch: cb } });
    axiosRetry(api, { retries: 3 });
    server.handle(respond(503));
    await settle(api.get("/items")); // 1 request trips it; axios-retry's retries are refused
    const refused = refusals(cb);
    const outcome = await settle(api.get("/items"));
    expect(isRefusal((outcome as { error: unknown }).error)).toBe(true);
    expect(refused.count).toBe(4); // the call and 3 retries of a refusal: what the recipe stops
  });

  it("the axios-retry recipe: no retry of a refusal; its retries go through the breaker", async () => {
    const API = server.origin;
    // recipe: axios-retry
    const cb = createCbFetch();
    const api = axios.create({ baseURL: API, adapter: "fetch", env: { fetch: cb } });
    axiosRetry(api, {
      retries: 2,
      retryCondition: (error) => !isRefusal(error) && isNetworkOrIdempotentRequestError(error),
    });
    // end recipe
    server.handle(respond(503));
    const before = server.hits;
    await settle(api.get("/items")); // 3 attempts
    await settle(api.get("/items")); // 2 more trip it (failureThreshold 5); the 3rd is refused
    expect(server.hits - before).toBe(5);
    expect(cb.state(API)).toBe("open");
    const refused = refusals(cb);
    for (let call = 0; call < 3; call++) {
      const outcome = await settle(api.get("/items"));
      expect(isRefusal((outcome as { error: unknown }).error)).toBe(true);
    }
    expect(refused.count).toBe(3);
    expect(server.hits - before).toBe(5);
  });
});
