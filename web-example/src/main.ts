// The dashboard: one cbfetch instance (IndexedDB + cross-tab sync) behind a ky instance, calling
// two flaky upstreams every 400 ms, with one card per upstream (= per origin = per breaker).
import { type CircuitEvent, CircuitOpenError, createCbFetch } from "cbfetch";
import { idbStore } from "cbfetch/idb";
import { createKy } from "cbfetch/ky";
import { HTTPError } from "ky";
import { Card, MODES, type Mode, type Transition } from "./card.js";
import { serviceWorkerMode } from "./sw-mode.js";

interface Upstream {
  name: string;
  origin: string;
}

const POLL_MS = 400;
const MODE_POLL_MS = 1000;
const FAILURE_THRESHOLD = 3;
const TIMEOUT_MS = 2000;

// `?openMs=3000` shortens the open time (the browser test uses it); 5 s otherwise.
const requested = Number(new URLSearchParams(location.search).get("openMs"));
const OPEN_MS = Number.isInteger(requested) && requested > 0 ? requested : 5000;

const status = document.getElementById("status");
const say = (text: string) => {
  if (status) status.textContent = text;
};

// The cards come first: the instance may report restored state as soon as it exists, and
// every statechange must find its card.
const upstreams = await loadUpstreams();
const template = document.querySelector<HTMLTemplateElement>("template#card");
const container = document.getElementById("cards");
if (!template || !container) throw new Error("index.html lacks template#card or #cards");

const cards = new Map<string, Card>();
for (const upstream of upstreams) {
  const card = new Card(template, upstream.name, upstream.origin, FAILURE_THRESHOLD, (mode) => {
    void switchMode(upstream, card, mode);
  });
  cards.set(upstream.origin, card);
  container.append(card.element);
}

const cb = createCbFetch({
  // Its own database and channel name, so other cbfetch pages on this origin do not mix in.
  store: idbStore({ dbName: "cbfetch-dashboard" }),
  sync: "dashboard",
  failureThreshold: FAILURE_THRESHOLD,
  openMs: OPEN_MS,
  maxOpenMs: 8 * OPEN_MS,
  // cbfetch's own timeout, not ky's: ky's aborts the request through its signal, which
  // cbfetch rightly treats as the caller giving up (not a failure), so "slow" would never trip.
  timeoutMs: TIMEOUT_MS,
});
// ky's defaults otherwise (2 retries with backoff, Retry-After honoured); each attempt goes
// through `cb`, so a retry into an open circuit is refused instead of sent.
const api = createKy(cb, { timeout: false });

// Where a transition came from: this tab's own call if that call's outcome follows it in the
// same task (a local trip, close or re-open); otherwise what the page found when it loaded (the
// store, or the other tabs' answer), until `ready`; after that, another tab. Open → half-open is
// always local (each tab derives it from retryAt).
let loaded = false;
const justChanged = new Map<string, Transition>();
// Per key, the open episode the timeline last showed: a re-open learnt without a state change
// (this tab was still open) fires no statechange event, so `render` adds it.
const shown = new Map<string, { reopenCount: number; retryAt: number | undefined }>();
cb.addEventListener("statechange", (event: CircuitEvent) => {
  const { reopenCount } = cb.breaker(event.key).stats;
  const transition: Transition = {
    at: Date.now(),
    from: event.previousState,
    to: event.state,
    retryAt: event.retryAt,
    reopenCount,
    source: event.state === "half-open" ? "this tab" : loaded ? "another tab" : "restored",
  };
  cards.get(event.key)?.addTransition(transition);
  shown.set(event.key, { reopenCount, retryAt: event.retryAt });
  justChanged.set(event.key, transition);
  queueMicrotask(() => justChanged.delete(event.key));
});
const onOutcome = (outcome: "ok" | "fail") => (event: CircuitEvent) => {
  const card = cards.get(event.key);
  card?.addOutcome(outcome);
  const transition = justChanged.get(event.key);
  if (card && transition) card.markLocal(transition);
};
cb.addEventListener("success", onOutcome("ok"));
cb.addEventListener("failure", onOutcome("fail"));
cb.addEventListener("reject", (event: CircuitEvent) => cards.get(event.key)?.addOutcome("saved"));
cb.addEventListener("storeerror", (event: CircuitEvent) => {
  say(`storage or sync problem (cbfetch carries on in memory): ${describe(event.error)}`);
});

