/**
 * deploy/grafana/goddb.json and deploy/prometheus/ checked against a live
 * node (issue 13, item 4): every metric name in every panel expression, in
 * the dashboard's variables and in every alert rule is one that a running
 * lmdb worker exports on /metrics; the scrape jobs ask the path the node
 * serves, on the port and hosts the deploy files give it. `promtool check
 * config` runs too when promtool is installed (skipped otherwise).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { connect } from '../../src/client/index.js';
import { packageRoot } from '../../src/config/load.js';
import { startNatsServer, type NatsServerHandle } from '../../src/devtools/servers.js';
import { startWorker, tempDir, type Worker } from '../helpers/workers.js';

const root = packageRoot();
const read = (path: string) => readFileSync(join(root, path), 'utf8');

const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan', 'atan2']);
/** Series Prometheus makes itself for every target. */
const synthetic = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

/** The metric names a PromQL expression reads: identifiers that are neither functions, keywords, labels nor variables. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = bare.slice(m.index! + m[0].length).trimStart();
    if (after.startsWith('(') || keywords.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Every series name /metrics can hold, from its TYPE lines (a histogram is its _bucket, _sum and _count). */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name! + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(name! + s);
    else names.add(name!);
  }
  return names;
}

interface Panel {
  title?: string;
  type: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

describe('observability - dashboards and scrape configuration against a live node', () => {
  let nats: NatsServerHandle | undefined;
  let worker: Worker | undefined;
  const dir = tempDir('observability');
  let exported = new Set<string>();
  let metricsText = '';

  before(async () => {
    nats = await startNatsServer();
    worker = await startWorker('o1', ['--cluster', 'obs', '-peers', 'o1', '-discovery', nats.url, '--data-dir', dir.path, '--engine', 'lmdb',
      '--replication', '1', '-readquorum', '1', '-writequorum', '1']);
    const db = await connect({ servers: nats.url, timeoutMs: 3000 });
    try {
      await db.put('obs.a', 'x');
      await db.get('obs.a');
    } finally {
      await db.close();
    }
    // The HTTP path every scrape job asks (checked below).
    const res = await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`);
    assert.equal(res.status, 200);
    metricsText = await res.text();
    exported = exportedNames(metricsText);
  });

  after(async () => {
    await worker?.kill();
    await nats?.stop();
    dir.remove();
  });

  it('observability - the node exports the operator metrics: latency, quorum failures, hints, handoff, anti-entropy, storage, keys, gossip view', () => {
    for (const name of [
      'goddb_request_duration_seconds_bucket', 'goddb_replica_request_sent_duration_seconds_bucket', 'goddb_replica_request_served_duration_seconds_bucket',
      'goddb_quorum_failures_total', 'goddb_requests_total', 'goddb_hints_pending', 'goddb_handoff_active', 'goddb_handoff_bytes_sent_total',
      'goddb_aae_keys_repaired_total', 'goddb_aae_trees_ready', 'goddb_storage_bytes', 'goddb_keys', 'goddb_ring_members', 'goddb_members',
    ]) assert.ok(exported.has(name), `/metrics has ${name}`);
    assert.match(metricsText, /^goddb_storage_bytes\{namespace="data",node_id="o1"\} [1-9]\d*$/m, 'the data store\'s bytes on disk');
    assert.match(metricsText, /^goddb_keys\{node_id="o1"\} 1$/m, 'the one key written');
    assert.match(metricsText, /^goddb_request_duration_seconds_count\{node_id="o1",op="put"\} 1$/m);
    // Bounded labels: replica requests by ReplicaOp and outcome only, never by peer or key.
    for (const m of metricsText.matchAll(/^goddb_replica_request_\w+_count\{([^}]*)\}/gm)) {
      assert.deepEqual(m[1]!.split(',').map((l) => l.split('=')[0]).sort(), ['node_id', 'op', 'outcome']);
    }
  });

  it('observability - every metric of every Grafana panel and variable is one the node exports', () => {
    const dash = JSON.parse(read('deploy/grafana/goddb.json')) as { panels: Panel[]; templating: { list: { name: string; type: string; query?: unknown; definition?: string }[] } };
    const panels: Panel[] = [];
    const walk = (ps: Panel[]) => ps.forEach((p) => (panels.push(p), walk(p.panels ?? [])));
    walk(dash.panels);
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title ?? p.type, expr: t.expr ?? '' })));
    assert.ok(exprs.length >= 20, `the dashboard has panels with queries (${exprs.length})`);
    const used = new Set<string>();
    for (const { panel, expr } of exprs) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `panel "${panel}": no metric in ${expr}`);
      for (const name of names) {
        assert.ok(exported.has(name), `panel "${panel}": ${name} is not exported by the node (${expr})`);
        used.add(name);
      }
    }
    for (const v of dash.templating.list.filter((t) => t.type === 'query')) {
      const query = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
      const m = /label_values\((\w+),\s*(\w+)\)/.exec(query);
      assert.ok(m, `variable ${v.name}: a label_values query`);
      assert.ok(exported.has(m[1]!), `variable ${v.name}: ${m[1]} is exported`);
      assert.match(metricsText, new RegExp(`^${m[1]}\\{[^}]*${m[2]}="`, 'm'), `variable ${v.name}: ${m[1]} has the label ${m[2]}`);
    }
    for (const name of ['goddb_replica_request_sent_duration_seconds_bucket', 'goddb_replica_request_served_duration_seconds_bucket', 'goddb_quorum_failures_total',
      'goddb_hints_pending', 'goddb_aae_keys_repaired_total', 'goddb_handoff_active', 'goddb_storage_bytes', 'goddb_keys', 'goddb_ring_members']) {
      assert.ok(used.has(name), `the dashboard shows ${name}`);
    }
    assert.ok(dash.templating.list.some((t) => t.type === 'datasource' && t.name === 'datasource'), 'the Prometheus data source is a variable (${datasource} in the panels)');
  });

  it('observability - the Prometheus scrape jobs ask the node\'s /metrics on the hosts and port of the deploy files, and every alert reads exported metrics', () => {
    const prom = parse(read('deploy/prometheus/prometheus.yml')) as {
      rule_files?: string[];
      scrape_configs: { job_name: string; metrics_path?: string; static_configs?: { targets: string[] }[]; dns_sd_configs?: { names: string[]; port: number; type?: string }[] }[];
    };
    const example = JSON.parse(read('deploy/systemd/node.example.json')) as { http: { port: number }; gossip: { peers: string[] } };
    const k8s = parseAllDocuments(read('deploy/kubernetes/goddb.yaml')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: any });
    const svc = k8s.find((m) => m.kind === 'Service')!;
    const jobs = prom.scrape_configs;
    assert.ok(jobs.length >= 2);
    let staticJobs = 0;
    let dnsJobs = 0;
    for (const job of jobs) {
      assert.equal(job.metrics_path ?? '/metrics', '/metrics', `${job.job_name}: the path the node serves`);
      for (const sc of job.static_configs ?? []) {
        staticJobs++;
        const hosts = sc.targets.map((t) => t.split(':')[0]);
        for (const t of sc.targets) assert.equal(Number(t.split(':')[1]), example.http.port, `${job.job_name}: ${t} is on node.example.json's http.port`);
        assert.deepEqual(hosts, example.gossip.peers, `${job.job_name}: one target per node of node.example.json`);
      }
      for (const sd of job.dns_sd_configs ?? []) {
        dnsJobs++;
        assert.equal(sd.type ?? 'SRV', 'A');
        for (const name of sd.names) assert.equal(name.split('.')[0], svc.metadata.name, `${job.job_name}: ${name} is the headless Service`);
        assert.ok((svc.spec.ports as { port: number }[]).some((p) => p.port === sd.port), `${job.job_name}: port ${sd.port} is the Service's`);
        assert.equal(svc.spec.clusterIP, 'None', 'a headless Service resolves to every pod');
        assert.equal(svc.spec.publishNotReadyAddresses, true, 'not-ready pods are scraped too');
      }
    }
    assert.ok(staticJobs >= 1 && dnsJobs >= 1, 'a job for the systemd hosts and one for the StatefulSet');

    assert.ok((prom.rule_files ?? []).length >= 1, 'alert rules are loaded');
    for (const file of prom.rule_files!) {
      const path = join(root, 'deploy/prometheus', file);
      assert.ok(existsSync(path), `${file} exists beside prometheus.yml`);
      const rules = parse(readFileSync(path, 'utf8')) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] };
      const all = rules.groups.flatMap((g) => g.rules);
      assert.ok(all.length >= 5, `${file} has rules`);
      for (const rule of all) {
        const names = metricNames(rule.expr);
        assert.ok(names.length > 0, `${rule.alert}: no metric in ${rule.expr}`);
        for (const name of names) assert.ok(exported.has(name) || synthetic.has(name), `${rule.alert}: ${name} is not exported by the node (${rule.expr})`);
      }
    }
  });

  it('observability - promtool check config passes (when promtool is installed)', (t) => {
    const which = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (which.error) {
      t.skip('promtool is not installed');
      return;
    }
    const file = join(root, 'deploy/prometheus/prometheus.yml');
    const r = spawnSync('promtool', ['check', 'config', file], { encoding: 'utf8', cwd: dirname(file), timeout: 20_000 });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });

  it('observability - the metric name extraction finds metrics, not functions, labels or variables', () => {
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le, op) (rate(goddb_x_bucket{node_id=~"$node"}[$__rate_interval])))'), ['goddb_x_bucket']);
    assert.deepEqual(metricNames('goddb_a{node_id=~"$node"} / goddb_b{x="y"}').sort(), ['goddb_a', 'goddb_b']);
    assert.deepEqual(metricNames('max by (state) (goddb_members{liveness="down"}) > 0'), ['goddb_members']);
    assert.deepEqual(metricNames('up{job=~"goddb.*"} == 0'), ['up']);
  });
});
