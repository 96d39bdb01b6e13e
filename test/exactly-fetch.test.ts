import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BulkheadFullError,
  type CbFetchOptions,
  CircuitOpenError,
  createCbFetch,
} from "../src/index.js";
import { rejection, respond, useServer } from "./helpers/server.js";

// Issue 23, "exactly fetch", third pass: each case a reviewer reproduced against a real server
// on 127.0.0.1, where cbfetch differed from fetch. DESIGN §1 (init fields and signals pass
// through), §2 (the caller's mistakes are never the origin's), §8 (retry). In Node, a server
// runtime: every network error counts there, so a mistake misread as one would open a circuit.
const server = useServer();
const url = (path = "/") => server.origin + path;
const instances: Array<{ close(): Promise<void> }> = [];
function make(options: CbFetchOptions = {}) {
  const cb = createCbFetch({ failureThreshold: 2, jitter: 0, ...options });
  instances.push(cb);
  return cb;
}
afterEach(async () => {
  await Promise.all(instances.splice(0).map((cb) => cb.close()));
});

/** Sends headers, then a chunk every 20 ms until the connection closes. */
const streamForever = (_req: unknown, res: ServerResponse) => {
  res.writeHead(200, { "content-type": "text/plain" });
  const timer = setInterval(() => res.write("chunk\n"), 20);
  res.on("close", () => clearInterval(timer));
};

describe("the caller's abort works after the headers (issue 23.1)", () => {
  it.each([{ timeoutMs: 10_000 }, { totalTimeoutMs: 10_000 }, {}])(
    "aborting during a streaming body rejects the body read with an AbortError (%o)",
    async (options) => {
      const cb = make(options);
      server.handle(streamForever);
      const controller = new AbortController();
      const response = await cb(url("/stream"), { signal: controller.signal });
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      await reader.read(); // the body is flowing
      controller.abort();
      // Plain fetch rejects the read at once; before the fix the body kept coming forever.
      await expect(reader.read()).rejects.toMatchObject({ name: "AbortError" });
    },
  );
});

