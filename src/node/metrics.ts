/**
 * Prometheus metrics, in a registry of the node's own (several nodes may
 * share a process in simulations, so nothing goes in the global registry).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'op' | 'code'>;
  private readonly latency: Histogram<'op'>;

  constructor(nodeId: string, gauges: { inflight: () => number; membersUp: () => number; readRepairs: () => number }) {
    this.registry.setDefaultLabels({ node_id: nodeId });
    this.requests = new Counter({
      name: 'goddb_requests_total',
      help: 'Client requests coordinated by this node, by operation and reply code',
      labelNames: ['op', 'code'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'goddb_request_duration_seconds',
      help: 'Client request latency at the coordinator',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    new Gauge({ name: 'goddb_inflight_requests', help: 'Requests being coordinated', registers: [this.registry], collect() { this.set(gauges.inflight()); } });
    new Gauge({ name: 'goddb_members_up', help: 'Members this node sees up', registers: [this.registry], collect() { this.set(gauges.membersUp()); } });
    new Gauge({ name: 'goddb_read_repairs', help: 'Replicas brought up to date by read repair', registers: [this.registry], collect() { this.set(gauges.readRepairs()); } });
  }

  observe(op: string, code: number, elapsedMs: number): void {
    this.requests.inc({ op, code: String(code) });
    this.latency.observe({ op }, elapsedMs / 1000);
  }
}