function render(): void {
  const rows = new Map(cb.snapshot().map((row) => [row.key, row]));
  const now = Date.now();
  for (const [origin, card] of cards) {
    const row = rows.get(origin);
    const last = shown.get(origin);
    // Another tab's probe failed while this tab was still open: a re-open without a state
    // change here, shown like the others.
    if (row?.state === "open" && last && row.reopenCount > last.reopenCount) {
      card.addTransition({
        at: now,
        from: "open",
        to: "open",
        retryAt: row.retryAt,
        reopenCount: row.reopenCount,
        source: "another tab",
      });
      shown.set(origin, { reopenCount: row.reopenCount, retryAt: row.retryAt });
    }
    card.render(row, now);
  }
}

// The cards read "loading" until the stored and shared state is in: drawn before, a circuit
// open in IndexedDB or another tab would show "closed" for a moment after every reload.
await cb.ready;
loaded = true;
render();
setInterval(render, 100);
say(
  `IndexedDB "cbfetch-dashboard", BroadcastChannel "cbfetch:dashboard"; ` +
    `${FAILURE_THRESHOLD} failures in a row open a circuit for ${OPEN_MS / 1000} s, ` +
    `calls time out after ${TIMEOUT_MS / 1000} s.`,
);
await serviceWorkerMode(upstreams);
// The browser test waits for this before it looks at the cards.
document.body.dataset.ready = "true";

for (const upstream of upstreams) {
  const card = cards.get(upstream.origin);
  if (!card) continue;
  void poll(upstream, card);
  void watchMode(upstream, card);
}

async function loadUpstreams(): Promise<Upstream[]> {
  const response = await fetch("/config.json");
  const config: unknown = await response.json();
  const list = typeof config === "object" && config !== null && "upstreams" in config;
  if (!list || !Array.isArray(config.upstreams)) throw new Error("bad /config.json");
  return config.upstreams.filter(
    (u: unknown): u is Upstream =>
      typeof u === "object" &&
      u !== null &&
      "name" in u &&
      "origin" in u &&
      typeof u.name === "string" &&
      typeof u.origin === "string",
  );
}

/** Calls the upstream through ky + cbfetch, one call every POLL_MS (never two at once). */
async function poll(upstream: Upstream, card: Card): Promise<void> {
  for (;;) {
    const started = performance.now();
    // Reports every attempt as it answers, so a ky retry waiting out a Retry-After shows.
    const afterResponse = ({
      response,
      retryCount,
    }: {
      response: Response;
      retryCount: number;
    }) => {
      const ms = Math.round(performance.now() - started);
      const retryAfter = response.headers.get("retry-after");
      card.setLast(
        `last answer: ${response.status} ${response.statusText} after ${ms} ms` +
          (retryCount > 0 ? ` (ky retry ${retryCount})` : "") +
          (retryAfter ? `; Retry-After ${retryAfter} s, then ky's retry probes` : ""),
      );
    };
    try {
      await api
        .get(`${upstream.origin}/items`, { hooks: { afterResponse: [afterResponse] } })
        .json();
    } catch (error) {
      card.setLast(`last call: ${describe(error)}`);
    }
    await sleep(POLL_MS - (performance.now() - started));
  }
}

// The control endpoints use the plain fetch on purpose: you must be able to heal an upstream
// whose circuit is open, and these calls are not what the breaker is about.
async function switchMode(upstream: Upstream, card: Card, mode: Mode): Promise<void> {
  try {
    const response = await fetch(`${upstream.origin}/__mode`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mode }),
    });
    card.setMode(modeOf(await response.json()));
  } catch (error) {
    say(`could not switch upstream ${upstream.name}: ${describe(error)}`);
  }
}

/** Follows the upstream's mode, which another tab may switch too. */
async function watchMode(upstream: Upstream, card: Card): Promise<void> {
  for (;;) {
    try {
      const response = await fetch(`${upstream.origin}/__mode`);
      card.setMode(modeOf(await response.json()));
    } catch {
      card.setMode(undefined);
    }
    await sleep(MODE_POLL_MS);
  }
}

function modeOf(body: unknown): Mode | undefined {
  const mode = typeof body === "object" && body !== null && "mode" in body ? body.mode : undefined;
  return MODES.find((m) => m === mode);
}

function describe(error: unknown): string {
  if (error instanceof CircuitOpenError) {
    return `refused by the ${error.state} circuit, not sent`;
  }
  if (error instanceof HTTPError) {
    return `${error.response.status} ${error.response.statusText}, ky gave up`;
  }
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return `timed out after ${TIMEOUT_MS / 1000} s (cbfetch's timeoutMs)`;
  }
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
