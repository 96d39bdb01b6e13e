import { afterEach, describe, expect, it } from "vitest";
import { memoryStore } from "../src/index.js";
import { createCbFetch, type FetchEventLike, handleFetch } from "../src/sw/index.js";
import { respond, startServer, type TestServer } from "./helpers/server.js";

// cbfetch/sw's handler outside a browser: its options, and what it answers, given a fetch
// event as a Service Worker gets one (a plain object here: Node has no FetchEvent; the real
// thing runs in test/browser/sw.browser.test.ts). Upstreams are real HTTP servers.

/** A fetch event for `request`: what the handler answered (undefined: it stood aside). */
function dispatch(handler: (event: FetchEventLike) => void, request: Request) {
  let answer: Promise<Response> | undefined;
  const kept: Array<Promise<unknown>> = [];
  handler({
    request,
    respondWith: (response) => void (answer = Promise.resolve(response)),
    waitUntil: (work) => void kept.push(work),
  });
  return { answer, kept };
}

let server: TestServer | undefined;
afterEach(() => server?.close());

describe("handleFetch's options", () => {
  it("names an option whose code it leaves out, and says where it goes", () => {
    expect(() => handleFetch({ retry: 2 } as never)).toThrow(
      'cbfetch/sw: handleFetch option "retry" goes to the instance: handleFetch({ cbFetch: createCbFetch({ retry, … }) })',
    );
    expect(() => handleFetch({ maxConcurrent: 4 } as never)).toThrow(/"maxConcurrent"/);
    expect(() => handleFetch({ cbFetch: createCbFetch(), openMs: 1000 })).toThrow(/"openMs"/);
    expect(() => handleFetch({ cbFetch: createCbFetch(), sync: false })).toThrow(/"sync"/);
  });

  it("rejects a match, fallback or offlinePage of the wrong type, naming it", () => {
    expect(() => handleFetch({ match: "/api" as never })).toThrow(
      'cbfetch/sw: option "match" must be a function, got string',
    );
    expect(() => handleFetch({ fallback: {} as never })).toThrow(/"fallback"/);
    expect(() => handleFetch({ offlinePage: "" })).toThrow(/"offlinePage"/);
    expect(() => handleFetch({ openMs: -1 })).toThrow(RangeError);
  });
});

describe("handleFetch's answers", () => {
  it("a refused request: 503, Retry-After in seconds, cbfetch-circuit and the key, no body", async () => {
    server = await startServer(respond(503));
    const handler = handleFetch({
      store: memoryStore(),
      failureThreshold: 2,
      openMs: 10_000,
      jitter: 0,
    });
    const url = `${server.origin}/items`;
    for (let i = 0; i < 2; i++) {
      const { answer, kept } = dispatch(handler, new Request(url));
      expect((await answer!).status).toBe(503);
      await Promise.all(kept);
    }
    const { answer } = dispatch(handler, new Request(url));
    const refused = await answer!;
    expect(refused.status).toBe(503);
    expect(Object.fromEntries(refused.headers)).toEqual({
      "retry-after": "10",
      "cbfetch-circuit": "open",
      "cbfetch-key": server.origin,
    });
    expect(await refused.text()).toBe("");
    expect(server.hits).toBe(2);
    expect(handler.cbFetch.state(url)).toBe("open");
  });

  it("fallback answers a refusal, or leaves it to the default with undefined", async () => {
    server = await startServer(respond(503));
    const handler = handleFetch({
      failureThreshold: 1,
      fallback: (request) =>
        request.url.endsWith("/cached") ? new Response("from cache") : undefined,
    });
    await dispatch(handler, new Request(`${server.origin}/x`)).answer;
    const cached = await dispatch(handler, new Request(`${server.origin}/cached`)).answer!;
    expect(await cached.text()).toBe("from cache");
    const other = await dispatch(handler, new Request(`${server.origin}/other`)).answer!;
    expect(other.headers.get("cbfetch-circuit")).toBe("open");
    expect(server.hits).toBe(1);
  });

  it("stands aside for what match leaves out, and for other schemes", async () => {
    server = await startServer(respond(200));
    const handler = handleFetch({ match: (request) => !request.url.includes("/skip") });
    expect(dispatch(handler, new Request(`${server.origin}/skip`)).answer).toBeUndefined();
    expect(dispatch(handler, new Request("data:text/plain,hi")).answer).toBeUndefined();
    const plain = handleFetch();
    expect(dispatch(plain, new Request("data:text/plain,hi")).answer).toBeUndefined();
    expect((await dispatch(plain, new Request(`${server.origin}/`)).answer!).status).toBe(200);
  });

  it("a network error is answered as one (Response.error()), as without a Service Worker", async () => {
    server = await startServer((req) => req.socket.destroy());
    const handler = handleFetch();
    const answer = await dispatch(handler, new Request(`${server.origin}/`)).answer!;
    expect(answer.type).toBe("error");
  });
});

describe("the README's worker", () => {
  it("is web-example/src/sw.js, as the dashboard serves it", async () => {
    const { readFile } = await import("node:fs/promises");
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const marker = "<!-- README-SW: web-example/src/sw.js -->\n```js\n";
    const start = readme.indexOf(marker);
    expect(start).toBeGreaterThan(0);
    const block = readme.slice(
      start + marker.length,
      readme.indexOf("```\n", start + marker.length),
    );
    const file = await readFile(new URL("../web-example/src/sw.js", import.meta.url), "utf8");
    expect(block).toBe(file);
  });
});
