/**
 * The origin of a URL for keying, or `undefined` when cbfetch should not guard the request:
 * not `http(s)`, credentials in the URL (fetch rejects those), or unparseable (fetch will throw
 * the caller's own error). Relative URLs resolve against `location` where there is one. (The
 * registry parses a URL only for its origin's first call: see `Registry.forUrl`.)
 */
export function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url, globalThis.location?.href);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return undefined;
    if (parsed.username !== "" || parsed.password !== "") return undefined;
    return parsed.origin;
  } catch {
    return undefined;
  }
}
