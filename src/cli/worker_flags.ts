/**
 * The `goddb worker` options, generated from the config schema's flags so
 * that help text, env names and config keys cannot drift apart. Kept apart
 * from worker.ts (which imports the whole node) so tests can parse flags.
 */
import { Command, Option } from 'commander';
import { configFileFlag, normalizeLegacyFlags, workerFlagMap } from '../config/flags.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Adds every worker flag to `cmd`. Values stay strings; loadConfig coerces and validates them. */
export function addWorkerOptions(cmd: Command): Command {
  for (const [name, flag] of Object.entries(workerFlagMap)) {
    const env = flag.env ? ` [env ${flag.env}]` : '';
    const opt = new Option(`--${name} ${flag.boolean ? '[bool]' : '<value>'}`, `${flag.doc} (${flag.path})${env}`);
    opt.helpGroup(flag.legacy ? 'Seed (Go worker) flags, also accepted with one dash:' : 'Options:');
    cmd.addOption(opt);
  }
  cmd.option(`--${configFileFlag} <file>`, 'JSON config file (repeatable; later files win)', collect, []);
  return cmd;
}

/** Parses worker arguments (Go or GNU spelling) into the flags record loadConfig takes. */
export function parseWorkerArgs(args: readonly string[]): Record<string, unknown> {
  const cmd = addWorkerOptions(new Command('worker'))
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  cmd.parse(normalizeLegacyFlags(args), { from: 'user' });
  return cmd.opts();
}
