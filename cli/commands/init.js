'use strict';
// `init`: creates a repository, encrypted with --encrypt.

const { ENV_VAR, FILE_VAR, COMMAND_VAR, SOURCES_HINT, passphraseFromSources } = require('../passphrase');
const { BIN, usageError, passphraseError, lib, q, askPassphrase, canPrompt, whereOptions } = require('../common');

async function cmdInit({ values, positionals: [repoPath], io }) {
  const compression = values.compression;
  if (compression !== undefined && !['gzip', 'zstd', 'none'].includes(compression)) {
    throw usageError(`--compression takes gzip, zstd or none, not ${q(compression)}`);
  }
  let passphrase;
  if (values.encrypt && io.env[ENV_VAR] === '') {
    // Likely a variable meant to be filled; never fall back to a prompt or to no encryption.
    throw passphraseError(`init --encrypt: ${ENV_VAR} is set but empty; set it to the passphrase, or leave out --encrypt for an unencrypted repository`);
  }
  if (values.encrypt) {
    passphrase = passphraseFromSources(io.env, io.passphraseFile)?.passphrase;
    if (passphrase === undefined) {
      if (!canPrompt(io.stdin)) {
        throw passphraseError(`init --encrypt needs a passphrase and there is no terminal to ask on; ${SOURCES_HINT}`);
      }
      passphrase = await askPassphrase(io, `New passphrase for ${repoPath}: `);
      const again = await askPassphrase(io, 'Repeat the passphrase: ');
      if (again !== passphrase) throw passphraseError('the two passphrases differ; run init again');
    }
  } else {
    const given = [io.passphraseFile !== undefined && '--passphrase-file', ...[ENV_VAR, FILE_VAR, COMMAND_VAR].filter((v) => io.env[v])].filter(Boolean);
    if (given.length > 0 && !io.quiet) {
      io.stderr.write(`${BIN}: note: ${given.join(' and ')} ${given.length === 1 ? 'is' : 'are'} set, but without --encrypt the repository is NOT encrypted\n`);
    }
  }
  const { ContainerArchive } = lib();
  const options = whereOptions(repoPath, io);
  if (passphrase !== undefined) options.passphrase = passphrase;
  if (compression !== undefined) options.compression = compression;
  const repo = await ContainerArchive.init(repoPath, options);
  await repo.close();
  io.stdout.write(`created repository ${repoPath} (${compression || 'gzip'} compression, ${passphrase !== undefined ? 'encrypted' : 'not encrypted'})\n`);
  return 0;
}

module.exports = {
  usage: 'init <repo> [--encrypt] [--compression gzip|zstd|none]',
  summary: 'create a repository (encrypted with --encrypt)',
  options: { encrypt: { type: 'boolean' }, compression: { type: 'string' } },
  positionals: [1, 1],
  optionHelp: {
    '--encrypt': 'encrypt with AES-256-GCM under a passphrase (see the passphrase sources in --help); default: not encrypted',
    '--compression ALG': 'gzip (default), zstd or none',
  },
  examples: [
    'containerarchive init /backups/my-service --encrypt --compression zstd',
    'AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... containerarchive init s3://my-bucket/my-service --encrypt',
  ],
  run: cmdInit,
};
