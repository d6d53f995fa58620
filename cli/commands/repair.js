'use strict';
// `repair`: rebuilds what parity and the packs can restore; exit 1 when something is lost.

const { oneLine, q, short, withRepo, plural, writeJson, issueLine, JSON_OPTION } = require('../common');

async function cmdRepair({ values, positionals: [repoPath], io }) {
  return withRepo(repoPath, io, async (repo) => {
    const result = await repo.repair({ signal: io.signal });
    const lost = result.unrecoverable.length > 0 || result.errors.length > 0;
    if (values.json) {
      writeJson(io, result);
      return lost ? 1 : 0;
    }
    for (const issue of result.errors) io.stdout.write(`${issueLine(issue, q(repoPath))}\n`);
    for (const q of result.quarantined ?? []) io.stdout.write(`  quarantined: ${q.file} -> ${q.movedTo} (${oneLine(q.reason)})\n`);
    for (const u of result.unrecoverable) {
      const what = u.pack === null ? 'an unreadable snapshot manifest' : `pack ${u.pack}`;
      io.stdout.write(`  unrecoverable: ${what}; snapshots affected: ${u.snapshots.length ? u.snapshots.map(short).join(', ') : 'none'}\n`);
    }
    const summary =
      `${plural(result.packsRepaired, 'pack')} repaired, ${plural(result.parityRewritten, 'parity group')} rewritten, ` +
      `${plural(result.snapshotsRepaired, 'snapshot manifest')} restored, ` +
      `index ${result.indexRebuilt ? 'rebuilt' : 'unchanged'}, ${plural(result.locksRemoved, 'stale lock')} removed`;
    if (lost) {
      io.stdout.write(`repair: ${summary}; ${plural(result.unrecoverable.length, 'unrecoverable pack')}, ${plural(result.errors.length, 'unfixed problem')}\n`);
      return 1;
    }
    io.stdout.write(`repair: ${summary}\n`);
    return 0;
  });
}

module.exports = {
  usage: 'repair <repo> [--json]',
  summary: 'rebuild what parity and the packs can restore (exit 1 when something is lost)',
  options: { ...JSON_OPTION },
  positionals: [1, 1],
  optionHelp: { '--json': 'print the result as JSON' },
  examples: [
    'containerarchive repair /backups/my-service',
  ],
  run: cmdRepair,
};
