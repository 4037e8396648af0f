/**
 * `goddb watch <prefix>`: one line per change of a key starting with
 * <prefix> ('' for every key), until Ctrl-C (exit 0):
 *
 *   <key> <op> <hlc> <writer> <value>
 *
 * the key as JSON when it holds white space or quotes; the value as a JSON
 * string when it is short printable UTF-8 text, else `<n bytes>`; `-` for a
 * delete. With --stream (a JetStream stream capturing the feed) it replays
 * from --from-seq, --from-time or the last event of each key (--history)
 * first, and each line ends with `seq=<n>`.
 */
import type { ChangeEvent, Watcher } from '../client/index.js';
import { ExitCode, formatError, openClient, type ClientFlags } from './client_options.js';

export interface WatchFlags extends ClientFlags {
  stream?: string;
  fromSeq?: string;
  fromTime?: string;
  history?: boolean;
}

/** Characters of a value printed as text; longer ones are shown as a byte count. */
const textCharsMax = 120;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function formatValue(e: ChangeEvent): string {
  if (e.op === 'del') return '-';
  if (e.valueOmittedBytes !== undefined) return `<${e.valueOmittedBytes} bytes, not in the event>`;
  try {
    const text = utf8.decode(e.value);
    if (text.length <= textCharsMax && !/[\u0000-\u001f\u007f]/.test(text)) return JSON.stringify(text);
  } catch {
    // not UTF-8: a byte count
  }
  return `<${e.value.length} bytes>`;
}

export function formatEvent(e: ChangeEvent): string {
  const key = /[\s"\\]/.test(e.key) || e.key === '' ? JSON.stringify(e.key) : e.key;
  const seq = e.seq === undefined ? '' : ` seq=${e.seq}`;
  return `${key} ${e.op} ${e.hlc} ${e.writer} ${formatValue(e)}${seq}`;
}

export async function runWatch(prefix: string, flags: WatchFlags): Promise<number> {
  const opened = await openClient(flags);
  if ('exitCode' in opened) return opened.exitCode;
  const { client } = opened;
  let watcher: Watcher | undefined;
  const onSignal = () => void watcher?.stop();
  try {
    watcher = await client.watch(prefix, {
      ...(flags.stream === undefined ? {} : { stream: flags.stream }),
      ...(flags.fromSeq === undefined ? {} : { fromSeq: Number(flags.fromSeq) }),
      ...(flags.fromTime === undefined ? {} : { fromTime: flags.fromTime }),
      ...(flags.history === true ? { includeHistory: true } : {}),
    });
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    for await (const event of watcher) {
      if (!process.stdout.write(`${formatEvent(event)}\n`)) await new Promise((r) => process.stdout.once('drain', r));
    }
    return ExitCode.Ok;
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`);
    return ExitCode.Failed;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close().catch(() => undefined);
  }
}
