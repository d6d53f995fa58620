'use strict';
// `verify`: checks the repository at one of three depths; exit 1 on a problem.

const { Progress, formatBytes, formatElapsed } = require('../progress');
const { BIN, usageError, oneLine, q, withRepo, plural, writeJson, issueLine, JSON_OPTION } = require('../common');

const LEVELS = ['quick', 'standard', 'full'];

async function cmdVerify({ values, positionals: [repoPath], io }) {
  const subset = values.subset;
  // A subset samples the data read, so it means --level full.
  const level = values.level === undefined ? (subset === undefined ? 'standard' : 'full') : values.level;
  if (!LEVELS.includes(level)) throw usageError(`--level takes quick, standard or full, not ${q(level)}`);
  if (subset !== undefined && level !== 'full') throw usageError(`--subset reads part of the pack data, so it needs --level full, not --level ${level}`);
  if (subset !== undefined && !/^(\d+\/\d+|\d+(\.\d+)?%)$/.test(subset)) {
    throw usageError(`--subset takes N/M (slice N of M, e.g. 1/7) or a percentage (e.g. 10%), not ${q(subset)}`);
  }
  const label = subset === undefined ? level : `${level}, subset ${subset}`;
  return withRepo(repoPath, io, async (repo) => {
    const progress = new Progress(`verify (${label})`, { stream: io.stderr, off: io.noProgress });
    const sub = repo.on('verify:progress', (e) => progress.update({ bytes: e.bytesProcessed, percentage: e.percentage }));
    let result;
    try {
      result = await repo.verify({ level, ...(subset !== undefined ? { subset } : {}), signal: io.signal });
    } finally {
      progress.finish();
      sub.unsubscribe();
    }
    if (values.json) {
      writeJson(io, result);
    } else {
      const c = result.checked;
      const s = result.subset;
      const packs = s ? `${s.packsRead} of ${plural(s.packsTotal, 'pack')} read` : plural(c.packs, 'pack');
      const what = `${plural(c.snapshots, 'snapshot')}, ${packs}, ${plural(c.chunks, 'chunk')}, ${formatBytes(c.bytes)} checked in ${formatElapsed(progress.elapsedMs())}`;
      for (const skip of result.skipped ?? []) io.stdout.write(`  skipped ${skip.check}: ${oneLine(skip.reason)}\n`);
      if (result.ok) {
        io.stdout.write(`verify (${label}): ok, ${what}\n`);
      } else {
        for (const issue of result.errors) io.stdout.write(`${issueLine(issue, q(repoPath))}\n`);
        io.stdout.write(`verify (${label}): ${plural(result.errors.length, 'problem')} found (${what}); run: ${BIN} repair ${q(repoPath)}\n`);
      }
    }
    return result.ok ? 0 : 1;
  });
}

module.exports = {
  usage: 'verify <repo> [--level quick|standard|full] [--subset N/M|P%] [--json]',
  summary: 'check the repository (exit 1 when it finds a problem)',
  options: { level: { type: 'string' }, subset: { type: 'string' }, ...JSON_OPTION },
  positionals: [1, 1],
  optionHelp: {
    '--level L': 'quick (files and metadata), standard (default: also pack headers and the index) or full (also every byte)',
    '--subset N/M|P%': "with --level full, read only slice N of M of the packs (1/7 on day 1 ... 7/7 on day 7 covers them all) or a random P% of them; implies --level full",
    '--json': 'print the result as JSON',
  },
  examples: [
    'containerarchive verify /backups/my-service --level full',
    'containerarchive verify /backups/my-service --level full --subset "$(( $(date +%u) ))/7"   # nightly: every pack once a week',
  ],
  run: cmdVerify,
};
