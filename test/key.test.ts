import { describe, expect, it } from "vitest";
import { fastOrigin, originOf } from "../src/keys/key.js";

const urls = [
  "https://api.example.com/items?id=1",
  "https://api.example.com",
  "http://localhost:8080/x",
  "http://127.0.0.1:3000/a#b",
  "https://a-b.c-d.example/?q",
  "https://API.example.com/",
  "https://api.example.com:443/",
  "http://api.example.com:80/",
  "http://api.example.com:080/",
  "http://api.example.com:/",
  "http://api.example.com:65536/",
  "http://0x7f.1/",
  "http://1.2.3/",
  "http://127.000.0.1/",
  "http://256.0.0.1/",
  "http://[::1]:8080/",
  "http://user:pass@example.com/",
  "http://example.com./",
  "http://xn--nxasmq6b.com/",
  "http://exa%41mple.com/",
  "http://ex\tample.com/",
  "  https://example.com/",
  "https://éxample.com/",
  "https://example.com\\path",
  "http://a_b.example.com/",
  "https://12345/",
  "https://example.123/",
];

describe("origin keys", () => {
  it.each(urls)("fastOrigin(%j) is new URL().origin or defers", (url) => {
    const fast = fastOrigin(url);
    let expected: string | undefined;
    try {
      expected = new URL(url).origin;
    } catch {}
    if (fast !== undefined) expect(fast).toBe(expected);
  });

  it("takes the fast path for ordinary URLs", () => {
    expect(fastOrigin("https://api.example.com/items?id=1")).toBe("https://api.example.com");
    expect(fastOrigin("http://127.0.0.1:3000/a")).toBe("http://127.0.0.1:3000");
    expect(fastOrigin("http://localhost")).toBe("http://localhost");
  });

  it("agrees with new URL on random URL-ish strings", () => {
    const alphabet = "abcxz09.-:/?#@[]%_AB\\ \t1";
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      let tail = "";
      const len = 1 + rand(20);
      for (let j = 0; j < len; j++) tail += alphabet[rand(alphabet.length)];
      const url = (rand(2) ? "https://" : "http://") + tail;
      const fast = fastOrigin(url);
      if (fast === undefined) continue;
      expect(fast, url).toBe(new URL(url).origin);
    }
  });

  it("never keys on path, query or credentials, and skips what fetch would reject", () => {
    expect(originOf("https://api.example.com/users/42?token=secret")).toBe(
      "https://api.example.com",
    );
    expect(originOf("https://API.Example.com:443/x")).toBe("https://api.example.com");
    expect(originOf("http://[::1]:8080/x")).toBe("http://[::1]:8080");
    expect(originOf("http://user:pass@example.com/")).toBeUndefined();
    expect(originOf("data:text/plain,hi")).toBeUndefined();
    expect(originOf("blob:https://example.com/1234")).toBeUndefined();
    expect(originOf("about:blank")).toBeUndefined();
    expect(originOf("not a url")).toBeUndefined();
  });
});
