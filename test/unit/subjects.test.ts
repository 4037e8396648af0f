/**
 * The subject grammar (src/protocol/subjects.ts), tested without a server.
 *
 * Property tests use a fixed fast-check seed (override with FC_SEED=<n>); a
 * failing property prints its seed and path, and the same seed replays it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ClientOp,
  clientEndpoint,
  clientRequest,
  decodeKeyB64,
  gossipSubject,
  isHeaderSafeKey,
  isSubjectSafeKey,
  isValidToken,
  parseClientSubject,
  replicaSubject,
  ReplicaOp,
  unsendableKey,
  invalidUtf8KeyMessage,
  changeSubject,
  isNodeOnlySubject,
  isNodeSubject,
  nodeInboxPrefix,
} from '../../src/protocol/subjects.js';
import { limits } from '../../src/core/limits.js';

const seed = Number(process.env['FC_SEED'] ?? 20_250_106);
const runs = (numRuns: number) => ({ seed, numRuns });

const ops = [ClientOp.Get, ClientOp.Put, ClientOp.Del, ClientOp.Owners] as const;
const opArb = fc.constantFrom(...ops);
/** Any UTF-16 code unit, lone surrogates included (fast-check's 'binary' unit costs a second to set up). */
const utf16Unit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Keys that must not travel in a subject. */
const unsafeKeys = ['', 'a b', ' lead', 'trail ', 'tab\there', 'line\nbreak', 'a*', '*', '>', 'a.>', 'a..b', 'a.', '.a', '.', 'nul\u0000', 'del\u007f', 'nbsp\u00a0x'];
/** Keys that may. */
const safeKeys = ['k', 'user.42', 'a.b.c', 'ünïcødé', '日本', 'emoji😀', 'a-b_c:d/e', '#', 'x'.repeat(1024)];

describe('subjects - client requests', () => {
  it('subjects - a subject-safe key goes in the subject, dots and all', () => {
    assert.deepEqual(clientRequest(ClientOp.Get, 'user.42'), { subject: 'kv.get.user.42' });
    assert.deepEqual(clientRequest(ClientOp.Put, 'k'), { subject: 'kv.put.k' });
    assert.deepEqual(clientRequest(ClientOp.Del, 'a.b.c'), { subject: 'kv.del.a.b.c' });
  });

  it('subjects - a key that is not subject-safe goes in KV-Key on the bare subject, or in KV-Key-B64 when a header would change it', () => {
    const b64 = (key: string) => Buffer.from(key, 'utf8').toString('base64url');
    for (const key of unsafeKeys.filter((k) => k !== '')) {
      assert.equal(isSubjectSafeKey(key), false, JSON.stringify(key));
      const expected = isHeaderSafeKey(key) ? { subject: 'kv.get', keyHeader: key } : { subject: 'kv.get', keyB64Header: b64(key) };
      assert.deepEqual(clientRequest(ClientOp.Get, key), expected, JSON.stringify(key));
    }
    for (const key of ['a b', 'a*', '>', 'a..b', 'nbsp\u00a0x']) assert.equal(isHeaderSafeKey(key), true, JSON.stringify(key));
    for (const key of [' lead', 'trail ', 'tab\there', 'line\nbreak', 'cr\r', 'nul\u0000', 'del\u007f', '\u00a0nbsp', 'ideographic\u3000']) {
      assert.equal(isHeaderSafeKey(key), false, JSON.stringify(key));
      assert.deepEqual(clientRequest(ClientOp.Put, key), { subject: 'kv.put', keyB64Header: b64(key) }, JSON.stringify(key));
    }
  });

  it('subjects - a subject-safe key over subjectKeyBytesMax goes in a header, so the protocol line stays short', () => {
    const longest = 'k'.repeat(limits.subjectKeyBytesMax);
    assert.deepEqual(clientRequest(ClientOp.Get, longest), { subject: `kv.get.${longest}` });
    assert.deepEqual(clientRequest(ClientOp.Get, `${longest}k`), { subject: 'kv.get', keyHeader: `${longest}k` });
    // Counted in bytes: 86 three-byte characters are 258 bytes.
    assert.deepEqual(clientRequest(ClientOp.Del, '日'.repeat(86)), { subject: 'kv.del', keyHeader: '日'.repeat(86) });
    assert.ok(limits.subjectKeyBytesMax < 4096 / 4, 'far under nats-server\'s default max_control_line');
  });

  it('subjects - subject-safe keys are the ones with non-empty tokens and no spaces, wildcards or controls', () => {
    for (const key of safeKeys) assert.equal(isSubjectSafeKey(key), true, JSON.stringify(key));
  });

  it('subjects - a node serves the whole client namespace as one endpoint', () => {
    assert.deepEqual(clientEndpoint, { name: 'kv', subject: 'kv.>' });
  });
});

