// The dashboard's Service Worker mode (a switch in its header): src/sw.js guards every request
// of every tab of this site, the <img> strip below included, which the page loads as any site
// loads images (no-cors, not through cbfetch). A page listening on the worker's channel shows
// its state: the banner when upstream A (the API) is open.
import { createCbFetch, type CbFetch } from "cbfetch";

interface Upstream {
  name: string;
  origin: string;
}

const IMAGES = 6;
const IMAGE_POLL_MS = 1000;

export async function serviceWorkerMode(upstreams: readonly Upstream[]): Promise<void> {
  const toggle = document.querySelector<HTMLInputElement>("#sw-mode");
  const panel = document.getElementById("sw-panel");
  const banner = document.getElementById("sw-banner");
  const strip = document.getElementById("sw-images");
  const [api, images] = upstreams;
  if (!toggle || !panel || !banner || !strip || !api || !images) return;
  if (!("serviceWorker" in navigator)) {
    toggle.disabled = true;
    return;
  }

  let watcher: CbFetch | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;

  const showBanner = () => {
    // Each origin's state in the worker, as data (the browser test reads it).
    panel.dataset.open = upstreams
      .filter((u) => watcher?.state(u.origin) === "open")
      .map((u) => u.name)
      .join(" ");
    const open = watcher?.state(api.origin) === "open";
    banner.hidden = !open;
    if (!open) return;
    const retryAt = watcher?.breaker(api.origin).retryAt;
    const seconds = retryAt === undefined ? 0 : Math.ceil((retryAt - Date.now()) / 1000);
    banner.textContent =
      `Upstream ${api.name} is unreachable: the Service Worker answers its requests with 503 ` +
      `at once, in every tab, without sending them` +
      (seconds > 0 ? ` (next probe in ${seconds} s).` : ".");
  };

  let round = 0;
  const loadImages = () => {
    const tick = Date.now();
    strip.dataset.round = String(++round); // rounds asked so far (the browser test counts them)
    for (const [i, img] of [...strip.querySelectorAll("img")].entries()) {
      const next = new Image(40, 40);
      next.alt = `picture ${i + 1} from upstream ${images.name}`;
      next.onload = () => img.replaceWith(next);
      next.onerror = () => img.classList.add("broken");
      next.src = `${images.origin}/img/${i}.svg?t=${tick}`;
    }
  };

  const start = async () => {
    await navigator.serviceWorker.register("/sw.js", { type: "module" });
    await navigator.serviceWorker.ready;
    // Only listens (no calls): the worker's records arrive over "cbfetch:sw".
    watcher ??= createCbFetch({ sync: "sw" });
    watcher.addEventListener("statechange", showBanner);
    strip.replaceChildren(...Array.from({ length: IMAGES }, () => new Image(40, 40)));
    loadImages();
    timer = setInterval(() => {
      loadImages();
      showBanner();
    }, IMAGE_POLL_MS);
    panel.hidden = false;
  };
  const stop = async () => {
    clearInterval(timer);
    panel.hidden = true;
    await (await navigator.serviceWorker.getRegistration("/"))?.unregister();
  };

  toggle.checked = (await navigator.serviceWorker.getRegistration("/"))?.active != null;
  if (toggle.checked) await start();
  toggle.addEventListener("change", () => void (toggle.checked ? start() : stop()));
}
