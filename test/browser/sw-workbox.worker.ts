// A site that already routes with Workbox (workbox-routing, workbox-strategies): its API goes
// through a NetworkFirst strategy with cbfetch/sw's Workbox plugin, on the breakers of the
// handleFetch that answers the rest of the site (one state for both). As the README's recipe.
import { registerRoute } from "workbox-routing";
import { NetworkFirst } from "workbox-strategies";
import { idbStore } from "../../src/idb/index.js";
import { type FetchEventLike, handleFetch, workboxPlugin } from "../../src/sw/index.js";

declare const self: {
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  addEventListener(type: "install" | "activate", listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", listener: (event: FetchEventLike) => void): void;
};
interface ExtendableEvent extends Event {
  waitUntil(work: Promise<unknown>): void;
}

const isApi = (url: URL) => url.pathname.startsWith("/api/");
const onFetch = handleFetch({
  store: idbStore(),
  failureThreshold: 3,
  openMs: 60_000,
  jitter: 0,
  loadTimeoutMs: 5000,
  // Workbox answers the API; a request has one answer.
  match: (request) => !isApi(new URL(request.url)) && new URL(request.url).pathname !== "/__sw",
});
registerRoute(
  ({ url }) => isApi(url),
  new NetworkFirst({ cacheName: "api", plugins: [workboxPlugin(onFetch.cbFetch)] }),
);
self.addEventListener("fetch", onFetch);

self.addEventListener("install", () => void self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  if (new URL(event.request.url).pathname !== "/__sw") return;
  event.respondWith(Response.json({ breakers: onFetch.cbFetch.snapshot() }));
});
