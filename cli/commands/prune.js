'use strict';
// `prune`: applies a retention policy per group and reclaims the space.

const { Progress, formatBytes, formatElapsed } = require('../progress');
const { printPruneGroups } = require('../prune-report');
const { usageError, q, short, parseKeyValues, parseCount, withRepo, subscribe, formatDate, formatTags, plural, writeJson, JSON_OPTION } = require('../common');

function parseGroupBy(value) {
  if (value === 'none') return false;
  const keys = value.split(',').map((k) => k.trim());
  if (keys.some((k) => k.length === 0) || new Set(keys).size !== keys.length) {
    throw usageError(`--group-by takes distinct comma-separated keys (host or tag keys) or none, not ${q(value)}; e.g. --group-by host,service`);
  }
  return keys;
}

async function cmdPrune({ values, positionals: [repoPath], io }) {
  const retention = {};
  const counts = [
    ['keep-last', 'keepLast'],
    ['keep-hourly', 'keepHourly'],
    ['keep-daily', 'keepDays'],
    ['keep-weekly', 'keepWeeks'],
    ['keep-monthly', 'keepMonths'],
    ['keep-yearly', 'keepYears'],
  ];
  for (const [flag, key] of counts) {
    const n = parseCount(values[flag], `--${flag}`);
    if (n !== undefined) retention[key] = n;
  }
  if (values['keep-within'] !== undefined) {
    if (!/^(\d+[ymwdh])+$/.test(values['keep-within'])) {
      throw usageError(`--keep-within takes a duration like 30d, 12h, 2w or 1y6m, not ${q(values['keep-within'])}`);
    }
    retention.keepWithin = values['keep-within'];
  }
  const keepTags = parseKeyValues(values['keep-tag'], '--keep-tag');
  if (Object.keys(keepTags).length > 0) retention.keepTags = keepTags;
  const scope = parseKeyValues(values.tag, '--tag');
  const keepsSomething = Object.values(retention).some((v) => typeof v !== 'number' || v > 0);
  if (!keepsSomething) {
    throw usageError('prune needs at least one keep rule, e.g. --keep-last 7 (a policy that keeps nothing would remove every snapshot)');
  }
  if (Object.keys(scope).length > 0) retention.filter = { tags: scope };
  if (values['group-by'] !== undefined) retention.groupBy = parseGroupBy(values['group-by']);
  const dryRun = Boolean(values['dry-run']);
  return withRepo(repoPath, io, async (repo) => {
    const before = new Map((await repo.listSnapshots()).map((s) => [s.id, s]));
    const progress = new Progress(dryRun ? 'prune (dry run)' : 'prune', { stream: io.stderr, off: io.noProgress });
    const sub = subscribe(repo, 'prune:progress', (e) => progress.update({ bytes: e.bytesProcessed, percentage: e.percentage }));
    let result;
    try {
      result = await repo.prune({ ...retention, signal: io.signal }, dryRun);
    } finally {
      progress.finish();
      sub.unsubscribe();
    }
    if (values.json) {
      writeJson(io, result);
      return 0;
    }
    const describe = (id) => {
      const s = before.get(id);
      return s ? `${short(id)}  ${formatDate(s.createdAt)}  ${formatTags(s.tags)}` : short(id);
    };
    printPruneGroups(io.stdout, result, describe);
    if (dryRun) {
      io.stdout.write(
        `prune (dry run): would keep ${result.keptSnapshots.length} and remove ${plural(result.removedSnapshots.length, 'snapshot')}` +
          ` in ${plural(result.groups.length, 'group')}, ` +
          `delete ${plural(result.removedPacks, 'pack')}, repack ${result.repackedPacks}, free ${formatBytes(result.freedBytes)}; nothing was changed\n`,
      );
    } else {
      io.stdout.write(
        `prune: kept ${result.keptSnapshots.length} and removed ${plural(result.removedSnapshots.length, 'snapshot')}` +
          ` in ${plural(result.groups.length, 'group')}, ` +
          `deleted ${plural(result.removedPacks, 'pack')}, repacked ${result.repackedPacks}, freed ${formatBytes(result.freedBytes)} in ${formatElapsed(progress.elapsedMs())}\n`,
      );
    }
    return 0;
  });
}

module.exports = {
  usage:
    'prune <repo> [--keep-last N] [--keep-hourly N] [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] [--keep-within 30d] [--keep-tag k=v]... [--tag k=v]... [--group-by host,KEY|none] [--dry-run] [--json]',
  summary: 'remove snapshots the retention policy does not keep, and their data',
  options: {
    'keep-last': { type: 'string' },
    'keep-hourly': { type: 'string' },
    'keep-daily': { type: 'string' },
    'keep-weekly': { type: 'string' },
    'keep-monthly': { type: 'string' },
    'keep-yearly': { type: 'string' },
    'keep-within': { type: 'string' },
    'keep-tag': { type: 'string', multiple: true },
    tag: { type: 'string', multiple: true },
    'group-by': { type: 'string' },
    'dry-run': { type: 'boolean' },
    ...JSON_OPTION,
  },
  positionals: [1, 1],
  optionHelp: {
    '--keep-last N': 'keep the N newest snapshots of each group',
    '--keep-hourly N': 'keep the newest snapshot of each of the last N hours that have one',
    '--keep-daily N': '... of each of the last N days',
    '--keep-weekly N': '... of each of the last N weeks',
    '--keep-monthly N': '... of each of the last N months',
    '--keep-yearly N': '... of each of the last N years',
    '--keep-within D': 'keep every snapshot younger than D (e.g. 30d, 12h, 1y6m)',
    '--keep-tag k=v': 'keep every snapshot with this tag (repeatable)',
    '--tag k=v': 'apply the policy only to snapshots with these tags (repeatable)',
    '--group-by KEYS': 'group by these keys (host and tag keys, comma-separated) or none; default: host and every tag',
    '--dry-run': 'show what would be removed and freed; change nothing',
    '--json': 'print the result as JSON',
  },
  examples: [
    'containerarchive prune /backups/my-service --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run',
  ],
  run: cmdPrune,
};
