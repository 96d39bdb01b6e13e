// The Service Worker of the cbfetch/sw tests (test/browser/sw.browser.test.ts): cbfetch/sw's
// handleFetch with an IndexedDB store, as the README's worker, plus `/__sw`, which tells the
// test what this start of the worker knows (when it started, its breakers, its transitions).
// Served two ways: bundled by esbuild with code splitting, and unbundled (each module as is).
import { idbStore } from "../../src/idb/index.js";
import { type FetchEventLike, handleFetch } from "../../src/sw/index.js";

// The few Service Worker types this script uses (the project's TypeScript lib is the DOM's).
interface ExtendableEvent extends Event {
  waitUntil(work: Promise<unknown>): void;
}
type FetchEvent = ExtendableEvent & FetchEventLike;
declare const self: {
  location: Location;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  addEventListener(type: "install" | "activate", listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", listener: (event: FetchEvent) => void): void;
};

const params = new URL(self.location.href).searchParams;
/** When this start of the worker began: a stopped worker restarts with another. */
const started = performance.timeOrigin + performance.now();
const transitions: Array<{ key: string; to: string; at: number }> = [];

const handler = handleFetch({
  store: idbStore(),
  failureThreshold: 3,
  openMs: Number(params.get("openMs") ?? 60_000),
  jitter: 0,
  // A cold start's first request waits for the stored state at most this long: generous, so a
  // busy machine's slow IndexedDB cannot let a request through.
  loadTimeoutMs: 5000,
  offlinePage: "/offline.html",
  // Everything but the test's own window into the worker.
  match: (request) => /^https?:/.test(request.url) && new URL(request.url).pathname !== "/__sw",
});
const storeErrors: string[] = [];
handler.cbFetch.addEventListener("storeerror", (event) => storeErrors.push(String(event.error)));
handler.cbFetch.addEventListener("statechange", (event) => {
  transitions.push({
    key: event.key,
    to: event.state,
    at: performance.timeOrigin + performance.now(),
  });
});

self.addEventListener("install", (event) => {
  void self.skipWaiting();
  event.waitUntil(caches.open("offline").then((cache) => cache.add("/offline.html")));
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.pathname !== "/__sw") return;
  // `?due=<key>`: that key's open circuit is due now (its next request is the probe).
  const due = url.searchParams.get("due");
  if (due) handler.cbFetch.breaker(due).forceOpen(0);
  const { cbFetch } = handler;
  event.respondWith(
    cbFetch.ready.then(() =>
      Response.json({ started, breakers: cbFetch.snapshot(), transitions, storeErrors }),
    ),
  );
});
self.addEventListener("fetch", handler);
