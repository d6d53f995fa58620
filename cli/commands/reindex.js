'use strict';
// `reindex`: rebuilds the global index from the packs.

const { withRepo, plural, writeJson, JSON_OPTION } = require('../common');

async function cmdReindex({ values, positionals: [repoPath], io }) {
  return withRepo(repoPath, io, async (repo) => {
    const result = await repo.reindex();
    if (values.json) writeJson(io, result);
    else io.stdout.write(`reindex: ${plural(result.packs, 'pack')}, ${plural(result.chunks, 'chunk')} indexed\n`);
    return 0;
  });
}

module.exports = {
  usage: 'reindex <repo> [--json]',
  summary: 'rebuild the global index from the packs',
  options: { ...JSON_OPTION },
  positionals: [1, 1],
  optionHelp: { '--json': 'print the result as JSON' },
  examples: [
    'containerarchive reindex /backups/my-service',
  ],
  run: cmdReindex,
};
