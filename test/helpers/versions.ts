import type { Version } from '../../src/core/version.js';

/** A canonical string per version (clock entries sorted, the value in hex, the dot's past), to compare versions by content. */
export function canonicalVersion(v: Version): string {
  const clock = Object.keys(v.clock)
    .sort()
    .map((k) => `${k}:${v.clock[k]}`)
    .join(',');
  return `${v.hlc}|${v.writer}|${v.tombstone}|${Buffer.from(v.value).toString('hex')}|${clock}|${v.pastCounter ?? '-'}`;
}

/** `vs` as sorted canonical strings: equal for the same versions in any order. */
export function versionSet(vs: readonly Version[]): string[] {
  return vs.map(canonicalVersion).sort();
}
