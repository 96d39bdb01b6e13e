import { describe, expect, it } from "vitest";
import { isFailureStatus, retryAfterMs } from "../src/outcome/status.js";
import { isCallersMistake } from "../src/outcome/mistakes.js";

describe("failure classification", () => {
  it.each([500, 502, 503, 504, 408, 429])("status %i is a failure", (status) => {
    expect(isFailureStatus(new Response(null, { status }))).toBe(true);
  });
  it.each([200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 422, 501, 505])(
    "status %i is not",
    (status) => {
      const body = status === 204 || status === 304 ? null : "x";
      expect(isFailureStatus(new Response(body, { status }))).toBe(false);
    },
  );
  it("an opaque response (status 0) is not", () => {
    expect(isFailureStatus(Response.error())).toBe(false);
  });
});

describe("Retry-After", () => {
  const now = Date.parse("2026-11-22T10:00:00Z");
  it.each([
    ["120", 120_000],
    [" 5 ", 5_000],
    ["Sun, 22 Nov 2026 10:01:00 GMT", 60_000],
    ["Sunday, 22-Nov-26 10:00:30 GMT", 30_000],
    ["Sun Nov 22 10:00:10 2026", 10_000 - new Date(now).getTimezoneOffset() * 60_000],
  ])("%j -> %i ms", (value, ms) => {
    expect(retryAfterMs(value, now)).toBe(ms);
  });
  it.each([
    null,
    "",
    "0",
    "-5",
    "1.5",
    "soon",
    "12abc",
    "Sun, 22 Nov 2026 09:00:00 GMT",
    "2026-11-23",
    "Mon, garbage",
  ])("%j is ignored", (value) => {
    expect(retryAfterMs(value, now)).toBeUndefined();
  });
});

describe("caller's mistakes", () => {
  const url = "https://example.com/";
  it("recognizes a bad init that fetch rejects before sending", () => {
    expect(isCallersMistake(url, url, { method: "GET", body: "x" })).toBe(true);
    expect(isCallersMistake(url, url, { body: "x" })).toBe(true);
    expect(isCallersMistake(url, url, { method: "bad method" })).toBe(true);
    expect(isCallersMistake(url, url, { headers: { "bad header": "x" } })).toBe(true);
    expect(isCallersMistake(url, url, { method: "POST", body: new ReadableStream() })).toBe(true);
  });
  it("accepts a valid init", () => {
    expect(isCallersMistake(url, url, undefined)).toBe(false);
    expect(isCallersMistake(url, url, { method: "POST", body: "x", headers: { a: "b" } })).toBe(
      false,
    );
    const request = new Request(url, { method: "PUT", body: "data" });
    expect(isCallersMistake(url, request, { headers: { x: "y" } })).toBe(false);
    expect(request.bodyUsed).toBe(false);
  });
});