describe("one long-lived caller signal, many responses alive", () => {
  it("adds one listener to it, not one per call: Node never warns of a leak", async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    try {
      const cb = make({ timeoutMs: 10_000 });
      const page = new AbortController();
      const kept: Response[] = [];
      for (let i = 0; i < 30; i++) kept.push(await cb(url("/many"), { signal: page.signal }));
      await new Promise((resolve) => setTimeout(resolve, 10)); // warnings are emitted on a tick
      expect(warnings).toEqual([]);
      page.abort(); // and every body still follows it
      await Promise.all(
        kept.map((r) => expect(r.text()).rejects.toMatchObject({ name: "AbortError" })),
      );
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("a Request keeps its referrer and referrer policy (issue 23.2)", () => {
  it.each([{ timeoutMs: 10_000 }, { totalTimeoutMs: 10_000 }, {}])(
    "the Referer header a Request carries is sent (%o)",
    async (options) => {
      const cb = make(options);
      const request = new Request(url("/referred"), {
        referrer: url("/from/here"),
        referrerPolicy: "unsafe-url",
      });
      expect((await cb(request)).status).toBe(200);
      expect(server.received.at(-1)?.headers.referer).toBe(url("/from/here"));
    },
  );
});

describe("what fetch rejects before sending is the caller's (issue 23.3)", () => {
  const lockedStream = () => {
    const stream = new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array([1])) });
    stream.getReader(); // locked, never released
    return stream;
  };
  const disturbedStream = async () => {
    const stream = new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array([1])) });
    const reader = stream.getReader();
    await reader.read();
    reader.releaseLock(); // unlocked, but disturbed
    return stream;
  };
  const lockedRequest = () => {
    const request = new Request(url("/locked"), { method: "POST", body: "x" });
    request.body?.getReader(); // locked, bodyUsed still false
    return request;
  };
  const cases: Record<string, () => Promise<[RequestInfo | URL, RequestInit?]>> = {
    "a locked ReadableStream body": async () => [
      url(),
      { method: "POST", body: lockedStream(), duplex: "half" } as RequestInit,
    ],
    "a disturbed ReadableStream body": async () => [
      url(),
      { method: "POST", body: await disturbedStream(), duplex: "half" } as RequestInit,
    ],
    "a Request whose body stream is locked, not read": async () => [lockedRequest()],
    "init.window that is not null": async () => [url(), { window: {} } as unknown as RequestInit],
    'mode: "navigate"': async () => [url(), { mode: "navigate" }],
    "a forbidden method (TRACE)": async () => [url(), { method: "TRACE" }],
  };

  it.each(Object.keys(cases))("%s: rejected as fetch rejects it, never counted", async (name) => {
    const cb = make({ retry: 2 });
    const hits = server.hits;
    for (let i = 0; i < 4; i++) {
      const [input, init] = await (
        cases[name] as () => Promise<[RequestInfo | URL, RequestInit?]>
      )();
      const error = await rejection(cb(input, init));
      expect(error).toBeInstanceOf(TypeError); // as fetch's own, not a CircuitOpenError
    }
    expect(server.hits).toBe(hits); // nothing was sent
    expect(cb.state(url())).toBe("closed");
    expect(cb.snapshot()[0] ?? { failures: 0, retries: 0 }).toMatchObject({
      failures: 0,
      retries: 0,
    });
  });

  it('redirect: "error" meeting a healthy 3xx is not counted against the origin', async () => {
    const cb = make({ retry: 2 });
    server.handle(respond(302, "", { location: "/elsewhere" }));
    for (let i = 0; i < 4; i++) {
      expect(await rejection(cb(url("/moved"), { redirect: "error" }))).toBeInstanceOf(TypeError);
    }
    expect(cb.state(url())).toBe("closed");
    expect(cb.snapshot()[0]).toMatchObject({ failures: 0, retries: 0 });
  });

  it("a network error while uploading a stream body still counts (the stream was taken)", async () => {
    const cb = make();
    server.handle((req) => req.socket.destroy());
    for (let i = 0; i < 2; i++) {
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("x".repeat(1000)));
          controller.close();
        },
      });
      const init = { method: "POST", body, duplex: "half" } as RequestInit;
      expect(await rejection(cb(url("/upload"), init))).toBeInstanceOf(TypeError);
    }
    expect(cb.state(url())).toBe("open");
  });

  it("a Request with a body that meets a network error still counts", async () => {
    const cb = make();
    server.handle((req) => req.socket.destroy());
    for (let i = 0; i < 2; i++) {
      const request = new Request(url("/post"), { method: "POST", body: "payload" });
      expect(await rejection(cb(request))).toBeInstanceOf(TypeError);
    }
    expect(cb.state(url())).toBe("open");
  });
});

describe("totalTimeoutMs is cbfetch's own deadline: a timeout (issue 23.4)", () => {
  it("a hung origin trips under totalTimeoutMs as it does under timeoutMs", async () => {
    server.handle(() => {}); // never answers
    for (const options of [{ timeoutMs: 50 }, { totalTimeoutMs: 50 }]) {
      const cb = make(options);
      for (let i = 0; i < 2; i++) {
        expect(await rejection(cb(url("/hung")))).toMatchObject({ name: "TimeoutError" });
      }
      expect(cb.state(url()), JSON.stringify(options)).toBe("open");
      expect(cb.snapshot()[0]).toMatchObject({ failures: 2, ignored: 0 });
      server.dropConnections();
    }
  });

  it("the caller's own abort under totalTimeoutMs is still the caller's", async () => {
    server.handle(() => {});
    const cb = make({ totalTimeoutMs: 10_000 });
    for (let i = 0; i < 3; i++) {
      const controller = new AbortController();
      const pending = cb(url("/hung"), { signal: controller.signal });
      await vi.waitFor(() => expect(server.received.length).toBeGreaterThan(0));
      controller.abort();
      expect(await rejection(pending)).toMatchObject({ name: "AbortError" });
    }
    expect(cb.state(url())).toBe("closed");
    expect(cb.snapshot()[0]).toMatchObject({ failures: 0 });
  });
});

