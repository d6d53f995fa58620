'use strict';
// `snapshots`: lists snapshots, oldest first.

const { formatBytes } = require('../progress');
const { usageError, short, parseCount, selection, withRepo, formatDate, formatTags, plural, writeJson, table, parseDateFlag, JSON_OPTION } = require('../common');

async function cmdSnapshots({ values, positionals: [repoPath], io }) {
  const filter = selection(values);
  const after = parseDateFlag(values.after, '--after');
  const before = parseDateFlag(values.before, '--before');
  const latest = parseCount(values.latest, '--latest');
  if (latest === 0) throw usageError('--latest takes a count of 1 or more; e.g. --latest 5');
  return withRepo(repoPath, io, async (repo) => {
    let list = await repo.listSnapshots({ ...filter, ...(after ? { after } : {}), ...(before ? { before } : {}) });
    if (latest !== undefined) list = list.slice(-latest);
    if (values.json) {
      writeJson(io, list);
      return 0;
    }
    const rows = [['ID', 'DATE (UTC)', 'HOST', 'TAGS', 'ITEMS', 'SIZE']];
    for (const s of list) {
      rows.push([short(s.id), formatDate(s.createdAt), s.host || '-', formatTags(s.tags), s.items.map((i) => i.name).join(','), formatBytes(s.originalSize)]);
    }
    io.stdout.write(`${table(rows, [5])}\n`);
    if (io.verbose) {
      // Per item: its type, size and checksum, under the snapshot's full id.
      for (const s of list) {
        io.stdout.write(`${s.id}${s.user ? ` by ${s.user}` : ''}\n`);
        for (const i of s.items) {
          io.stdout.write(`  ${i.name}${i.type ? ` (${i.type})` : ''}  ${formatBytes(i.size)}${i.sha256 ? `  sha256 ${i.sha256}` : ''}\n`);
        }
      }
    }
    io.stdout.write(`${plural(list.length, 'snapshot')}\n`);
    return 0;
  });
}

module.exports = {
  usage: 'snapshots <repo> [--tag k=v]... [--host H] [--after DATE] [--before DATE] [--latest N] [--json]',
  summary: 'list snapshots, oldest first',
  options: {
    tag: { type: 'string', multiple: true },
    host: { type: 'string' },
    after: { type: 'string' },
    before: { type: 'string' },
    latest: { type: 'string' },
    ...JSON_OPTION,
  },
  positionals: [1, 1],
  optionHelp: {
    '--tag k=v': 'only snapshots with these tags (repeatable)',
    '--host H': 'only snapshots of host H',
    '--after DATE': 'only snapshots taken after DATE (e.g. 2026-01-31)',
    '--before DATE': 'only snapshots taken before DATE',
    '--latest N': 'only the N newest that match',
    '--json': 'print the list as JSON (listSnapshots\' shape)',
  },
  examples: [
    'containerarchive snapshots /backups/my-service --tag service=postgres --latest 5',
  ],
  run: cmdSnapshots,
};
