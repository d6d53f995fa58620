'use strict';
// The engine's messages are written for API callers; the CLI speaks of commands.

const BIN = 'containerarchive'; // as in common.js, which requires this module

/**
 * The engine's messages name API calls (`repair()`, `{ lockTimeoutMs }`); an
 * operator needs the command instead. Advice the CLI replaces with its own is
 * dropped; any other API name becomes its command.
 */
function inCliWords(message, repo) {
  const commands = {
    'ContainerArchive.init()': `${BIN} init`,
    'ContainerArchive.open()': 'open',
    'init()': `${BIN} init`,
    'open()': 'open',
    'verify()': `${BIN} verify ${repo}`,
    'repair()': `${BIN} repair ${repo}`,
    'reindex()': `${BIN} reindex ${repo}`,
    'unlock()': `${BIN} unlock ${repo}`,
    'prune()': `${BIN} prune ${repo}`,
    'forget()': `${BIN} forget ${repo}`,
    'listSnapshots()': `${BIN} snapshots ${repo}`,
    'getSnapshot()': `${BIN} snapshots ${repo}`,
    'stats()': `${BIN} stats ${repo}`,
    'listKeys()': `${BIN} key list ${repo}`,
    'addKey()': `${BIN} key add ${repo}`,
    'removeKey()': `${BIN} key remove ${repo} <id>`,
    'changePassphrase()': `${BIN} key passwd ${repo}`,
    'listFiles()': `${BIN} ls ${repo} <snapshot>`,
    'restoreFile()': '--file',
    'restoreFiles()': `${BIN} restore ${repo} <snapshot> --include GLOB`,
  };
  let text = message
    .replace(/; run verify\(\) to see the extent and repair\(\) to fix what can be fixed/g, '')
    .replace(/; wait for it to finish, pass \{ lockTimeoutMs \} to wait, or run unlock\(\) if that process is gone/g, '')
    .replace(/\{ ?lockTimeoutMs ?\}/g, '--lock-wait')
    .replace(/, or with \{ catalog: 'tar' \}, are\)/g, ' are: back it up with --item NAME:volume-tar)')
    .replace(/pass \{ ?passphrase ?\} to open/g, 'give its passphrase to open it')
    .replace(/removeKey\(\) with id ([0-9a-f]+)/g, (_, id) => `${BIN} key remove ${repo} ${id}`);
  for (const [call, command] of Object.entries(commands)) text = text.split(call).join(command);
  return text;
}

module.exports = { inCliWords };