describe('subjects - parseClientSubject', () => {
  it('subjects - the key is everything after the op token', () => {
    assert.deepEqual(parseClientSubject('kv.get.user.42', undefined), { op: 'get', key: 'user.42' });
    assert.deepEqual(parseClientSubject('kv.put.k', undefined), { op: 'put', key: 'k' });
    assert.deepEqual(parseClientSubject('kv.del.a.b.c', undefined), { op: 'del', key: 'a.b.c' });
  });

  it('subjects - on the bare subject the key comes from the header', () => {
    assert.deepEqual(parseClientSubject('kv.get', 'a b'), { op: 'get', key: 'a b' });
    assert.deepEqual(parseClientSubject('kv.del', '*'), { op: 'del', key: '*' });
  });

  it('subjects - for every safe and unsafe example, parsing the request gives back op and key', () => {
    for (const op of ops) {
      for (const key of [...safeKeys, ...unsafeKeys.filter((k) => k !== '')]) {
        const req = clientRequest(op, key);
        assert.deepEqual(parseClientSubject(req.subject, req.keyHeader, req.keyB64Header), { op, key }, JSON.stringify(key));
      }
    }
  });

  it('subjects - an unknown op is an error', () => {
    const unknown = (op: string) => ({ error: `unknown operation: ${op} (the operations are get, put, del, owners, leave, remove)` });
    assert.deepEqual(parseClientSubject('kv.list.k', undefined), unknown('list'));
    assert.deepEqual(parseClientSubject('kv.GET.k', undefined), unknown('GET'));
    assert.deepEqual(parseClientSubject('kv.getx', 'k'), unknown('getx'));
    assert.deepEqual(parseClientSubject('kv.', 'k'), unknown(''));
  });

  it('subjects - a subject outside the client API is an error', () => {
    assert.deepEqual(parseClientSubject('kv', 'k'), { error: 'not a client subject: kv' });
    assert.deepEqual(parseClientSubject('god.c.gossip', undefined), { error: 'not a client subject: god.c.gossip' });
    assert.deepEqual(parseClientSubject('kvx.get.k', undefined), { error: 'not a client subject: kvx.get.k' });
  });

  it('subjects - a bare subject without a key header, or with an empty one, is missing its key', () => {
    for (const header of [undefined, '']) {
      const parsed = parseClientSubject('kv.put', header);
      assert.ok('error' in parsed);
      assert.match(parsed.error, /^the key is missing: use kv\.put\.<key>, the KV-Key header or the KV-Key-B64 header$/);
    }
  });

  it('subjects - a key both in the subject and in the header is an error', () => {
    assert.deepEqual(parseClientSubject('kv.get.k', 'k'), { error: 'the key is given twice: in the subject and in KV-Key' });
    assert.deepEqual(parseClientSubject('kv.get.k', ''), { error: 'the key is given twice: in the subject and in KV-Key' });
    assert.deepEqual(parseClientSubject('kv.get.k', undefined, 'aw'), { error: 'the key is given twice: in the subject and in KV-Key-B64' });
    assert.deepEqual(parseClientSubject('kv.get', 'k', 'aw'), { error: 'the key is given twice: in KV-Key and in KV-Key-B64' });
  });

  it('subjects - KV-Key-B64 carries any key exactly: white space at the ends, CR, LF, controls', () => {
    for (const key of [' lead', 'trail ', ' both ', 'line\nbreak\r\n', '\t', '\u0000', '\ufeffbom', 'plain', '日本 ']) {
      const b64 = Buffer.from(key, 'utf8').toString('base64url');
      assert.deepEqual(parseClientSubject('kv.put', undefined, b64), { op: 'put', key }, JSON.stringify(key));
      assert.equal(decodeKeyB64(`${b64}${'='.repeat((4 - (b64.length % 4)) % 4)}`), key, 'padding is optional');
    }
  });

  it('subjects - a KV-Key-B64 that is not base64url, not UTF-8, empty or too long is an error', () => {
    const cases: [string, RegExp][] = [
      ['a+b/', /not base64url/],
      ['a b', /not base64url/],
      ['abcde', /not base64url/],
      ['=a', /not base64url/],
      [Buffer.from([0xff, 0xfe]).toString('base64url'), /valid UTF-8/],
      [Buffer.from([0xed, 0xa0, 0x80]).toString('base64url'), /valid UTF-8/],
      ['A'.repeat(4 * Math.ceil(limits.keyBytesMax / 3) + 4), /more than any key/],
    ];
    for (const [value, reason] of cases) {
      const parsed = parseClientSubject('kv.get', undefined, value);
      assert.ok('error' in parsed, value);
      assert.match(parsed.error, reason, value);
    }
    assert.match((parseClientSubject('kv.get', undefined, '') as { error: string }).error, /the key is missing/);
  });

  it(
    'subjects - a subject with an empty key after the op is missing its key',
    () => {
      assert.ok('error' in parseClientSubject('kv.get.', undefined));
    },
  );

  it(`subjects - for any valid key, parsing the request gives back op and key (seed ${seed})`, () => {
    // Unicode strings, and strings over the characters that matter to the grammar.
    const tricky = fc.string({ unit: fc.constantFrom('a', 'b', '.', '*', '>', ' ', '\t', '\n', '\u0000', 'é', '😀'), minLength: 1, maxLength: 12 });
    const keyArb = fc.oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 16 }), fc.string({ unit: utf16Unit, minLength: 1, maxLength: 16 }), tricky);
    fc.assert(
      fc.property(opArb, keyArb, (op, key) => {
        // Keys that are not valid UTF-8 text are refused before any request is built.
        if (unsendableKey(key, limits.keyBytesMax) !== undefined) return;
        const req = clientRequest(op, key);
        assert.deepEqual(parseClientSubject(req.subject, req.keyHeader, req.keyB64Header), { op, key });
        if (req.keyHeader === undefined && req.keyB64Header === undefined) {
          assert.equal(req.subject, `kv.${op}.${key}`);
          assert.ok(req.subject.split('.').every((t) => t.length > 0 && !/[\s*>]/u.test(t)), 'every token is a literal');
        } else if (req.keyHeader !== undefined) {
          assert.equal(req.subject, `kv.${op}`);
          assert.equal(req.keyHeader, key);
          assert.equal(req.keyHeader, req.keyHeader.trim(), 'a KV-Key value survives trimming');
        } else {
          assert.equal(req.subject, `kv.${op}`);
          assert.equal(Buffer.from(req.keyB64Header!, 'base64url').toString('utf8'), key);
        }
      }),
      runs(1_000),
    );
  });

  it(`subjects - parsing never throws, whatever the subject and header (seed ${seed})`, () => {
    const subjectArb = fc.oneof(fc.string(), fc.string().map((s) => `kv.${s}`), fc.constantFrom('kv.get', 'kv.put.', 'kv.del.x'));
    fc.assert(
      fc.property(subjectArb, fc.option(fc.string(), { nil: undefined }), fc.option(fc.string(), { nil: undefined }), (subject, header, b64) => {
        const parsed = parseClientSubject(subject, header, b64);
        assert.ok('error' in parsed || (Object.values(ClientOp) as string[]).includes(parsed.op));
      }),
      runs(500),
    );
  });
});

