// One upstream's card: its circuit's state, counts, last calls, transitions and mode buttons.
// Plain DOM: the markup lives in index.html's <template id="card">, this only fills it in.
import type { BreakerSnapshot, CircuitState } from "cbfetch";

export const MODES = ["healthy", "503", "slow", "retry-after", "down"] as const;
export type Mode = (typeof MODES)[number];

/** What one attempt gave: a success, a failure, or a call the open circuit refused. */
export type Outcome = "ok" | "fail" | "saved";

/**
 * Where a transition came from: this tab's own call, another tab (over BroadcastChannel, after
 * the page was ready), or what the page found when it loaded (IndexedDB, or the other tabs'
 * answer to its hello).
 */
export type Source = "this tab" | "another tab" | "restored";

export interface Transition {
  /** Epoch ms. */
  at: number;
  from: CircuitState | undefined;
  to: CircuitState;
  retryAt: number | undefined;
  /** How many times the circuit had re-opened since it last closed (0: a first open). */
  reopenCount: number;
  source: Source;
}

const MAX_OUTCOMES = 48;
const MAX_TRANSITIONS = 7;

const clockTime = (at: number) =>
  `${new Date(at).toLocaleTimeString("en-GB")}.${String(Math.floor((at % 1000) / 100))}`;
const seconds = (ms: number) => `${(Math.max(0, ms) / 1000).toFixed(1)} s`;

export class Card {
  readonly element: HTMLElement;
  readonly #fields = new Map<string, HTMLElement>();
  readonly #outcomes: Outcome[] = [];
  readonly #transitions: Transition[] = [];
  #dirty = true;

  constructor(
    template: HTMLTemplateElement,
    name: string,
    origin: string,
    private readonly failureThreshold: number,
    onMode: (mode: Mode) => void,
  ) {
    const element = template.content.firstElementChild?.cloneNode(true);
    if (!(element instanceof HTMLElement)) throw new Error("the card template is empty");
    this.element = element;
    element.dataset.upstream = name;
    for (const node of element.querySelectorAll<HTMLElement>("[data-field]")) {
      this.#fields.set(node.dataset.field ?? "", node);
    }
    // Until the page has read the stored and shared state (see main.ts).
    element.dataset.state = "loading";
    this.#field("next").textContent = "reading the state this tab and the others know…";
    this.#field("name").textContent = `Upstream ${name}`;
    this.#field("origin").textContent = origin;
    for (const button of element.querySelectorAll<HTMLButtonElement>("button[data-mode]")) {
      const mode = MODES.find((m) => m === button.dataset.mode);
      if (mode) button.addEventListener("click", () => onMode(mode));
    }
  }

  #field(name: string): HTMLElement {
    const node = this.#fields.get(name);
    if (!node) throw new Error(`the card template has no [data-field="${name}"]`);
    return node;
  }

  addOutcome(outcome: Outcome): void {
    this.#outcomes.push(outcome);
    if (this.#outcomes.length > MAX_OUTCOMES) this.#outcomes.shift();
    this.#dirty = true;
  }

  addTransition(transition: Transition): void {
    this.#transitions.unshift(transition);
    if (this.#transitions.length > MAX_TRANSITIONS) this.#transitions.pop();
    this.#dirty = true;
  }

  /** Marks a transition this tab made itself (its call's outcome followed it immediately). */
  markLocal(transition: Transition): void {
    transition.source = "this tab";
    this.#dirty = true;
  }

  setLast(text: string): void {
    this.#field("last").textContent = text;
  }

  setMode(mode: Mode | undefined): void {
    for (const button of this.element.querySelectorAll<HTMLButtonElement>("button[data-mode]")) {
      button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
    }
  }

  /** Redraws from the breaker's snapshot; `row` is undefined before the first call. */
  render(row: BreakerSnapshot | undefined, now: number): void {
    const state = row?.state ?? "closed";
    this.element.dataset.reopens = String(row?.reopenCount ?? 0);
    const badge = this.#field("state");
    badge.textContent = state;
    badge.dataset.state = state;
    this.element.dataset.state = state;
    // For tests and curious readers of the DOM: when the open circuit lets a probe through.
    this.element.dataset.retryAt = String(row?.retryAt ?? "");
    this.#field("next").textContent = this.#next(row, now);
    this.#field("successes").textContent = String(row?.successes ?? 0);
    this.#field("failures").textContent = String(row?.failures ?? 0);
    this.#field("rejections").textContent = String(row?.rejections ?? 0);
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#renderOutcomes();
    this.#renderTimeline();
  }

  #next(row: BreakerSnapshot | undefined, now: number): string {
    if (row === undefined) return "no call yet";
    if (row.state === "open") {
      const again = row.reopenCount > 0 ? ` (re-opened ×${row.reopenCount})` : "";
      return `next probe in ${seconds((row.retryAt ?? now) - now)}${again}`;
    }
    if (row.state === "half-open") {
      return row.probesInFlight > 0 ? "probe in flight…" : "the next call is the probe";
    }
    const failures = row.consecutiveFailures;
    return failures > 0
      ? `calls go through · ${failures} of ${this.failureThreshold} failures in a row in this tab`
      : "calls go through";
  }

  #renderOutcomes(): void {
    const calls = this.#field("calls");
    const dots = this.#outcomes.map((outcome) => {
      const dot = document.createElement("span");
      dot.className = `dot ${outcome}`;
      return dot;
    });
    calls.replaceChildren(...dots);
    const count = (o: Outcome) => this.#outcomes.filter((x) => x === o).length;
    calls.setAttribute(
      "aria-label",
      `last ${this.#outcomes.length} calls: ${count("ok")} succeeded, ` +
        `${count("fail")} failed, ${count("saved")} saved`,
    );
  }

  #renderTimeline(): void {
    const items = this.#transitions.map((t) => {
      const item = document.createElement("li");
      const time = document.createElement("time");
      time.dateTime = new Date(t.at).toISOString();
      time.textContent = clockTime(t.at);
      // What the page found when it loaded has no "from": this tab had no state yet.
      if (t.source === "restored") item.append(time, " ", stateWord(t.to));
      else item.append(time, " ", stateWord(t.from ?? "closed"), " → ", stateWord(t.to));
      if (t.to === "open" && t.reopenCount > 0) item.append(` · re-open ×${t.reopenCount}`);
      if (t.to === "open" && t.retryAt !== undefined) {
        item.append(` · probe after ${seconds(t.retryAt - t.at)}`);
      }
      if (t.source !== "this tab") {
        const tag = document.createElement("span");
        tag.className = `tag ${t.source === "restored" ? "restored" : "peer"}`;
        tag.textContent = t.source;
        item.append(" ", tag);
      }
      return item;
    });
    this.#field("timeline").replaceChildren(...items);
  }
}

function stateWord(state: CircuitState): HTMLElement {
  const word = document.createElement("b");
  word.className = `state-${state}`;
  word.textContent = state;
  return word;
}
