'use strict';
// `stats`: what the repository holds and what it costs on disk.

const { formatBytes } = require('../progress');
const { BIN, q, withRepo, plural, writeJson, table, JSON_OPTION } = require('../common');

async function cmdStats({ values, positionals: [repoPath], io }) {
  return withRepo(repoPath, io, async (repo) => {
    const stats = await repo.stats();
    if (values.json) {
      writeJson(io, stats);
      return 0;
    }
    const ratio = (r) => (r === null ? '-' : `${r.toFixed(2)}x`);
    const bytes = (n) => `${formatBytes(n)} (${n})`;
    const u = stats.uniqueChunks;
    const rows = [
      ['snapshots', String(stats.snapshots)],
      ['logical bytes', `${bytes(stats.logicalBytes)}, the sum of every snapshot's items`],
      ['unique chunks', `${u.count}: ${formatBytes(u.rawBytes)} raw, ${formatBytes(u.storedBytes)} stored`],
      ['unreferenced chunks', `${stats.unreferencedChunks.count}: ${formatBytes(stats.unreferencedChunks.storedBytes)} stored (prune reclaims them)`],
      ['pack bytes on disk', `${formatBytes(stats.packs.bytes)} in ${plural(stats.packs.files, 'pack')}`],
      ['parity bytes on disk', `${formatBytes(stats.parity.bytes)} in ${plural(stats.parity.files, 'file')}`],
      ['repository on disk', formatBytes(stats.repositoryBytes)],
      ['dedup ratio', `${ratio(stats.dedupRatio)} (logical / unique raw)`],
      ['compression ratio', `${ratio(stats.compressionRatio)} (unique raw / unique stored)`],
      ['parity overhead', stats.parityOverhead === null ? '-' : `${(stats.parityOverhead * 100).toFixed(1)}% (parity / pack bytes)`],
    ];
    if (stats.missingChunks > 0) rows.push(['missing chunks', `${stats.missingChunks}; run: ${BIN} verify ${q(repoPath)}`]);
    io.stdout.write(`${table(rows.map(([k, v]) => [`${k}:`, v]))}\n`);
    return 0;
  });
}

module.exports = {
  usage: 'stats <repo> [--json]',
  summary: 'snapshots, logical vs unique vs stored bytes, dedup and compression ratios, parity overhead',
  options: { ...JSON_OPTION },
  positionals: [1, 1],
  optionHelp: { '--json': 'print the figures as JSON' },
  examples: [
    'containerarchive stats /backups/my-service',
  ],
  run: cmdStats,
};
