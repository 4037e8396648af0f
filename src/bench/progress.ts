/**
 * Progress on stderr: a cli-progress bar naming the current measurement on
 * a terminal, one plain line per finished measurement otherwise (CI logs,
 * pipes), so stdout carries only the report.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** A measurement starts. */
  start(label: string): void;
  /** A measurement finished; `summary` is its one-line result. */
  done(label: string, summary: string): void;
  /** A line of its own (setup, warnings), outside the bar. */
  note(text: string): void;
  stop(): void;
}

export function createProgress(total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  return stream.isTTY === true ? new BarProgress(total, stream) : new LineProgress(total, stream);
}

class BarProgress implements Progress {
  private readonly bar: cliProgress.SingleBar;
  private count = 0;
  private started = false;

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream,
  ) {
    this.bar = new cliProgress.SingleBar(
      { stream, format: 'bench [{bar}] {value}/{total} | ETA {eta_formatted} | {current}', hideCursor: true, fps: 5, etaBuffer: 20 },
      cliProgress.Presets.shades_classic,
    );
  }

  start(label: string): void {
    if (!this.started) {
      this.started = true;
      this.bar.start(this.total, this.count, { current: label });
    } else {
      this.bar.update(this.count, { current: label });
    }
  }

  done(label: string): void {
    this.count++;
    this.bar.update(this.count, { current: label });
  }

  note(text: string): void {
    if (this.started) {
      // Clear the bar's line, write the note, and let the next redraw put the bar back.
      this.stream.write(`\r\x1b[K${text}\n`);
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}

class LineProgress implements Progress {
  private count = 0;

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream,
  ) {}

  start(): void {}

  done(label: string, summary: string): void {
    this.count++;
    this.stream.write(`[${this.count}/${this.total}] ${label}: ${summary}\n`);
  }

  note(text: string): void {
    this.stream.write(`${text}\n`);
  }

  stop(): void {}
}
