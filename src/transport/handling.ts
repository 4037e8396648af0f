/**
 * The handlers of one subscription still running, so that drain() can wait
 * for them; the NATS transport and the simulated bus dispatch through it
 * alike. Nothing a handler throws or rejects with reaches the caller (nats.js's
 * reader, which it would end, or the bus) or the process: it goes to `failed`.
 */
import type { InboundMessage, MessageHandler } from './transport.js';

export class Handling {
  private readonly running = new Set<Promise<void>>();

  run(handler: MessageHandler, msg: InboundMessage, failed: (err: unknown) => void): void {
    let p: void | Promise<void>;
    try {
      p = handler(msg);
    } catch (err) {
      failed(err);
      return;
    }
    if (!(p instanceof Promise)) return;
    const running = p;
    this.running.add(running);
    const done = () => void this.running.delete(running);
    running.then(done, (err: unknown) => {
      done();
      failed(err);
    });
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}
