/**
 * A node's client request counts, by operation and reply code: the one
 * source of the numbers that `/metrics` (goddb_requests_total), the
 * micro-service statistics ($SRV.STATS.goddb, in the endpoint's `data`) and
 * `goddb status` show.
 *
 * What counts as what, by reply code:
 *   2xx  ok
 *   404  not found: a normal answer to a read, not an error
 *   4xx  (other) refused: the request was wrong (400 bad request, 409 condition
 *        failed, 413 too large); the client must change it
 *   5xx  errors: the cluster could not answer (500 internal, 503 quorum not
 *        reached, 504 timeout, 507 storage)
 */

/** Answers per operation ('get', 'put', 'del'; 'unknown' before the operation is known) and code ('200', '404'...). */
export type RequestCounts = Record<string, Record<string, number>>;

export const AnswerClass = {
  Ok: 'ok',
  NotFound: 'notFound',
  Refused: 'refused',
  Error: 'error',
} as const;
export type AnswerClass = (typeof AnswerClass)[keyof typeof AnswerClass];

/** Any code outside 2xx and 4xx counts as an error. */
export function answerClass(code: number): AnswerClass {
  if (code >= 200 && code < 300) return AnswerClass.Ok;
  if (code === 404) return AnswerClass.NotFound;
  if (code >= 400 && code < 500) return AnswerClass.Refused;
  return AnswerClass.Error;
}

export interface RequestSummary {
  /** Every request answered, whatever the code. */
  requests: number;
  /** Requests per operation, whatever the code. */
  byOp: Record<string, number>;
  ok: number;
  notFound: number;
  refused: number;
  errors: number;
}

export function summarizeRequests(counts: RequestCounts): RequestSummary {
  const summary: RequestSummary = { requests: 0, byOp: {}, ok: 0, notFound: 0, refused: 0, errors: 0 };
  const field = { ok: 'ok', notFound: 'notFound', refused: 'refused', error: 'errors' } as const;
  for (const [op, codes] of Object.entries(counts)) {
    for (const [code, n] of Object.entries(codes)) {
      summary.requests += n;
      summary.byOp[op] = (summary.byOp[op] ?? 0) + n;
      summary[field[answerClass(Number(code))]] += n;
    }
  }
  return summary;
}

/**
 * Counts read from another program's JSON (a node's statistics), or
 * undefined when they are not counts: only non-negative integers are kept.
 */
export function parseRequestCounts(raw: unknown): RequestCounts | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const counts: RequestCounts = {};
  for (const [op, codes] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof codes !== 'object' || codes === null || Array.isArray(codes)) return undefined;
    const byCode: Record<string, number> = {};
    for (const [code, n] of Object.entries(codes as Record<string, unknown>)) {
      if (!/^\d{3}$/.test(code) || typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return undefined;
      byCode[code] = n;
    }
    counts[op] = byCode;
  }
  return counts;
}
