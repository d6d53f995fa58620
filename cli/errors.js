'use strict';
// How a failure ends the CLI: an exit code scripts can branch on (restic's
// numbers where restic has one) and one line naming the fix in CLI words.

const { SOURCES_HINT, PromptAborted, PassphraseSourceError } = require('./passphrase');
const { BIN, PACKAGE, CliError, oneLine, q } = require('./common');
const { inCliWords } = require('./words');

const EXIT = Object.freeze({
  OK: 0,
  PROBLEM: 1, // the operation found a problem, or the filesystem failed
  USAGE: 2, // bad usage or input
  NO_REPOSITORY: 10,
  LOCKED: 11,
  PASSPHRASE: 12, // wrong or missing passphrase
  SIGINT: 130,
  SIGTERM: 143,
});

/** Maps any failure to { exitCode, message } (the message names the fix). */
function explain(err, ctx) {
  if (err instanceof CliError || err instanceof PromptAborted || err instanceof PassphraseSourceError) {
    return { exitCode: err.exitCode, message: err.message };
  }
  const repo = ctx.repo === undefined ? '<repo>' : q(ctx.repo);
  const message = inCliWords(oneLine(err && err.message ? err.message : String(err)), repo);
  const code = err && typeof err.code === 'string' ? err.code : '';
  if (err && err.name === 'ArchiveError') {
    switch (code) {
      case 'ERR_REPO_NOT_FOUND':
        return { exitCode: EXIT.NO_REPOSITORY, message: `no repository at ${repo}; check the path, or create one with: ${BIN} init ${repo}` };
      case 'ERR_REPO_EXISTS':
        return { exitCode: EXIT.USAGE, message: `${repo} already holds a repository; use it as it is, or give init another path` };
      case 'ERR_PASSPHRASE_REQUIRED':
        return { exitCode: EXIT.PASSPHRASE, message: `${repo} is encrypted; ${SOURCES_HINT}` };
      case 'ERR_WRONG_PASSPHRASE':
        return { exitCode: EXIT.PASSPHRASE, message: `wrong passphrase for ${repo}; give one of its passphrases (${SOURCES_HINT})` };
      case 'ERR_SNAPSHOT_NOT_FOUND':
        return { exitCode: EXIT.USAGE, message: `${message}; list the snapshots with: ${BIN} snapshots ${repo}` };
      case 'ERR_ITEM_NOT_FOUND':
        return { exitCode: EXIT.USAGE, message: `${message}; list the items with: ${BIN} snapshots ${repo}` };
      case 'ERR_INVALID_ARGUMENT':
        return { exitCode: EXIT.USAGE, message: `${message}; see: ${BIN} ${ctx.command ? `${ctx.command} ` : ''}--help` };
      case 'ERR_NO_CATALOG':
        return { exitCode: EXIT.USAGE, message };
      case 'ERR_FILE_NOT_FOUND':
        return { exitCode: EXIT.USAGE, message };
      case 'ERR_UNSUPPORTED_FORMAT':
        if (/sparse/.test(message)) return { exitCode: EXIT.USAGE, message };
        return { exitCode: EXIT.USAGE, message: `${message}; upgrade ${PACKAGE} to read this repository` };
      case 'ERR_LOCKED':
        return {
          exitCode: EXIT.LOCKED,
          message: `${message}; wait for it to finish (--lock-wait 10m waits that long), or if that process is gone run: ${BIN} unlock ${repo}`,
        };
      case 'ERR_CORRUPT':
        // Without any config.json the repository cannot be opened, so verify/repair cannot help.
        if (/config\.json is missing and its copy/.test(message)) return { exitCode: EXIT.PROBLEM, message };
        return { exitCode: EXIT.PROBLEM, message: `${message}; run: ${BIN} verify ${repo} --level full, then: ${BIN} repair ${repo}` };
      case 'ERR_INTERNAL':
        return { exitCode: EXIT.PROBLEM, message: `${message}; this is a bug, please report it` };
      default:
        return { exitCode: EXIT.PROBLEM, message };
    }
  }
  if (code === 'EPIPE') return { exitCode: EXIT.PROBLEM, message: 'the output was closed before the restore finished (EPIPE)' };
  // A filesystem failure (README: exit 1); commands check their paths up front, so this is rare.
  if (/^E[A-Z]+$/.test(code)) return { exitCode: EXIT.PROBLEM, message: `${message}; check the path, its permissions and free space` };
  return { exitCode: EXIT.PROBLEM, message };
}

module.exports = { EXIT, explain, inCliWords };
