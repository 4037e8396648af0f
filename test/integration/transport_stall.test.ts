/**
 * Issue 10 (gray failures), the coordinator's side of a pause: a process
 * that did not run for a while (SIGSTOP, a stuck event loop) finds, when it
 * runs again, its request timers overdue and the replies that came in the
 * meantime still unread in the socket (Node runs timers before it polls
 * I/O). The stalled time must not count against the requests: a reply that
 * arrived during the stall resolves its request. (Before, a resumed
 * coordinator answered 503 to requests whose replicas had all answered.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { fanOut, FanOutOutcome } from '../../src/node/coordinator/fan_out.js';
import { realClock } from '../../src/node/clock/real_clock.js';
import { connectNats, type NatsTransport } from '../../src/transport/nats.js';
import { RequestTimeoutError, type Transport } from '../../src/transport/transport.js';

const natsConfig = (url: string) => ({ servers: [url], user: '', pass: '', token: '', credsFile: '', nkeySeedFile: '', tls: { enabled: false, caFile: '', certFile: '', keyFile: '' } });

/** Blocks this process's event loop for `ms`, as a pause would. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // nothing runs: no timer, no socket read
  }
}

/** Polls until the transport's sweep timer has stopped; fails past 2 s (a sweep runs every 10 ms). */
async function stopsSweeping(nats: NatsTransport): Promise<void> {
  const until = performance.now() + 2_000;
  while (nats.sweeping) {
    assert.ok(performance.now() < until, 'the sweep timer still runs with no request pending');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('NATS transport - a stalled process', () => {
  let nats: NatsServerHandle;
  let transport: Transport;
  let responder: ReturnType<typeof spawn> | undefined;

  before(async () => {
    nats = await startNatsServer();
    transport = await connectNats(natsConfig(nats.url), 'stall-test', { waitOnFirstConnect: false, onError: () => undefined });
    // A responder in another process, so it answers while this one is stalled.
    const script = `
      const { connect } = await import('@nats-io/transport-node');
      const nc = await connect({ servers: ${JSON.stringify(nats.url)} });
      nc.subscribe('stall.echo', { callback: (_e, m) => m.respond(m.data) });
      nc.subscribe('stall.silent', { callback: () => {} });
      nc.subscribe('stall.later', { callback: (_e, m) => setTimeout(() => m.respond(m.data), 100) });
      await nc.flush();
      console.log('ready');
      await nc.closed();`;
    responder = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() });
    await new Promise<void>((resolve, reject) => {
      responder!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      responder!.once('exit', (code) => reject(new Error(`responder exited with ${code}`)));
    });
  });

  after(async () => {
    responder?.kill('SIGKILL');
    await transport?.close();
    await nats?.stop();
  });

  it('transport - a reply that arrived while the process was stalled past the deadline resolves the request', async () => {
    assert.equal(new TextDecoder().decode((await transport.request('stall.echo', new TextEncoder().encode('warm'), { timeoutMs: 1_000 })).data), 'warm');
    const pending = transport.request('stall.echo', new TextEncoder().encode('during'), { timeoutMs: 300 });
    await transport.flush(); // the request is on the wire; its reply comes back within a few ms
    stall(1_000); // more than three times its timeout, with the reply waiting in the socket
    const reply = await pending;
    assert.equal(new TextDecoder().decode(reply.data), 'during');
  });

  it('transport - the sweep timer runs only while requests are pending, and a time idle is not taken for a stall', async () => {
    const nats = transport as NatsTransport;
    await transport.request('stall.echo', new Uint8Array(1), { timeoutMs: 1_000 });
    // The sweep after the last reply stops the timer: an idle process is not woken every 10 ms.
    await stopsSweeping(nats);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // idle, no timer: no sweep for 1.5 s
    const started = performance.now();
    await assert.rejects(transport.request('stall.silent', new Uint8Array(0), { timeoutMs: 200 }), RequestTimeoutError);
    const tookMs = performance.now() - started;
    // Taken for a stall, the 1.5 s without a sweep would have moved the deadline past 1.7 s.
    assert.ok(tookMs >= 200 && tookMs < 1_200, `timed out after ${Math.round(tookMs)} ms on a 200 ms deadline`);
    await stopsSweeping(nats);
  });

  it('transport - a request with no reply still times out, the stall not counted', async () => {
    const started = performance.now();
    const pending = transport.request('stall.silent', new Uint8Array(0), { timeoutMs: 300 });
    await transport.flush();
    stall(600);
    await assert.rejects(pending, RequestTimeoutError);
    assert.ok(performance.now() - started >= 600, 'it failed only after the stall');
  });

  it('transport - a stall is forgiven once per request: stalled again, it times out at its moved deadline', async () => {
    const started = performance.now();
    const pending = transport.request('stall.silent', new Uint8Array(0), { timeoutMs: 300 });
    let settled = false;
    pending.then(() => (settled = true), () => (settled = true));
    await transport.flush();
    stall(1_000); // the deadline moves by about 990 ms, to about 1,290 ms after the start
    await new Promise((resolve) => setTimeout(resolve, 20)); // a sweep runs and moves it
    assert.equal(settled, false, 'the first stall is not counted');
    stall(1_000); // past the moved deadline: a second stall is not forgiven
    const afterSecondMs = performance.now();
    // The first sweep after it (due within 10 ms) times it out; a second move would keep it
    // pending for about 1,000 ms more.
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(settled, true, `still pending ${Math.round(performance.now() - afterSecondMs)} ms after a second stall past its moved deadline`);
    await assert.rejects(pending, RequestTimeoutError);
    assert.ok(performance.now() - started >= 2_000, 'it failed only after both stalls');
  });

  it('fan-out - replies that arrived while the coordinator was stalled past its deadline win the quorum', async () => {
    // A coordinator's own deadline (fanOut's timer) fires before the socket is read, as the
    // transport's sweep does; it must not answer 504 for replicas that all answered.
    // The replies come 100 ms after the requests: after the flush, during the stall.
    const echo = (node: string) => transport.request('stall.later', new TextEncoder().encode(node), { timeoutMs: 300 }).then((r) => new TextDecoder().decode(r.data));
    const { quorum } = fanOut(['a', 'b', 'c'], { needed: 2, timeoutMs: 300 }, realClock, echo);
    await transport.flush();
    stall(1_000);
    const q = await quorum;
    assert.equal(q.outcome, FanOutOutcome.Won, `${q.outcome}: ${[...q.failed.values()].map((e) => e.message).join('; ')}`);
    assert.deepEqual([...q.ok.values()].sort(), [...q.ok.keys()].sort(), 'each answer is its own echo');
  });
});
