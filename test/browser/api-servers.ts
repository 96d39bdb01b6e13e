import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What an API origin does with `/api/*`: answer 200, 503, or 429 with `Retry-After: 30`, or
 * refuse (drop the connection without an answer: the browser's fetch rejects).
 */
export type ApiMode = "ok" | "503" | "429" | "refuse";

/** An API on an origin of its own (127.0.0.1, its own port), for a page on another origin. */
export interface Api {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** `<origin>/api/items` */
  readonly url: string;
  /** @default "ok" */
  mode: ApiMode;
  /**
   * CORS headers it sends: `allow` is `Access-Control-Allow-Origin: *` (without it the browser
   * turns every answer into a `TypeError`), `expose` is `Access-Control-Expose-Headers:
   * Retry-After` (without it the page cannot read `Retry-After`).
   * @default { allow: true, expose: true }
   */
  cors: { allow: boolean; expose: boolean };
  /**
   * Requests that reached it. With `"refuse"` one fetch can count up to 3: Chromium retries a
   * GET whose connection closed without a byte.
   */
  hits: number;
  /** The `Referer` header of each request that reached it (`""` when none was sent). */
  readonly referers: string[];
  close(): Promise<void>;
}

export async function startApi(): Promise<Api> {
  const send = (api: Api, res: ServerResponse, status: number, headers = {}) => {
    res.writeHead(status, {
      "content-type": "text/plain",
      "cache-control": "no-store",
      ...(api.cors.allow ? { "access-control-allow-origin": "*" } : {}),
      ...(api.cors.expose ? { "access-control-expose-headers": "Retry-After" } : {}),
      ...headers,
    });
    res.end(`status ${status}`);
  };
  const handle = (api: Api, req: IncomingMessage, res: ServerResponse) => {
    api.hits++;
    api.referers.push(req.headers.referer ?? "");
    switch (api.mode) {
      case "ok":
        return send(api, res, 200);
      case "503":
        return send(api, res, 503);
      case "429":
        return send(api, res, 429, { "retry-after": "30" });
      case "refuse":
        return req.socket.destroy();
    }
  };
  // Requests come only once it listens, after `api` is set.
  const server = createServer((req, res) => handle(api, req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const api: Api = {
    origin,
    url: `${origin}/api/items`,
    mode: "ok",
    cors: { allow: true, expose: true },
    hits: 0,
    referers: [],
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}
