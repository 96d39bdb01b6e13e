// A module Service Worker that uses createCbFetch itself (as a Chrome extension's background
// worker does), with a store and sync: cbfetch/sw's, and for comparison cbfetch's own, whose
// parts load with import(), which a Service Worker may not use. `/__core?live=&dead=` runs the
// issue's measurement in the worker: another origin answers 200, then six refused connections.
import { createCbFetch as coreCreateCbFetch } from "../../src/index.js";
import { idbStore } from "../../src/idb/index.js";
import { createCbFetch } from "../../src/sw/index.js";
import type { FetchEventLike } from "../../src/sw/index.js";

declare const self: {
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  addEventListener(type: "install" | "activate", listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", listener: (event: FetchEventLike) => void): void;
};
interface ExtendableEvent extends Event {
  waitUntil(work: Promise<unknown>): void;
}

async function measure(make: typeof createCbFetch, name: string, live: string, dead: string) {
  const storeErrors: string[] = [];
  const cb = make({
    failureThreshold: 3,
    store: idbStore({ dbName: name }),
    sync: name,
    timeoutMs: 5000,
  });
  cb.addEventListener("storeerror", (event) => storeErrors.push(String(event.error)));
  await cb.ready;
  await cb(live);
  for (let i = 0; i < 6; i++) await cb(`${dead}/${i}`).catch(() => {});
  await cb.flush();
  const { state, ignored, failures, rejections } = cb.breaker(dead).stats;
  return { state, ignored, failures, rejections, storeErrors };
}

self.addEventListener("install", () => void self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.pathname !== "/__core") return;
  const live = url.searchParams.get("live")!;
  const dead = url.searchParams.get("dead")!;
  event.respondWith(
    (async () =>
      Response.json({
        sw: await measure(createCbFetch, "cbfetch-sw-core", live, dead),
        core: await measure(coreCreateCbFetch, "cbfetch-core", live, dead),
      }))(),
  );
});
