/**
 * The `goddb` command. Subcommands load their modules lazily, so that a
 * one-shot `goddb get` does not load the node, its storage engines and so on.
 *
 *   goddb worker [flags]           one node (the seed's Go flags work as written)
 *   goddb client                   interactive shell (or commands from a pipe)
 *   goddb get|put|del <key> ...    one request, for scripts
 *   goddb owners <key> [--json]    where a key lives: replicas, fallbacks, pending owners
 *   goddb status [--json]          the members and the nodes that answer
 *   goddb leave|remove <node-id>   a member hands its ranges over and exits | a down member is replaced
 *   goddb watch [prefix]           one line per change of a key under prefix, until Ctrl-C
 *   goddb keys [prefix]            every live key under prefix, one a line (walks the whole store)
 *   goddb prestop                  Kubernetes preStop: leave when scaled away, else return at once
 *   goddb backup|restore <dir>     copy a node's data directory while it serves | put a copy back (node stopped)
 *   goddb dev                      nats-server + a local cluster (npm start)
 *   goddb bench [options]          the benchmark harness (npm run bench)
 */
import { Command, Option } from 'commander';
import { normalizeLegacyFlags } from '../config/flags.js';
import { goddbVersion } from '../version.js';
import { addBenchOptions, type BenchFlags } from '../bench/options.js';
import { addClientOptions, type ClientFlags } from './client_options.js';
import type { MembershipChangeFlags } from './membership_change.js';
import type { QuorumFlags } from './one_shot.js';
import type { WatchFlags } from './watch.js';
import { addWorkerOptions } from './worker_flags.js';

/** Exit code of a command line that commander refused (unknown option or command, missing argument). */
const usageExitCode = 2;

