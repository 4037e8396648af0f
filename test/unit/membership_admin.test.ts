/**
 * Issue 9, the operator surface: `kv.leave.<node-id>` and
 * `kv.remove.<node-id>` through the SDK, a simulated bus and the client API
 * with fake AdminHooks (the node side is another room's): the answer, the
 * codes of what the hooks throw, the refusals before any hook runs, and a
 * node without hooks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { clientOverTransport, ConflictError, GodDbError, NotFoundError, UnavailableError, type GodDbClient } from '../../src/client/index.js';
import { ErrorCode } from '../../src/core/errors.js';
import { ClientApi, type AdminHooks, type ApiOptions } from '../../src/node/api/client_api.js';
import type { Metrics } from '../../src/node/api/metrics.js';
import type { Coordinator } from '../../src/node/coordinator/coordinator.js';
import { SimBus } from '../../src/transport/sim.js';
import { replyError } from '../../src/transport/transport.js';
import { FakeClock } from '../helpers/fake_clock.js';
import { MemberState } from '../../src/core/membership.js';
import { MemberAdmin } from '../../src/node/membership/admin.js';
import { replicaSubject, ReplicaOp } from '../../src/protocol/subjects.js';
import type { Membership } from '../../src/node/membership/membership.js';

const options: ApiOptions = { nodeId: 'n1', cluster: 'c', version: 'test', replication: 3, readQuorum: 2, writeQuorum: 2, virtualNodes: 8, keyBytesMax: 1024, valueBytesMax: 1 << 20, defaultTtlSeconds: 0 };

interface Served {
  clock: FakeClock;
  db: GodDbClient;
  bus: SimBus;
  /** Hook calls, as 'leave n2'. */
  calls: string[];
  /** Answers counted, as 'leave 200'. */
  observed: string[];
}

/** One node serving the client API with `admin` on a simulated bus, and an SDK client on it. */
async function serve(admin: AdminHooks | undefined, calls: string[] = []): Promise<Served> {
  const clock = new FakeClock();
  const bus = new SimBus({ seed: 9, clock });
  const observed: string[] = [];
  const metrics = { observe: (op: string, code: number) => void observed.push(`${op} ${code}`) } as unknown as Metrics;
  // No admin operation reads or writes keys: a coordinator that would throw if asked.
  const api = new ClientApi({ ...options, ...(admin ? { admin } : {}) }, {} as Coordinator, metrics, pino({ level: 'silent' }), async () => undefined);
  await bus.connect('n1').serve(api.service());
  return { clock, bus, db: clientOverTransport(bus.connect('client'), { timeoutMs: 1000 }), calls, observed };
}

/** Hooks that record their calls and answer what `answer` says for the node. */
function hooks(calls: string[], answer: (op: string, id: string) => { node: string; state: string }): AdminHooks {
  return {
    leave: async (id) => (calls.push(`leave ${id}`), answer('leave', id)),
    remove: async (id) => (calls.push(`remove ${id}`), answer('remove', id)),
  };
}

async function rejection(p: Promise<unknown>): Promise<GodDbError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GodDbError, `a GodDbError, got ${String(err)}`);
    return err;
  }
  return assert.fail('resolved');
}

