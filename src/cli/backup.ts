/**
 * `goddb backup <dir>` and `goddb restore <dir>`, run on the node's machine
 * with its data directory (node/backup/backup.ts): a backup while the worker
 * serves, a restore while it is stopped. Prints one line of JSON (the backup's
 * manifest); exit 1 with `error <code>: <message>` when refused or failed.
 */
import { ErrorCode } from '../core/errors.js';
import { CliError, ExitCode, formatError } from './client_options.js';

export interface BackupFlags {
  dataDir?: string;
  compact?: boolean;
}

function dataDirOf(flags: BackupFlags): string {
  const dir = flags.dataDir ?? process.env['GODDB_DATA_DIR'];
  if (dir === undefined || dir.trim() === '') throw new CliError(ErrorCode.BadRequest, 'the node\'s data directory is needed: --data-dir <dir> (or GODDB_DATA_DIR)');
  return dir;
}

export async function runBackup(target: string, flags: BackupFlags): Promise<number> {
  try {
    const { backupDataDir } = await import('../node/backup/backup.js');
    const manifest = await backupDataDir(dataDirOf(flags), target, { compact: flags.compact === true });
    process.stdout.write(`${JSON.stringify({ backup: target, ...manifest })}\n`);
    return ExitCode.Ok;
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`);
    return ExitCode.Failed;
  }
}

export async function runRestore(backup: string, flags: BackupFlags): Promise<number> {
  try {
    const { restoreDataDir } = await import('../node/backup/backup.js');
    const dataDir = dataDirOf(flags);
    const manifest = restoreDataDir(backup, dataDir);
    process.stdout.write(`${JSON.stringify({ restored: dataDir, ...manifest })}\n`);
    return ExitCode.Ok;
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`);
    return ExitCode.Failed;
  }
}
