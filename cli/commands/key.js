'use strict';
// `key list|add|remove|passwd`: the keys (passphrases) of an encrypted repository.
// The repository opens with the usual passphrase sources; the NEW passphrase of
// add/passwd comes from --new-passphrase-file, CONTAINERARCHIVE_NEW_PASSPHRASE or
// a no-echo prompt asked twice, never from the command line.

const { readPassphraseFile } = require('../passphrase');
const { withRepo, writeJson, table, formatDate, usageError, canPrompt, askPassphrase, q, BIN, JSON_OPTION } = require('../common');

const NEW_VAR = 'CONTAINERARCHIVE_NEW_PASSPHRASE';
const ACTIONS = ['list', 'add', 'remove', 'passwd'];

async function newPassphrase(values, io) {
  const file = values['new-passphrase-file'];
  if (file !== undefined) {
    if (file === '') throw usageError('--new-passphrase-file needs a file name');
    try {
      return readPassphraseFile(file, '--new-passphrase-file');
    } catch (err) {
      throw usageError(err.message);
    }
  }
  if (io.env[NEW_VAR] !== undefined) {
    if (io.env[NEW_VAR] === '') throw usageError(`${NEW_VAR} is set but empty; the new passphrase cannot be empty`);
    return io.env[NEW_VAR];
  }
  if (!canPrompt(io.stdin)) {
    throw usageError(`no new passphrase: pass --new-passphrase-file FILE or set ${NEW_VAR} (or run on a terminal to be asked)`);
  }
  const first = await askNew(io, 'New passphrase: ');
  const second = await askNew(io, 'Repeat the new passphrase: ');
  if (first !== second) throw usageError('the two new passphrases differ; nothing was changed');
  return first;
}

async function askNew(io, prompt) {
  try {
    return await askPassphrase(io, prompt);
  } catch (err) {
    // askPassphrase's "empty passphrase" speaks of the repository's passphrase sources.
    if (err.exitCode === 12) throw usageError('the new passphrase cannot be empty; nothing was changed');
    throw err;
  }
}

function keyLine(key) {
  return `${key.id} (created ${formatDate(key.createdAt)}${key.host ? ` on ${key.host}` : ''})`;
}

async function cmdKey({ values, positionals, io, ctx }) {
  const [action, repoPath, id] = positionals;
  ctx.repo = repoPath;
  if (!ACTIONS.includes(action)) {
    throw usageError(`key: unknown action ${q(action)}; actions: ${ACTIONS.join(', ')} (see '${BIN} key --help')`);
  }
  if (repoPath === undefined) throw usageError(`key ${action}: missing <repo>; usage: ${BIN} ${module.exports.usage}`);
  if (action === 'remove' && id === undefined) throw usageError(`key remove: missing <id>; see: ${BIN} key list ${q(repoPath)}`);
  if (action !== 'remove' && id !== undefined) throw usageError(`key ${action}: unexpected argument ${q(id)}`);
  if (values['new-passphrase-file'] !== undefined && !['add', 'passwd'].includes(action)) {
    throw usageError(`key ${action}: --new-passphrase-file is for key add and key passwd`);
  }
  return withRepo(repoPath, io, async (repo) => {
    switch (action) {
      case 'list': {
        const keys = await repo.listKeys();
        if (values.json) {
          writeJson(io, keys);
          return 0;
        }
        const rows = [['ID', 'CREATED', 'HOST', 'CURRENT']];
        for (const k of keys) rows.push([k.id, formatDate(k.createdAt), k.host || '-', k.current ? '*' : '']);
        io.stdout.write(`${table(rows)}\n`);
        return 0;
      }
      case 'add': {
        const key = await repo.addKey(await newPassphrase(values, io));
        if (values.json) writeJson(io, key);
        else io.stdout.write(`added key ${keyLine(key)}\n`);
        return 0;
      }
      case 'remove': {
        const removed = await repo.removeKey(/^[0-9A-F]+$/.test(id) ? id.toLowerCase() : id);
        if (values.json) writeJson(io, { removed });
        else io.stdout.write(`removed key ${removed}\n`);
        return 0;
      }
      default: {
        const key = await repo.changePassphrase(await newPassphrase(values, io));
        if (values.json) writeJson(io, key);
        else io.stdout.write(`passphrase changed: the new key is ${keyLine(key)}; the old passphrase no longer opens it\n`);
        return 0;
      }
    }
  });
}

module.exports = {
  usage: 'key <list|add|remove|passwd> <repo> [<id>] [--new-passphrase-file FILE] [--json]',
  summary: 'list, add or remove the keys (passphrases) of an encrypted repository, or change its passphrase',
  options: { 'new-passphrase-file': { type: 'string' }, ...JSON_OPTION },
  positionals: [2, 3],
  optionHelp: {
    '--new-passphrase-file FILE': `key add/passwd: the new passphrase, one trailing newline stripped (else ${NEW_VAR}, else asked twice on a terminal)`,
    '--json': 'print the result as JSON',
  },
  examples: [
    'containerarchive key list /backups/my-service',
    'containerarchive key add /backups/my-service --new-passphrase-file ~/.ca-second',
    'containerarchive key remove /backups/my-service 3f2a9c1e',
    'containerarchive key passwd /backups/my-service',
  ],
  run: cmdKey,
};
