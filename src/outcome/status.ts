/**
 * The default failure rule: 500, 502, 503, 504, 408 and 429 count against the origin; every
 * other status (4xx included) and opaque responses (status 0) do not.
 */
export function isFailureStatus(response: Response): boolean {
  switch (response.status) {
    case 500:
    case 502:
    case 503:
    case 504:
    case 408:
    case 429:
      return true;
    default:
      return false;
  }
}

const DELTA_SECONDS = /^\d+$/;
// IMF-fixdate, RFC 850 and asctime all start with a day name.
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /;

/**
 * Reads `Retry-After` (delta-seconds or HTTP-date) as a delay in ms from now, or `undefined`
 * for a missing, malformed, zero or past value. `wallNow` is `Date.now()`, which HTTP-dates
 * are compared with.
 */
export function retryAfterMs(value: string | null, wallNow: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  let delay: number;
  if (DELTA_SECONDS.test(text)) delay = Number(text) * 1000;
  else if (HTTP_DATE.test(text)) delay = Date.parse(text) - wallNow;
  else return undefined;
  return delay > 0 ? delay : undefined;
}
