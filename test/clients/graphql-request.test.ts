import { ClientError, GraphQLClient, gql } from "graphql-request";
import { describe, expect, it } from "vitest";
import { CircuitOpenError, createCbFetch } from "../../src/index.js";
import { respond, useServer } from "../helpers/server.js";
import { settle, tripsThenRefuses } from "./kit.js";

// graphql-request 7, real, against a real server on 127.0.0.1. The code between "recipe"
// comments is the README's, as written there.
const server = useServer();
const query = gql`
  query Items {
    items
  }
`;

// cbfetch's retries wait up to 300 ms and 600 ms (full jitter): room for a loaded machine.
describe("graphql-request", { timeout: 20_000 }, () => {
  it("the recipe: queries as GET so cbfetch may retry them; a refusal rejects unwrapped", async () => {
    const API = server.origin;
    // recipe: graphql-request
    const cb = createCbFetch({ retry: 2 });
    const client = new GraphQLClient(`${API}/graphql`, { fetch: cb, method: "GET" });
    // end recipe
    const errors = await tripsThenRefuses(server, cb, () => client.request(query));
    for (const error of errors) expect(error).toBeInstanceOf(CircuitOpenError);
    expect(server.received.at(-1)?.method).toBe("GET");
  });

  it("a 503 is graphql-request's ClientError; a healthy answer is its data", async () => {
    const client = new GraphQLClient(`${server.origin}/graphql`, { fetch: createCbFetch() });
    server.handle(respond(503, "down"));
    const outcome = await settle(client.request(query));
    expect((outcome as { error: unknown }).error).toBeInstanceOf(ClientError);
    server.handle(respond(200, '{"data":{"items":[1]}}', { "content-type": "application/json" }));
    expect(await client.request(query)).toEqual({ items: [1] });
  });
});
