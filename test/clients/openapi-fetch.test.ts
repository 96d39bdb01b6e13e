import createClient from "openapi-fetch";
import { describe, expect, it } from "vitest";
import { CircuitOpenError, createCbFetch } from "../../src/index.js";
import { respond, useServer } from "../helpers/server.js";
import { tripsThenRefuses } from "./kit.js";

// openapi-fetch, real, against a real server on 127.0.0.1. The code between "recipe" comments
// is the README's, as written there.
const server = useServer();

/** What openapi-typescript generates for `GET /items`, by hand. */
interface paths {
  "/items": {
    get: {
      parameters: { query?: never; header?: never; path?: never; cookie?: never };
      requestBody?: never;
      responses: {
        200: { headers: { [name: string]: unknown }; content: { "application/json": number[] } };
        503: { headers: { [name: string]: unknown }; content: { "text/plain": string } };
      };
    };
  };
}

// cbfetch's retries wait up to 300 ms and 600 ms (full jitter): room for a loaded machine.
describe("openapi-fetch", { timeout: 20_000 }, () => {
  it("the recipe: a failing status is { error }, a refusal rejects unwrapped", async () => {
    const API = server.origin;
    // recipe: openapi-fetch
    const cb = createCbFetch({ retry: 2 });
    const client = createClient<paths>({ baseUrl: API, fetch: cb });
    // end recipe
    const errors = await tripsThenRefuses(server, cb, async () => {
      const { error, response } = await client.GET("/items", { parseAs: "text" });
      expect(response.status).toBe(503); // a failing status resolves, as openapi-fetch does
      return error;
    });
    for (const error of errors) expect(error).toBeInstanceOf(CircuitOpenError);
  });

  it("a healthy answer is { data }", async () => {
    const client = createClient<paths>({ baseUrl: server.origin, fetch: createCbFetch() });
    server.handle(respond(200, "[1,2]", { "content-type": "application/json" }));
    const { data } = await client.GET("/items");
    expect(data).toEqual([1, 2]);
  });
});
