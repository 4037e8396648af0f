import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectRetryDelayMs, NatsUnreachableError, redactUrl } from '../../src/transport/nats.js';

describe('nats connect', () => {
  it('nats connect - the wait between first-connect attempts doubles from 250 ms to at most 5 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 100].map(connectRetryDelayMs), [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('nats connect - credentials in a server URL never reach a log', () => {
    assert.equal(redactUrl('nats://goddb:s3cret@10.0.0.5:4222'), 'nats://***@10.0.0.5:4222');
    assert.equal(redactUrl('tls://token@nats.example:4443'), 'tls://***@nats.example:4443');
    assert.equal(redactUrl('user:pw@127.0.0.1:4222'), '***@127.0.0.1:4222', 'as nats.js names servers: without a scheme');
    assert.equal(redactUrl('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
    assert.equal(redactUrl('127.0.0.1:4222'), '127.0.0.1:4222');
  });

  it('nats connect - giving up says where, how often, how long and why', () => {
    const err = new NatsUnreachableError(['nats://***@a:4222', 'nats://b:4222'], 7, 12_345, 'connection refused');
    assert.equal(err.message, 'could not reach NATS at nats://***@a:4222, nats://b:4222: 7 attempts in 12.3 s failed (last: connection refused)');
    assert.equal(err.name, 'NatsUnreachableError');
  });
});
