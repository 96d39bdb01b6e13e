import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll } from "vitest";

/** What the test server does with the next request. */
export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Requests that reached the server (preflights excluded). */
  hits: number;
  /** Bodies and headers of the requests received, in order. */
  readonly received: Array<{
    method: string;
    url: string;
    body: string;
    headers: IncomingMessage["headers"];
  }>;
  /** Drops the connections of requests still waiting for an answer (hung ones). */
  dropConnections(): void;
  /** Replaces the handler. */
  handle(handler: Handler): void;
  close(): Promise<void>;
}

export const respond =
  (status: number, body = `status ${status}`, headers: Record<string, string> = {}) =>
  (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(status, { "content-type": "text/plain", ...headers });
    res.end(body);
  };

/** Drops the connection without an answer: fetch rejects with a network error. */
export const hangUp: Handler = (req) => req.socket.destroy();

/** Never answers (until the server closes). */
export const hang: Handler = () => {};

/**
 * A real HTTP server on 127.0.0.1 with an ephemeral port. It answers CORS (so happy-dom's
 * fetch, which enforces CORS, can call it) and counts every non-preflight request.
 */
export async function startServer(handler: Handler = respond(200)): Promise<TestServer> {
  let current = handler;
  const received: TestServer["received"] = [];
  const pending = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    res.setHeader("access-control-allow-origin", "*");
    res.setHeader("access-control-expose-headers", "*");
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
      res.writeHead(204, {
        "access-control-allow-methods": "*",
        "access-control-allow-headers": "*",
      });
      res.end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      state.hits++;
      pending.add(res);
      res.on("close", () => pending.delete(res));
      received.push({ method: req.method ?? "", url: req.url ?? "", body, headers: req.headers });
      current(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const state: TestServer = {
    origin: `http://127.0.0.1:${port}`,
    hits: 0,
    received,
    dropConnections() {
      for (const res of pending) res.socket?.destroy();
      pending.clear();
    },
    handle(next) {
      current = next;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return state;
}

/**
 * One real server for a test file: started before its tests, reset after each one (hung
 * requests dropped, the handler back to 200), closed after all. The returned object stands
 * for the server once it has started.
 */
export function useServer(): TestServer & { url(path?: string): string } {
  let current: TestServer | undefined;
  const started = (): TestServer => {
    if (current === undefined) throw new Error("the test server starts in beforeAll");
    return current;
  };
  beforeAll(async () => {
    current = await startServer();
  });
  afterEach(() => {
    current?.dropConnections();
    current?.handle(respond(200));
  });
  afterAll(() => current?.close());
  return {
    get origin() {
      return started().origin;
    },
    get hits() {
      return started().hits;
    },
    get received() {
      return started().received;
    },
    dropConnections: () => started().dropConnections(),
    handle: (handler) => started().handle(handler),
    close: () => started().close(),
    url: (path = "/") => started().origin + path,
  };
}

/** What a promise rejects with, or `undefined` if it resolves. */
export const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (e: unknown) => e,
  );
