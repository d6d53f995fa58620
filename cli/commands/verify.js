'use strict';
// `verify`: checks the repository at one of three depths; exit 1 on a problem.

const { Progress, formatBytes, formatElapsed } = require('../progress');
const { BIN, usageError, oneLine, q, withRepo, plural, writeJson, issueLine, JSON_OPTION } = require('../common');

const LEVELS = ['quick', 'standard', 'full'];

async function cmdVerify({ values, positionals: [repoPath], io }) {
  const level = values.level === undefined ? 'standard' : values.level;
  if (!LEVELS.includes(level)) throw usageError(`--level takes quick, standard or full, not ${q(level)}`);
  return withRepo(repoPath, io, async (repo) => {
    const progress = new Progress(`verify (${level})`, { stream: io.stderr, off: io.noProgress });
    const sub = repo.on('verify:progress', (e) => progress.update({ bytes: e.bytesProcessed, percentage: e.percentage }));
    let result;
    try {
      result = await repo.verify({ level });
    } finally {
      progress.finish();
      sub.unsubscribe();
    }
    if (values.json) {
      writeJson(io, result);
    } else {
      const c = result.checked;
      const what = `${plural(c.snapshots, 'snapshot')}, ${plural(c.packs, 'pack')}, ${plural(c.chunks, 'chunk')}, ${formatBytes(c.bytes)} checked in ${formatElapsed(progress.elapsedMs())}`;
      for (const skip of result.skipped ?? []) io.stdout.write(`  skipped ${skip.check}: ${oneLine(skip.reason)}\n`);
      if (result.ok) {
        io.stdout.write(`verify (${level}): ok, ${what}\n`);
      } else {
        for (const issue of result.errors) io.stdout.write(`${issueLine(issue, q(repoPath))}\n`);
        io.stdout.write(`verify (${level}): ${plural(result.errors.length, 'problem')} found (${what}); run: ${BIN} repair ${q(repoPath)}\n`);
      }
    }
    return result.ok ? 0 : 1;
  });
}

module.exports = {
  usage: 'verify <repo> [--level quick|standard|full] [--json]',
  summary: 'check the repository (exit 1 when it finds a problem)',
  options: { level: { type: 'string' }, ...JSON_OPTION },
  positionals: [1, 1],
  optionHelp: {
    '--level L': 'quick (files and metadata), standard (default: also pack headers and the index) or full (also every byte)',
    '--json': 'print the result as JSON',
  },
  examples: [
    'containerarchive verify /backups/my-service --level full',
  ],
  run: cmdVerify,
};
