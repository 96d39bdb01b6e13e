// The page of the cbfetch/sw tests: registers the Service Worker, and makes requests the way
// a site does (fetch, <img>), none of them through cbfetch. Its own createCbFetch({ sync: true })
// only listens: it shows what a page learns of the worker's breakers.
import { createCbFetch } from "../../src/index.js";

export interface SwCall {
  status?: number;
  retryAfter?: string | null;
  circuit?: string | null;
  key?: string | null;
  bodyLength?: number;
  error?: string;
}
export interface PageTransition {
  key: string;
  to: string;
  at: number;
}

// Only on `/?sync`: the other tabs must not tell a restarted worker what it should remember.
const cb = createCbFetch({ sync: new URLSearchParams(location.search).has("sync") });
const transitions: PageTransition[] = [];
cb.addEventListener("statechange", (event) => {
  transitions.push({
    key: event.key,
    to: event.state,
    at: performance.timeOrigin + performance.now(),
  });
});

const swTest = {
  transitions,
  /** Registers `url` as a module Service Worker and waits until it controls this page. */
  async register(url: string): Promise<boolean> {
    await navigator.serviceWorker.register(url, { type: "module", scope: "/" });
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve) =>
        navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }),
      );
    }
    return true;
  },
  controlled: () => navigator.serviceWorker.controller !== null,
  async call(url: string, init?: RequestInit): Promise<SwCall> {
    try {
      const response = await fetch(url, init);
      const body = await response.arrayBuffer();
      const header = (name: string) => response.headers.get(name);
      return {
        status: response.status,
        retryAfter: header("retry-after"),
        circuit: header("cbfetch-circuit"),
        key: header("cbfetch-key"),
        bodyLength: body.byteLength,
      };
    } catch (error) {
      return { error: String(error) };
    }
  },
  /** Loads an image as a page does (no-cors): "load" or "error". */
  image(url: string): Promise<string> {
    return new Promise((resolve) => {
      const image = new Image();
      image.onload = () => resolve("load");
      image.onerror = () => resolve("error");
      image.src = url;
    });
  },
  ready: () => cb.ready.then(() => true),
  state: (key: string) => cb.state(key),
  /** The records in the site's IndexedDB store (cbfetch/idb's defaults). */
  async stored(): Promise<unknown[]> {
    // Never create the database here: the worker's store must find it as it made it.
    const databases = await indexedDB.databases();
    if (!databases.some((db) => db.name === "cbfetch")) return [];
    return new Promise((resolve, reject) => {
      const open = indexedDB.open("cbfetch");
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains("breakers")) return resolve([]);
        const all = db.transaction("breakers").objectStore("breakers").getAll();
        all.onsuccess = () => resolve(all.result);
        all.onerror = () => reject(all.error);
      };
    });
  },
};
declare global {
  interface Window {
    swTest: typeof swTest;
  }
}
window.swTest = swTest;
