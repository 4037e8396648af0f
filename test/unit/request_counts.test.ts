/**
 * Request counts (src/protocol/request_counts.ts): what counts as an error,
 * the summary `goddb status` prints, and parsing another node's numbers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerClass, answerClass, parseRequestCounts, summarizeRequests } from '../../src/protocol/request_counts.js';

describe('request counts', () => {
  it('request counts - 2xx is ok, 404 not found, other 4xx refused, 5xx and anything else an error', () => {
    const cases: [number, AnswerClass][] = [
      [200, AnswerClass.Ok],
      [404, AnswerClass.NotFound],
      [400, AnswerClass.Refused],
      [409, AnswerClass.Refused],
      [413, AnswerClass.Refused],
      [500, AnswerClass.Error],
      [503, AnswerClass.Error],
      [504, AnswerClass.Error],
      [507, AnswerClass.Error],
      [0, AnswerClass.Error],
      [302, AnswerClass.Error],
    ];
    for (const [code, expected] of cases) assert.equal(answerClass(code), expected, String(code));
  });

  it('request counts - a summary adds up per operation and per class', () => {
    const s = summarizeRequests({
      get: { '200': 5, '404': 2, '504': 1 },
      put: { '200': 3, '413': 1, '503': 2 },
      del: { '200': 1 },
      unknown: { '400': 4 },
    });
    assert.deepEqual(s, { requests: 19, byOp: { get: 8, put: 6, del: 1, unknown: 4 }, ok: 9, notFound: 2, refused: 5, errors: 3 });
    assert.deepEqual(summarizeRequests({}), { requests: 0, byOp: {}, ok: 0, notFound: 0, refused: 0, errors: 0 });
  });

  it('request counts - only operations of three-digit codes with non-negative integer counts parse', () => {
    assert.deepEqual(parseRequestCounts({ get: { '200': 1, '404': 0 } }), { get: { '200': 1, '404': 0 } });
    for (const bad of [null, 7, 'x', [], { get: 3 }, { get: { '200': -1 } }, { get: { '200': 1.5 } }, { get: { ok: 1 } }, { get: { '200': '1' } }]) {
      assert.equal(parseRequestCounts(bad), undefined, JSON.stringify(bad));
    }
  });
});
