/**
 * A plain NATS client for integration tests, so that the wire contract is
 * checked the way any NATS client would use it, not through the SDK.
 */
import { connect } from '@nats-io/transport-node';
import { createInbox, headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';

export interface RawReply {
  code: number;
  message: string;
  value: string;
  header(name: string): string | undefined;
}

export async function rawConnect(url: string): Promise<NatsConnection> {
  return connect({ servers: url, noAsyncTraces: true });
}

export async function rawRequest(nc: NatsConnection, subject: string, payload: string | Uint8Array = '', hdrs: Record<string, string> = {}, timeoutMs = 5000): Promise<RawReply> {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
  const m = await nc.request(subject, payload, { timeout: timeoutMs, headers: h });
  const get = (name: string) => (m.headers?.has(name) ? m.headers.get(name) : undefined);
  const code = get('Nats-Service-Error-Code');
  return { code: code ? Number(code) : 200, message: get('Nats-Service-Error') ?? '', value: m.string(), header: get };
}

/** Every answer to a request within `waitMs`, or the first `expected` of them ($SRV.PING and $SRV.STATS answer once per service instance). */
export async function collect(nc: NatsConnection, subject: string, waitMs = 500, expected?: number): Promise<unknown[]> {
  const inbox = createInbox();
  const out: unknown[] = [];
  let enough!: () => void;
  const done = new Promise<void>((r) => (enough = r));
  const sub = nc.subscribe(inbox, {
    callback: (_e, m) => {
      out.push(m.json());
      if (expected !== undefined && out.length >= expected) enough();
    },
  });
  nc.publish(subject, '', { reply: inbox });
  await nc.flush();
  // Without `expected` every answer within waitMs counts; with it, the wait ends as soon as that many came
  // (a loaded machine answers late, not never: a fixed short window made that a failure).
  const timer = setTimeout(enough, waitMs);
  await done;
  clearTimeout(timer);
  sub.unsubscribe();
  return out;
}
