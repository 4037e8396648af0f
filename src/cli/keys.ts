/**
 * `goddb keys [prefix]`: every live key starting with [prefix], one a line
 * (kv.keys, page by page: it walks the whole store). A key holding a control
 * character (CR, LF, tab...) or a double quote at its start is printed as a
 * JSON string, so every line is one key. Exit 0 once the listing is over,
 * 1 with `error <code>: <message>` when a page fails (the keys printed so far stand).
 */
import { ErrorCode } from '../core/errors.js';
import { CliError, ExitCode, formatError, openClient, type ClientFlags } from './client_options.js';

export interface KeysFlags extends ClientFlags {
  pageSize?: string;
  readQuorum?: string;
}

/** A key as one line: itself, or as a JSON string when printing it raw would be ambiguous. */
export function keyLine(key: string): string {
  return /[\u0000-\u001f\u007f]/.test(key) || key.startsWith('"') ? JSON.stringify(key) : key;
}

function positive(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new CliError(ErrorCode.BadRequest, `${flag} must be a positive integer, got ${value}`);
  return Number(value);
}

export async function runKeys(prefix: string, flags: KeysFlags): Promise<number> {
  let pageSize: number | undefined;
  let r: number | undefined;
  try {
    pageSize = positive(flags.pageSize, '--page-size');
    r = positive(flags.readQuorum, '--read-quorum');
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`);
    return ExitCode.Failed;
  }
  const opened = await openClient(flags);
  if ('exitCode' in opened) return opened.exitCode;
  const { client } = opened;
  try {
    let lines: string[] = [];
    for await (const key of client.keys(prefix, { ...(pageSize === undefined ? {} : { pageSize }), ...(r === undefined ? {} : { r }) })) {
      lines.push(keyLine(key));
      if (lines.length >= 256) {
        await write(`${lines.join('\n')}\n`);
        lines = [];
      }
    }
    if (lines.length > 0) await write(`${lines.join('\n')}\n`);
    return ExitCode.Ok;
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`);
    return ExitCode.Failed;
  } finally {
    await client.close().catch(() => undefined);
  }
}

function write(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
}