describe('subjects - membership changes', () => {
  it('subjects - kv.leave.<node-id> and kv.remove.<node-id> name a node, in the subject or in a key header', () => {
    assert.deepEqual(parseClientSubject('kv.leave.n3', undefined), { op: ClientOp.Leave, key: 'n3' });
    assert.deepEqual(parseClientSubject('kv.remove.node-7_a', undefined), { op: ClientOp.Remove, key: 'node-7_a' });
    assert.deepEqual(parseClientSubject('kv.leave', 'n3'), { op: ClientOp.Leave, key: 'n3' });
    assert.deepEqual(parseClientSubject('kv.remove', undefined, Buffer.from('n3').toString('base64url')), { op: ClientOp.Remove, key: 'n3' });
    assert.equal(clientRequest(ClientOp.Leave, 'n3').subject, 'kv.leave.n3');
    assert.equal(clientRequest(ClientOp.Remove, 'n3').subject, 'kv.remove.n3');
  });

  it('subjects - a leave or remove of something that is not a node id is refused, wherever the id travels', () => {
    for (const op of [ClientOp.Leave, ClientOp.Remove]) {
      for (const bad of ['a.b', 'n*', 'x'.repeat(65), 'ünï', 'a b']) {
        const inSubject = parseClientSubject(`kv.${op}.${bad}`, undefined);
        assert.ok('error' in inSubject && inSubject.error.startsWith('not a node id'), `${op} ${bad}: ${JSON.stringify(inSubject)}`);
        const inHeader = parseClientSubject(`kv.${op}`, bad);
        assert.ok('error' in inHeader && inHeader.error.startsWith('not a node id'), `${op} ${bad} in KV-Key`);
        const inB64 = parseClientSubject(`kv.${op}`, undefined, Buffer.from(bad).toString('base64url'));
        assert.ok('error' in inB64 && inB64.error.startsWith('not a node id'), `${op} ${bad} in KV-Key-B64`);
      }
      const missing = parseClientSubject(`kv.${op}`, undefined);
      assert.ok('error' in missing && missing.error.startsWith('the key is missing'));
    }
    // A stored key may hold what a node id may not.
    assert.deepEqual(parseClientSubject('kv.get.a.b', undefined), { op: ClientOp.Get, key: 'a.b' });
  });
});

