import { configDefaults, defineConfig } from "vitest/config";

// The whole suite runs in plain Node; the fetch integration tests run again under happy-dom
// (a browser-like global scope: its own fetch, Request, EventTarget and location). The
// end-to-end tests in test/browser drive Debian's real Chromium (playwright-core) from Node.
/** happy-dom logs every failed fetch to the console, which the tests cause on purpose. */
const quiet = (log: string) => !/^(GET|POST|PUT) http|socket hang up|ECONNRESET/.test(log);

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          environment: "node",
          // Files that run under happy-dom (a docblock) log its failed fetches too.
          onConsoleLog: quiet,
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/browser/**"],
        },
      },
      {
        test: {
          name: "happy-dom",
          environment: "happy-dom",
          onConsoleLog: quiet,
          include: ["test/fetch*.test.ts", "test/sync.test.ts", "test/callers-mistakes.test.ts"],
        },
      },
      {
        test: {
          name: "chromium",
          environment: "node",
          include: ["test/browser/**/*.browser.test.ts"],
          // Launching Chromium takes 1–2 s; on a busy 2-core machine, much more.
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