describe("a refused retry ends with the last real outcome, not the fallback (issue 23.5)", () => {
  /** Answers 503, but holds `/slow` until `release()`. */
  function slowAndFailing() {
    let release: () => void = () => {};
    server.handle((req, res) => {
      if (req.url === "/slow") release = () => respond(200)(req, res);
      else respond(503)(req, res);
    });
    return () => release();
  }

  it("a bulkhead that refuses the retry: the caller gets the real 503", async () => {
    const cb = make({
      retry: { limit: 2, delayMs: 1, budget: false },
      maxConcurrent: 1,
      maxQueue: 0,
      failureThreshold: 10,
      fallback: () => new Response("FALLBACK"),
    });
    const release = slowAndFailing();
    // Before the retry's wait, another call takes the only slot: the retry is refused.
    let slow: Promise<Response> | undefined;
    cb.addEventListener("retry", () => {
      slow ??= cb(url("/slow"));
    });
    const before = server.received.length;
    const response = await cb(url("/flaky"));
    expect(response.status).toBe(503);
    expect(await response.text()).toBe("status 503");
    await vi.waitFor(() => expect(server.received.slice(before).at(-1)?.url).toBe("/slow"));
    release();
    expect((await (slow as Promise<Response>)).status).toBe(200);
  });

  it("a first attempt the bulkhead refuses still gets the fallback", async () => {
    const cb = make({
      maxConcurrent: 1,
      maxQueue: 0,
      retry: 2,
      fallback: (_request, error) => new Response(`FALLBACK ${error.name}`),
    });
    const release = slowAndFailing();
    const before = server.received.length;
    const slow = cb(url("/slow"));
    await vi.waitFor(() => expect(server.received.slice(before).at(-1)?.url).toBe("/slow"));
    const refused = await cb(url("/other"));
    expect(await refused.text()).toBe(`FALLBACK ${new BulkheadFullError("", 1, 0).name}`);
    release();
    expect((await slow).status).toBe(200);
  });
});

describe("a body that cannot be replayed is never retried (issue 23.6)", () => {
  it("an async-iterable PUT body is sent once, not resent empty", async () => {
    const cb = make({ retry: { limit: 2, delayMs: 1, budget: false }, failureThreshold: 10 });
    server.handle(respond(503));
    async function* body() {
      yield new TextEncoder().encode("the only copy");
    }
    const init = { method: "PUT", body: body(), duplex: "half" } as unknown as RequestInit;
    const before = server.received.length;
    expect((await cb(url("/resource"), init)).status).toBe(503);
    const sent = server.received.slice(before);
    expect(sent.map((r) => r.body)).toEqual(["the only copy"]);
  });

  it.each([
    ["a string", () => "text"],
    ["URLSearchParams", () => new URLSearchParams({ a: "1" })],
    ["a Blob", () => new Blob(["blob"])],
    ["an ArrayBuffer", () => new TextEncoder().encode("bytes").buffer],
    ["a typed array", () => new TextEncoder().encode("view")],
    [
      "FormData",
      () => {
        const form = new FormData();
        form.append("field", "value");
        return form;
      },
    ],
  ])("%s body is replayed whole", async (_, body) => {
    const cb = make({ retry: { limit: 1, delayMs: 1, budget: false }, failureThreshold: 10 });
    server.handle(respond(503));
    const before = server.received.length;
    await cb(url("/resource"), { method: "PUT", body: body() });
    // (Each multipart body gets a boundary of its own.)
    const sent = server.received.slice(before).map((r) => r.body.replace(/-+\w+/g, "--"));
    expect(sent).toHaveLength(2);
    expect(sent[0]).not.toBe("");
    expect(sent[1]).toBe(sent[0]);
  });
});

describe("a refusal is still a CircuitOpenError (sanity)", () => {
  it("after a trip", async () => {
    const cb = make();
    server.handle(respond(503));
    await cb(url());
    await cb(url());
    expect(await rejection(cb(url()))).toBeInstanceOf(CircuitOpenError);
  });
});
