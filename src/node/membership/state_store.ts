/**
 * This node's membership state, kept in its data directory (issue 9): a
 * node restarted while joining or leaving goes on from where it was, and one
 * that left or was removed does not come back as a member.
 */
import { StorageError } from '../../core/errors.js';
import { memberStates, type MemberState, type StateStamp } from '../../core/membership.js';
import type { MetaStore } from '../../storage/meta.js';

export const stateMetaName = 'member-state';

export function loadState(meta: MetaStore): StateStamp | undefined {
  const text = meta.readText(stateMetaName);
  if (text === undefined) return undefined;
  const [state, version] = text.trim().split(/\s+/);
  if (!(memberStates as readonly string[]).includes(state ?? '') || !/^\d{1,15}$/.test(version ?? '')) {
    throw new StorageError(`the kept membership state ${JSON.stringify(text.slice(0, 60))} is not "<state> <version>"`);
  }
  return { state: state as MemberState, stateVersion: Number(version) };
}

export function saveState(meta: MetaStore, stamp: StateStamp): void {
  meta.writeText(stateMetaName, `${stamp.state} ${stamp.stateVersion}`);
}