/** Sets the exit code and lets pending output drain before exiting. */
function exitWith(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

function buildProgram(): Command {
  const program = new Command('goddb')
    .description('GoD-DB: a Dynamo-style distributed key-value store over NATS')
    .version(goddbVersion)
    // A usage error is one line and a hint, not the whole help; exit 2 (as getopt tools do), not 1.
    .showHelpAfterError('(add --help for usage)')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : usageExitCode));

  addWorkerOptions(program.command('worker').description('run one node in the foreground (logs JSON to stdout)')).action(async (flags: Record<string, unknown>) => {
    const { runWorker } = await import('./worker.js');
    await runWorker(flags);
  });

  addClientOptions(program.command('client').description('interactive shell: put/get/del (reads commands from stdin when piped)')).action(async (flags: ClientFlags) => {
    const { runShell } = await import('./shell.js');
    exitWith(await runShell(flags));
  });

  addClientOptions(program.command('get').argument('<key>').description('print the value of <key> (exit 1 with error 404 when absent)'))
    .option('-r, --read-quorum <n>', 'replicas that must answer (R)')
    .option('--serial', 'read through Paxos (KV-Serial): linearizable with conditional writes')
    .option('--print-context', "print the value's context on stderr ('context <ctx>'), for --if-match or --context")
    .action(async (key: string, flags: QuorumFlags) => {
      const { runGet } = await import('./one_shot.js');
      exitWith(await runGet(key, flags));
    });

  addClientOptions(program.command('put').argument('<key>').argument('<value>', "the value, or '-' to read it from stdin").description('store <value> under <key>'))
    .option('-w, --write-quorum <n>', 'replicas that must acknowledge (W)')
    .option('--context <context>', 'the KV-Context of an earlier read, to supersede it')
    .option('--ttl <duration>', "time to live: seconds, or like '30s', '5m', '1h', '2d' (KV-TTL)")
    .option('--if-absent', 'create only (KV-If-Absent): exit 1 with error 409 when the key has a value')
    .option('--if-match <context>', 'replace only the version this context names (KV-If-Match); on error 409 the current context is printed')
    .action(async (key: string, value: string, flags: QuorumFlags) => {
      const { runPut } = await import('./one_shot.js');
      exitWith(await runPut(key, value, flags));
    });

  addClientOptions(program.command('del').argument('<key>').description('delete <key>'))
    .option('-w, --write-quorum <n>', 'replicas that must acknowledge (W)')
    .option('--context <context>', 'the KV-Context of an earlier read, to supersede it')
    .option('--if-match <context>', 'delete only the version this context names (KV-If-Match)')
    .action(async (key: string, flags: QuorumFlags) => {
      const { runDel } = await import('./one_shot.js');
      exitWith(await runDel(key, flags));
    });

  addClientOptions(program.command('owners').argument('<key>').description("show <key>'s hash, its replicas in preference order with their liveness, the fallbacks for down ones and pending owners, as the answering node sees them"))
    .option('--json', 'print the answer as JSON')
    .action(async (key: string, flags: ClientFlags & { json?: boolean }) => {
      const { runOwners } = await import('./one_shot.js');
      exitWith(await runOwners(key, flags));
    });

  addClientOptions(program.command('status').description('list the members of the ring and the nodes that answer, with the requests each answered: per operation, not-found-404 (a normal answer), refused-4xx (other 4xx: the request was wrong), errors-5xx (the cluster could not answer); then each member\'s membership state (joining, up, leaving, left, removed), liveness (up, down), virtual nodes and share of the ring (owns, counting replicas), the keys it holds by its own count (a dash from a node of an earlier version) and the ranges and bytes moving to or from it; exit 1 when none answers'))
    .option('--wait <ms>', 'how long to collect answers', '500')
    .option('--json', 'print the members, whether the ring is settled and every node\'s report as JSON')
    .action(async (flags: ClientFlags & { wait: string; json?: boolean }) => {
      const { runStatus } = await import('./one_shot.js');
      exitWith(await runStatus(flags));
    });

  addClientOptions(program.command('watch').argument('[prefix]', "key prefix ('' or none: every key)", '').description('print one line per change of a key starting with [prefix] (<key> <op> <hlc> <writer> <value>), until Ctrl-C; the change feed on kvchanges.<key>'))
    .option('--stream <name>', 'a JetStream stream capturing kvchanges and kvchanges.>: replay from it first (with --from-seq, --from-time or --history)')
    .option('--from-seq <n>', 'with --stream: start at this stream sequence')
    .option('--from-time <time>', 'with --stream: start at this time (ISO 8601)')
    .option('--history', 'with --stream: start with the newest event of each key the stream holds')
    .action(async (prefix: string, flags: WatchFlags) => {
      const { runWatch } = await import('./watch.js');
      exitWith(await runWatch(prefix, flags));
    });

  addClientOptions(program.command('keys').argument('[prefix]', "key prefix ('' or none: every key)", '').description('print every live key starting with [prefix], one a line (kv.keys, page by page); it walks the whole store, so use it for tools, not on a request path'))
    .option('--page-size <n>', 'keys per page (KV-Keys-Limit, 1 to 1000)')
    .option('-r, --read-quorum <n>', 'replicas whose merged answers decide each key (KV-R)')
    .action(async (prefix: string, flags: import('./keys.js').KeysFlags) => {
      const { runKeys } = await import('./keys.js');
      exitWith(await runKeys(prefix, flags));
    });

  const membershipChange = (name: 'leave' | 'remove', description: string) =>
    addClientOptions(program.command(name).argument('<node-id>').description(description), { requestTimeout: false })
      .option('--json', 'print the final `goddb status --json` (with --no-wait: the member\'s { node, state })')
      .option('--no-wait', 'return once the request is accepted, printing the member\'s state')
      .option('--timeout <duration>', 'how long to watch the change before giving up (exit 1, error 504; the change goes on): ms, or like 90s, 10m, 1h', '10m')
      .action(async (nodeId: string, flags: MembershipChangeFlags) => {
        const { runMembershipChange } = await import('./membership_change.js');
        exitWith(await runMembershipChange(name, nodeId, flags));
      });
  membershipChange('leave', 'ask the live member <node-id> to hand its ranges to their next owners and exit; shows progress (ranges and bytes moved) until it has left');
  membershipChange('remove', 'remove the down member <node-id>: each of its ranges gets a new replica, streamed from the surviving copies; shows progress until every node is settled');

  addClientOptions(program.command('prestop').description('the Kubernetes preStop hook of a StatefulSet pod: goddb leave <pod> when the StatefulSet was scaled below this pod (it goes for good), else return at once (a restart keeps its volume and must not leave); reads spec.replicas with the pod\'s service account'), { requestTimeout: false })
    .option('--pod <name>', 'the pod [default: $POD_NAME, the host name]')
    .option('--statefulset <name>', 'the StatefulSet [default: the pod name less its ordinal]')
    .option('--namespace <ns>', 'its namespace [default: the service account\'s]')
    .option('--api <url>', 'the Kubernetes API [default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT]')
    .option('--json', 'print the final `goddb status --json` once left')
    .option('--timeout <duration>', 'how long to watch the leave (keep it under terminationGracePeriodSeconds)', '10m')
    .action(async (flags: import('./prestop.js').PrestopFlags) => {
      const { runPrestop } = await import('./prestop.js');
      exitWith(await runPrestop({ ...flags, wait: true }));
    });

  program
    .command('backup')
    .argument('<dir>', 'a new (or empty) directory for the copy')
    .description("copy this machine's node data directory (identity, meta, and the lmdb data, hints and paxos stores, each a consistent LMDB snapshot) into <dir>, while the worker serves; prints the backup's manifest as JSON")
    .option('--data-dir <dir>', 'the node\'s data directory [env GODDB_DATA_DIR]')
    .option('--compact', 'compact the stores while copying (slower, smaller)')
    .action(async (dir: string, flags: import('./backup.js').BackupFlags) => {
      const { runBackup } = await import('./backup.js');
      exitWith(await runBackup(dir, flags));
    });
  program
    .command('restore')
    .argument('<dir>', 'a directory goddb backup made')
    .description('replace the node data directory\'s identity, meta and stores with the backup in <dir>; the worker must be stopped (its lock is free) and the directory must be the same node\'s or empty; start the worker after: anti-entropy brings it up to date')
    .option('--data-dir <dir>', 'the node\'s data directory [env GODDB_DATA_DIR]')
    .action(async (dir: string, flags: import('./backup.js').BackupFlags) => {
      const { runRestore } = await import('./backup.js');
      exitWith(await runRestore(dir, flags));
    });

  program
    .command('dev')
    .description('start nats-server and a local cluster for development (npm start)')
    .option('--nats-port <port>', 'port of the embedded nats-server', '4250')
    .option('--nodes <n>', 'number of worker processes', '3')
    .addOption(new Option('--engine <engine>', 'storage engine of the workers').choices(['lmdb', 'memory']).default('lmdb'))
    .option('--verbose', 'print every worker log line, not only warnings and errors')
    .option('--context-file <file>', 'where to write the context that goddb and connect() read [default: $GODDB_CONTEXT, ~/.config/goddb/context.json]')
    .action(async (flags: { natsPort: string; nodes: string; engine: string; verbose?: boolean; contextFile?: string }) => {
      const { runDev } = await import('./dev.js');
      await runDev(flags);
    });

  addBenchOptions(program.command('bench').description('benchmark GoD-DB against NATS echo, JetStream KV and Redis, all started on free local ports (npm run bench)')).action(async (flags: BenchFlags) => {
    const { runBenchCommand } = await import('../bench/run.js');
    exitWith(await runBenchCommand(flags));
  });

  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  // The seed's Go flags (-port 8080) are only rewritten for `worker`, where they mean something.
  const args = argv[2] === 'worker' ? normalizeLegacyFlags(argv) : [...argv];
  await buildProgram().parseAsync(args);
}

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`goddb: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
