/**
 * `goddb prestop`: the Kubernetes preStop hook of a StatefulSet pod
 * (deploy/kubernetes/goddb.yaml). A pod stops for two reasons, and only one
 * of them is a leave:
 *
 * - the StatefulSet was scaled down below this pod's ordinal: the pod and
 *   its volume go for good, so the member hands its ranges to their next
 *   owners first (`goddb leave <pod>`, waiting until it has left);
 * - anything else (a rolling update, a node drain, a crash loop): the pod
 *   comes back with the same name and volume, so it must not leave (a member
 *   that left never comes back): the hook returns at once and the worker
 *   stops on SIGTERM as usual, draining its requests.
 *
 * Which one it is comes from the StatefulSet's spec.replicas, read from the
 * Kubernetes API with the pod's service account (a Role allowing `get` on
 * the StatefulSet). When the API cannot be read the hook does not leave and
 * exits 1 (Kubernetes records a FailedPreStopHook event): a member stopped
 * without leaving is down, and `goddb remove` replaces it.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostname } from 'node:os';
import { ExitCode } from './client_options.js';
import type { MembershipChangeFlags } from './membership_change.js';

const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';
/** How long the StatefulSet read may take, and the most of its answer kept (a StatefulSet is a few KiB). */
const apiTimeoutMs = 10_000;
const apiReplyBytesMax = 1_000_000;

export interface PrestopFlags extends MembershipChangeFlags {
  /** The pod's name [default: $POD_NAME, the host name]. */
  pod?: string;
  /** The StatefulSet [default: the pod's name less its ordinal]. */
  statefulset?: string;
  /** The Kubernetes API base URL [default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT]. */
  api?: string;
  /** The namespace [default: the service account's]. */
  namespace?: string;
}

/** `goddb-2` -> { set: 'goddb', ordinal: 2 }; undefined for a name that is not a StatefulSet pod's. */
export function podOrdinal(pod: string): { set: string; ordinal: number } | undefined {
  const m = /^(.+)-(\d+)$/.exec(pod);
  return m ? { set: m[1]!, ordinal: Number(m[2]) } : undefined;
}

/** Leave when the pod's ordinal is at or past the StatefulSet's replicas (it is being scaled away). */
export function leavesOnStop(ordinal: number, replicas: number): boolean {
  return ordinal >= replicas;
}

function readServiceAccount(name: string): string | undefined {
  try {
    return readFileSync(`${serviceAccountDir}/${name}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** spec.replicas of the StatefulSet (1 when unset, as Kubernetes defaults it). */
async function statefulSetReplicas(api: string, namespace: string, name: string, timeoutMs: number): Promise<number> {
  const url = new URL(`/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/statefulsets/${encodeURIComponent(name)}`, api);
  const token = readServiceAccount('token');
  const ca = url.protocol === 'https:' ? readServiceAccount('ca.crt') : undefined;
  const body = await new Promise<string>((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, ...(ca ? { ca } : {}), timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (text.length < apiReplyBytesMax) text += d;
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET ${url.pathname}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url.pathname}: no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
  const replicas = (JSON.parse(body) as { spec?: { replicas?: unknown } }).spec?.replicas ?? 1;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) throw new Error(`StatefulSet ${name} has no valid spec.replicas (${String(replicas)})`);
  return replicas;
}

export async function runPrestop(flags: PrestopFlags): Promise<number> {
  const env = process.env;
  const pod = flags.pod ?? env['POD_NAME'] ?? hostname();
  const parsed = podOrdinal(pod);
  if (parsed === undefined) {
    process.stderr.write(`goddb prestop: ${pod} is not a StatefulSet pod name (<name>-<ordinal>): not leaving\n`);
    return ExitCode.Failed;
  }
  const set = flags.statefulset ?? parsed.set;
  const host = env['KUBERNETES_SERVICE_HOST'];
  const api = flags.api ?? (host ? `https://${host.includes(':') ? `[${host}]` : host}:${env['KUBERNETES_SERVICE_PORT'] ?? '443'}` : undefined);
  const namespace = flags.namespace ?? readServiceAccount('namespace') ?? 'default';
  let replicas: number;
  try {
    if (api === undefined) throw new Error('no Kubernetes API (KUBERNETES_SERVICE_HOST unset; give --api)');
    replicas = await statefulSetReplicas(api, namespace, set, apiTimeoutMs);
  } catch (err) {
    process.stderr.write(`goddb prestop: cannot read StatefulSet ${namespace}/${set}: ${err instanceof Error ? err.message : String(err)}: not leaving (if the pod is going for good, goddb remove ${pod})\n`);
    return ExitCode.Failed;
  }
  if (!leavesOnStop(parsed.ordinal, replicas)) {
    process.stderr.write(`goddb prestop: ${pod} stays (ordinal ${parsed.ordinal} < ${replicas} replicas): stopping without leaving\n`);
    return ExitCode.Ok;
  }
  process.stderr.write(`goddb prestop: ${pod} is scaled away (ordinal ${parsed.ordinal} >= ${replicas} replicas): leaving the cluster\n`);
  // The client role: nodes may not publish kv.> (deploy/nats/auth.conf). Its credentials come from
  // GODDB_CLIENT_NATS_USER / GODDB_CLIENT_NATS_PASS when set, the pod's GODDB_NATS_* being the node's.
  const client = { ...flags };
  if (env['GODDB_CLIENT_NATS_USER']) client.natsUser = env['GODDB_CLIENT_NATS_USER'];
  if (env['GODDB_CLIENT_NATS_PASS']) client.natsPass = env['GODDB_CLIENT_NATS_PASS'];
  const { runMembershipChange } = await import('./membership_change.js');
  return runMembershipChange('leave', pod, client);
}
