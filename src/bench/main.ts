/**
 * `npm run bench` (`node dist/src/bench/main.js [options]`): the benchmark
 * harness of issue 4. `goddb bench` runs the same thing; `--help` lists the
 * options. See run.ts for what happens.
 */
import { benchProgram } from './options.js';

const program = benchProgram(async (flags) => {
  const { runBenchCommand } = await import('./run.js');
  const code = await runBenchCommand(flags);
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
});

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
