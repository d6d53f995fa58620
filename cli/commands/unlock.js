'use strict';
// `unlock`: removes stale locks (every lock with --force).

const { withRepo, plural } = require('../common');

async function cmdUnlock({ values, positionals: [repoPath], io }) {
  return withRepo(repoPath, io, async (repo) => {
    const removed = await repo.unlock({ force: Boolean(values.force) });
    io.stdout.write(`removed ${plural(removed, values.force ? 'lock' : 'stale lock')}\n`);
    return 0;
  });
}

module.exports = {
  usage: 'unlock <repo> [--force]',
  summary: 'remove stale locks (every lock with --force)',
  options: { force: { type: 'boolean' } },
  positionals: [1, 1],
  optionHelp: { '--force': 'remove every lock, also live ones (only when no other process uses the repository)' },
  examples: [
    'containerarchive unlock /backups/my-service',
  ],
  run: cmdUnlock,
};
