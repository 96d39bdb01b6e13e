import { configDefaults, defineConfig } from "vitest/config";

// The whole suite runs in plain Node; the fetch integration tests run again under happy-dom
// (a browser-like global scope: its own fetch, Request, EventTarget and location). The
// end-to-end tests in test/browser drive Debian's real Chromium (playwright-core) from Node.
/**
 * happy-dom logs every response that is not ok and every failed fetch, as a browser's devtools
 * do; the tests cause those on purpose (503s, dropped connections, a used body). Its console is
 * routed through vitest's by `test/helpers/happy-dom-console.ts`, so this filter sees them.
 */
const quiet = (log: string) =>
  !/^[A-Z]+ https?:\/\/\S+ \d{3} \(|^Error: socket hang up|^TypeError: Invalid state: ReadableStream is locked/.test(
    log,
  );
const setupFiles = ["test/helpers/happy-dom-console.ts"];

export default defineConfig({
  test: {
    // Read from the root config only (a project's own is ignored).
    onConsoleLog: quiet,
    projects: [
      {
        test: {
          name: "node",
          environment: "node",
          // Files that run under happy-dom (a docblock) need the console routing too.
          setupFiles,
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/browser/**"],
        },
      },
      {
        test: {
          name: "happy-dom",
          environment: "happy-dom",
          setupFiles,
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
