import { defineConfig } from "vitest/config";

// The whole suite runs in plain Node; the fetch integration tests run again under happy-dom
// (a browser-like global scope: its own fetch, Request, EventTarget and location).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "happy-dom",
          environment: "happy-dom",
          // happy-dom logs every failed fetch to the console, which the tests cause on purpose.
          onConsoleLog: (log) => !/^(GET|POST|PUT) http|socket hang up|ECONNRESET/.test(log),
          include: ["test/fetch*.test.ts"],
        },
      },
    ],
  },
});
