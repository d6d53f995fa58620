'use strict';
// `forget`: removes the named snapshots; their data goes with --prune or at the next prune.

const { Progress, formatBytes, formatElapsed } = require('../progress');
const { inCliWords } = require('../errors');
const { BIN, q, usageError, short, withRepo, subscribe, formatDate, formatTags, plural, writeJson, JSON_OPTION } = require('../common');

async function cmdForget({ values, positionals: [repoPath, ...refs], io }) {
  // Typed ids may be upper case; the API takes them as listed (lower case).
  const ids = refs.map((ref) => (/^[0-9a-fA-F]+$/.test(ref) ? ref.toLowerCase() : ref));
  const dryRun = Boolean(values['dry-run']);
  const prune = Boolean(values.prune);
  return withRepo(repoPath, io, async (repo) => {
    const before = new Map((await repo.listSnapshots()).map((s) => [s.id, s]));
    const label = `forget${prune ? ' --prune' : ''}${dryRun ? ' (dry run)' : ''}`;
    const progress = new Progress(label, { stream: io.stderr, off: io.noProgress || !prune });
    const sub = subscribe(repo, 'prune:progress', (e) => progress.update({ bytes: e.bytesProcessed, percentage: e.percentage }));
    let result;
    try {
      result = await repo.forget(ids, { dryRun, prune });
    } catch (err) {
      if (err.code !== 'ERR_SNAPSHOT_NOT_FOUND' && err.code !== 'ERR_INVALID_ARGUMENT') throw err;
      // Every id is resolved before anything is removed: say so, it is what an operator wonders.
      const reason = err.message
        .replace(/; see listSnapshots\(\) for the snapshots in this repository$/, '')
        .replace(/ \(see listSnapshots\(\)\)$/, '');
      throw usageError(`${inCliWords(reason, q(repoPath))}; nothing was removed; list the snapshots with: ${BIN} snapshots ${q(repoPath)}`);
    } finally {
      progress.finish();
      sub.unsubscribe();
    }
    if (values.json) {
      writeJson(io, result);
      return 0;
    }
    const word = dryRun ? 'remove ' : 'removed';
    for (const id of result.removedSnapshots) {
      const s = before.get(id);
      io.stdout.write(`${word}  ${s ? `${short(id)}  ${formatDate(s.createdAt)}  ${formatTags(s.tags)}` : short(id)}\n`);
    }
    const count = plural(result.removedSnapshots.length, 'snapshot');
    if (prune && dryRun) {
      io.stdout.write(
        `forget (dry run): would remove ${count}, delete ${plural(result.removedPacks, 'pack')}, repack ${result.repackedPacks}, ` +
          `free ${formatBytes(result.freedBytes)}; nothing was changed\n`,
      );
    } else if (prune) {
      io.stdout.write(
        `forget: removed ${count}, deleted ${plural(result.removedPacks, 'pack')}, repacked ${result.repackedPacks}, ` +
          `freed ${formatBytes(result.freedBytes)} in ${formatElapsed(progress.elapsedMs())}\n`,
      );
    } else if (dryRun) {
      io.stdout.write(`forget (dry run): would remove ${count}; nothing was changed\n`);
    } else {
      io.stdout.write(`forget: removed ${count}; their data stays until the next prune (or forget with --prune)\n`);
    }
    return 0;
  });
}

module.exports = {
  usage: 'forget <repo> <id>... [--dry-run] [--prune] [--json]',
  summary: 'remove the named snapshots (and with --prune their data)',
  options: {
    'dry-run': { type: 'boolean' },
    prune: { type: 'boolean' },
    ...JSON_OPTION,
  },
  positionals: [2, Infinity],
  optionHelp: {
    '<id>': `a full snapshot id or a unique prefix of at least 8 hex digits, as ${BIN} snapshots lists them ('latest' is not accepted)`,
    '--dry-run': 'show what would be removed (and with --prune, freed); change nothing',
    '--prune': 'also reclaim the data only these snapshots used, at once',
    '--json': 'print the result as JSON',
  },
  examples: [
    `${BIN} forget /backups/my-service 3f2a9c1e --dry-run`,
    `${BIN} forget /backups/my-service 3f2a9c1e 77b0d4aa --prune`,
  ],
  run: cmdForget,
};