describe('subjects - node subjects', () => {
  it('subjects - the node namespace is god.…, where no node ever replies', () => {
    for (const s of ['god', 'god.c.gossip', replicaSubject('c', 'n1', ReplicaOp.Put)]) assert.equal(isNodeSubject(s), true, s);
    for (const s of ['_INBOX.abc.1', 'goddess', 'kv.get.god', 'God.c.gossip', '']) assert.equal(isNodeSubject(s), false, s);
  });

  it('subjects - a node replies neither on god.… nor on the change feed, and its replies come on _INBOX_GOD.<id>', () => {
    for (const s of ['god.c.gossip', 'kvchanges', 'kvchanges.user.42', changeSubject('k').subject]) assert.equal(isNodeOnlySubject(s), true, s);
    for (const s of ['_INBOX.abc.1', '_INBOX_GOD.n1.x', 'kvchangesx', 'kv.changes.k', '']) assert.equal(isNodeOnlySubject(s), false, s);
    assert.equal(nodeInboxPrefix('n1'), '_INBOX_GOD.n1');
    assert.ok(!nodeInboxPrefix('n1').startsWith('_INBOX.'), 'outside the clients\' _INBOX.>');
  });

  it('subjects - gossip goes to god.<cluster>.gossip', () => {
    assert.equal(gossipSubject('c1'), 'god.c1.gossip');
  });

  it('subjects - replica requests go to god.<cluster>.node.<id>.<op>', () => {
    assert.equal(replicaSubject('c1', 'n1', ReplicaOp.Get), 'god.c1.node.n1.get');
    assert.equal(replicaSubject('prod', 'node-7_a', ReplicaOp.Put), 'god.prod.node.node-7_a.put');
    assert.equal(replicaSubject('c1', 'n1', ReplicaOp.Probe), 'god.c1.node.n1.probe');
  });

  it('subjects - a valid token is 1 to 64 letters, digits, dashes or underscores', () => {
    for (const s of ['n1', 'A', 'node-7_a', '_', '-', 'x'.repeat(64)]) assert.equal(isValidToken(s), true, s);
    for (const s of ['', 'x'.repeat(65), 'a.b', 'a b', '*', '>', 'é', 'a\n', 'n1\u0000']) assert.equal(isValidToken(s), false, JSON.stringify(s));
  });

  it(`subjects - node subjects built from valid tokens have exactly their tokens (seed ${seed})`, () => {
    const tokenArb = fc.string({ unit: fc.constantFrom('a', 'Z', '0', '-', '_'), minLength: 1, maxLength: 64 });
    fc.assert(
      fc.property(tokenArb, tokenArb, fc.constantFrom(ReplicaOp.Get, ReplicaOp.Put, ReplicaOp.Probe), (cluster, node, op) => {
        assert.equal(isValidToken(cluster) && isValidToken(node), true);
        assert.deepEqual(replicaSubject(cluster, node, op).split('.'), ['god', cluster, 'node', node, op]);
        assert.deepEqual(gossipSubject(cluster).split('.'), ['god', cluster, 'gossip']);
      }),
      runs(300),
    );
  });
});

describe('subjects - unsendableKey', () => {
  it('subjects - empty and over-long keys are named, others pass (KV-Key-B64 carries white space, CR and LF)', () => {
    assert.equal(unsendableKey('user.42', 1024), undefined);
    assert.equal(unsendableKey('hello world', 1024), undefined, 'spaces inside travel in the header');
    assert.match(unsendableKey('', 1024) ?? '', /empty/);
    assert.match(unsendableKey('x'.repeat(1025), 1024) ?? '', /1025 bytes/);
    assert.equal(unsendableKey(' padded ', 1024), undefined);
    assert.equal(unsendableKey('line\nbreak', 1024), undefined);
  });

  it('subjects - a key that is not valid UTF-8 text is refused: U+FFFD or a lone surrogate', () => {
    // nats.js turns every invalid byte sequence into U+FFFD: such keys would alias each other.
    for (const key of ['a\uFFFD', '\uFFFD', 'user.\uFFFD.42', 'lone\uD800', '\uDC00x', 'a b\uFFFD']) {
      assert.equal(unsendableKey(key, 1024), invalidUtf8KeyMessage, JSON.stringify(key));
    }
    assert.equal(unsendableKey('pair\uD83D\uDE00', 1024), undefined, 'a surrogate pair is one character');
  });
});