describe('membership changes through the client API', () => {
  it('admin - leave and remove answer 200 with the member\'s { node, state } from the hooks, forwarded the node id', async () => {
    const calls: string[] = [];
    const s = await serve(hooks(calls, (op, id) => ({ node: id, state: op === 'leave' ? 'leaving' : 'removed' })), calls);
    assert.deepEqual(await s.clock.run(s.db.leave('n2')), { node: 'n2', state: 'leaving' });
    assert.deepEqual(await s.clock.run(s.db.remove('n-3_x')), { node: 'n-3_x', state: 'removed' });
    assert.deepEqual(calls, ['leave n2', 'remove n-3_x']);
    assert.deepEqual(s.observed, ['leave 200', 'remove 200']);
  });

  it('admin - what the hooks throw comes back with its code: 404 unknown member, 409 conflict, 503 not now; anything else 500', async () => {
    const thrown: Record<string, Error> = {
      ghost: new NotFoundError('no member ghost'),
      alive: new ConflictError('n2 is up: ask it to leave instead'),
      busy: new UnavailableError('a membership change is under way'),
      broken: new Error('bug'),
    };
    const s = await serve({ leave: async (id) => Promise.reject(thrown[id]), remove: async (id) => Promise.reject(thrown[id]) });
    const cases: [string, number, string][] = [
      ['ghost', ErrorCode.NotFound, 'no member ghost'],
      ['alive', ErrorCode.ConditionFailed, 'n2 is up: ask it to leave instead'],
      ['busy', ErrorCode.QuorumNotMet, 'a membership change is under way'],
      ['broken', ErrorCode.Internal, 'bug'],
    ];
    for (const [id, code, message] of cases) {
      for (const op of ['leave', 'remove'] as const) {
        const err = await rejection(s.clock.run(s.db[op](id)));
        assert.equal(err.code, code, `${op} ${id}`);
        assert.equal(err.message, message, `${op} ${id}`);
      }
    }
    assert.ok(await rejection(s.clock.run(s.db.leave('ghost'))) instanceof NotFoundError, 'a 404 is a NotFoundError in the SDK');
  });

  it('admin - a hook error message with CR or LF still goes back as one header line', async () => {
    const s = await serve({ leave: async () => Promise.reject(new ConflictError('first\r\nNats-Service-Error-Code: 200\nthird')), remove: async () => ({ node: 'x', state: 'removed' }) });
    const reply = await s.clock.run(s.bus.connect('raw').request('kv.leave.n2', new Uint8Array(0), { timeoutMs: 1000 }));
    const err = replyError(reply);
    assert.equal(err?.code, ErrorCode.ConditionFailed);
    assert.doesNotMatch(err!.message, /[\r\n]/);
  });

  it('admin - a bad node id, a payload or a missing id is 400 before any hook runs; the SDK refuses a bad id unsent', async () => {
    const calls: string[] = [];
    const s = await serve(hooks(calls, (_, id) => ({ node: id, state: 'leaving' })), calls);
    const raw = s.bus.connect('raw');
    const ask = async (subject: string, data = '', headers?: Record<string, string>) => replyError(await s.clock.run(raw.request(subject, new TextEncoder().encode(data), { timeoutMs: 1000, ...(headers ? { headers } : {}) })));
    for (const subject of ['kv.leave.a.b', 'kv.remove.a.b', `kv.leave.${'x'.repeat(65)}`, 'kv.leave', 'kv.remove']) {
      assert.equal((await ask(subject))?.code, ErrorCode.BadRequest, subject);
    }
    assert.equal((await ask('kv.leave', '', { 'KV-Key': 'a b' }))?.code, ErrorCode.BadRequest, 'KV-Key holding no node id');
    const payload = await ask('kv.leave.n2', 'please');
    assert.equal(payload?.code, ErrorCode.BadRequest);
    assert.match(payload!.message, /empty payload/);
    assert.equal((await rejection(s.clock.run(s.db.leave('a.b')))).code, ErrorCode.BadRequest);
    assert.equal((await rejection(s.clock.run(s.db.remove('')))).code, ErrorCode.BadRequest);
    assert.deepEqual(calls, [], 'no hook ran');
    assert.equal(await ask('kv.leave.n2'), undefined, 'a well-formed one is served');
    assert.deepEqual(calls, ['leave n2']);
  });

  it('admin - a node without hooks answers 503 and says why; a hook that resolves no state is 500', async () => {
    const s = await serve(undefined);
    for (const op of ['leave', 'remove'] as const) {
      const err = await rejection(s.clock.run(s.db[op]('n2')));
      assert.equal(err.code, ErrorCode.QuorumNotMet);
      assert.equal(err.message, `node n1 cannot change membership: ${op} is not available on it`);
    }
    const odd = await serve({ leave: async () => ({}) as { node: string; state: string }, remove: async () => ({ node: 'n2', state: 'removed' }) });
    assert.equal((await rejection(odd.clock.run(odd.db.leave('n2')))).code, ErrorCode.Internal);
  });
});

/**
 * MemberAdmin itself (src/node/membership/admin.ts) on a simulated bus, with
 * fake membership views: a leave is decided by the member, not by the asked
 * node's failure detector (sim elastic seed 443396076 failed on a live
 * member that one node saw down for a moment under message loss).
 */
describe('member admin - leave', () => {
  const ids = ['n1', 'n2', 'n3', 'n4'];
  /** A member's view: every member in state `up`; `seesUp` says what its failure detector says of each. */
  function view(self: string, seesUp: (id: string) => boolean) {
    let own = { state: MemberState.Up as MemberState, stateVersion: 1 };
    return {
      stateOf: (id: string) => (ids.includes(id) || id === 'gone' ? MemberState.Up : undefined),
      isUp: seesUp,
      ownState: () => own,
      setOwnState: (state: MemberState) => void (own = { state, stateVersion: own.stateVersion + 1 }),
      members: () => ids.map((id) => ({ id, virtualNodes: 8, status: 'up', state: id === self ? own.state : MemberState.Up, synced: '', plans: '' })),
    } as unknown as Membership;
  }
  function admin(bus: SimBus, self: string, membership: Membership): MemberAdmin {
    return new MemberAdmin({ self, cluster: 'c', replication: 3, requestTimeoutMs: 500 }, membership, bus.connect(self), pino({ level: 'silent' }));
  }

  it('admin - a live member asked to leave leaves even when the asked node sees it down; one that nothing answers for is a 409 that says to remove it', async () => {
    const clock = new FakeClock();
    const bus = new SimBus({ seed: 11, clock });
    const leaverView = view('n3', () => true);
    admin(bus, 'n3', leaverView).listen();
    const asked = admin(bus, 'n1', view('n1', (id) => id !== 'n3' && id !== 'gone'));
    assert.deepEqual(await clock.run(asked.leave('n3')), { node: 'n3', state: MemberState.Leaving });
    assert.equal(leaverView.ownState().state, MemberState.Leaving, 'the member itself started leaving');
    const err = await rejection(clock.run(asked.leave('gone')));
    assert.ok(err instanceof ConflictError, `a 409, got ${err.code} ${err.message}`);
    assert.match(err.message, /gone is down .*use goddb remove gone/);
    // Subscribed but silent (paused, or its answer lost): a timeout, which the operator may ask again, not a verdict.
    bus.connect('n4').subscribe(replicaSubject('c', 'n4', ReplicaOp.Leave), () => undefined);
    const silent = await rejection(clock.run(asked.leave('n4')));
    assert.equal(silent.code, ErrorCode.Timeout, `a 504, got ${silent.code} ${silent.message}`);
  });
});
