// The dashboard's Service Worker (its "Service Worker mode"): every request of every tab of the
// site goes through one circuit breaker per origin, images and scripts included. Plain
// JavaScript; web-example/server.mjs bundles it with esbuild, as any bundler would.
import { handleFetch } from "cbfetch/sw";
import { idbStore } from "cbfetch/idb";

const OFFLINE_PAGE = "/offline.html";

const onFetch = handleFetch({
  store: idbStore({ dbName: "cbfetch-sw" }), // an open circuit survives the worker's restarts
  sync: "sw", // pages listening on "cbfetch:sw" see every origin's state (the banner)
  failureThreshold: 3,
  openMs: 5000,
  timeoutMs: 2000, // a hung origin counts as failing
  offlinePage: OFFLINE_PAGE, // a refused navigation gets this page, never a bare 503
  // The upstreams' control endpoints stay reachable: you must be able to heal an upstream.
  match: (request) => !new URL(request.url).pathname.startsWith("/__"),
});

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open("offline").then((cache) => cache.add(OFFLINE_PAGE)));
  void self.skipWaiting();
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", onFetch);
