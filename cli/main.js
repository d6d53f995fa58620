'use strict';
// The `containerarchive` operator CLI. Arguments are parsed with Node's
// util.parseArgs; every failure ends in one line on stderr and an exit code:
// 0 success, 1 the operation found a problem, 2 bad usage or input.

const { parseArgs } = require('node:util');

const { ENV_VAR, FILE_VAR, COMMAND_VAR, SOURCES_HINT, PromptAborted, PassphraseSourceError } = require('./passphrase');
const { BIN, PACKAGE, CliError, usageError, oneLine, q } = require('./common');

// Each command lives in cli/commands/<name>.js as { usage, summary, options, positionals, run }.
const COMMANDS = Object.fromEntries(
  ['init', 'backup', 'snapshots', 'restore', 'verify', 'prune', 'repair', 'reindex', 'unlock', 'stats'].map((name) => [
    name,
    require(`./commands/${name}`),
  ]),
);

function mainHelp() {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = [
    `Usage: ${BIN} <command> <repo> [options]`,
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    `Run '${BIN} <command> --help' for a command's options.`,
    '',
    'Passphrase of an encrypted repository, from the first of:',
    '  --passphrase-file FILE   (any command) the file\'s content, one trailing newline stripped',
    `  ${ENV_VAR}         the passphrase itself`,
    `  ${FILE_VAR}    a file holding it`,
    `  ${COMMAND_VAR} a shell command that prints it (e.g. 'pass show backup')`,
    '  a no-echo prompt on a terminal. Set at most one of the variables.',
    'Exit codes: 0 success, 1 the operation found a problem, 2 bad usage or input.',
    '',
  ];
  return lines.join('\n');
}

function commandHelp(name) {
  const c = COMMANDS[name];
  return `Usage: ${BIN} ${c.usage}\n\n${c.summary}\n`;
}

// ---------------------------------------------------------------------------
// Dispatch and error reporting
// ---------------------------------------------------------------------------

/** Maps any failure to { exitCode, message } (the message names the fix). */
function explain(err, ctx) {
  if (err instanceof CliError) return { exitCode: err.exitCode, message: err.message };
  if (err instanceof PromptAborted || err instanceof PassphraseSourceError) return { exitCode: err.exitCode, message: err.message };
  const repo = ctx.repo === undefined ? '<repo>' : q(ctx.repo);
  const message = oneLine(err && err.message ? err.message : String(err));
  const code = err && typeof err.code === 'string' ? err.code : '';
  if (err && err.name === 'ArchiveError') {
    switch (code) {
      case 'ERR_REPO_NOT_FOUND':
        return { exitCode: 2, message: `no repository at ${repo}; check the path, or create one with: ${BIN} init ${repo}` };
      case 'ERR_REPO_EXISTS':
        return { exitCode: 2, message: `${repo} already holds a repository; use it as it is, or give init another path` };
      case 'ERR_PASSPHRASE_REQUIRED':
        return { exitCode: 2, message: `${repo} is encrypted; ${SOURCES_HINT}` };
      case 'ERR_WRONG_PASSPHRASE':
        return { exitCode: 2, message: `wrong passphrase for ${repo}; give one of its passphrases (${SOURCES_HINT})` };
      case 'ERR_SNAPSHOT_NOT_FOUND':
        return { exitCode: 2, message: `${message}; list the snapshots with: ${BIN} snapshots ${repo}` };
      case 'ERR_ITEM_NOT_FOUND':
        return { exitCode: 2, message: `${message}; list the items with: ${BIN} snapshots ${repo}` };
      case 'ERR_INVALID_ARGUMENT':
        return { exitCode: 2, message: `${message}; see: ${BIN} ${ctx.command ? `${ctx.command} ` : ''}--help` };
      case 'ERR_UNSUPPORTED_FORMAT':
        return { exitCode: 2, message: `${message}; upgrade ${PACKAGE} to read this repository` };
      case 'ERR_LOCKED':
        return { exitCode: 2, message: `${message}; wait for it to finish, or if that process is gone run: ${BIN} unlock ${repo}` };
      case 'ERR_CORRUPT':
        // Without any config.json the repository cannot be opened, so verify/repair cannot help.
        if (/config\.json is missing and its copy/.test(message)) return { exitCode: 1, message };
        return { exitCode: 1, message: `${message}; run: ${BIN} verify ${repo} --level full, then: ${BIN} repair ${repo}` };
      case 'ERR_INTERNAL':
        return { exitCode: 1, message: `${message}; this is a bug, please report it` };
      default:
        return { exitCode: 1, message };
    }
  }
  if (code === 'EPIPE') return { exitCode: 1, message: 'the output was closed before the restore finished (EPIPE)' };
  if (['ENOENT', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'EEXIST'].includes(code)) {
    return { exitCode: 2, message: `${message}; check the path and its permissions` };
  }
  return { exitCode: 1, message };
}

async function dispatch(argv, io, ctx) {
  const [command, ...rest] = argv;
  if (command === undefined) throw usageError(`missing command; run '${BIN} --help' for the list of commands`);
  if (command === '--help' || command === '-h' || command === 'help') {
    const topic = rest[0];
    if (topic !== undefined && Object.hasOwn(COMMANDS, topic)) io.stdout.write(commandHelp(topic));
    else io.stdout.write(mainHelp());
    return 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    io.stdout.write(`${require('../package.json').version}\n`);
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    throw usageError(`unknown command ${q(command)}; commands: ${Object.keys(COMMANDS).join(', ')} (see '${BIN} --help')`);
  }
  ctx.command = command;
  const spec = COMMANDS[command];
  if (rest.some((a) => a === '--passphrase' || a.startsWith('--passphrase='))) {
    throw usageError(`the passphrase is never taken from the command line, where other users can read it; ${SOURCES_HINT} (or type it when prompted on a terminal)`);
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...spec.options, 'passphrase-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw usageError(`${command}: ${oneLine(err.message)}; usage: ${BIN} ${spec.usage}`);
  }
  if (parsed.values.help) {
    io.stdout.write(commandHelp(command));
    return 0;
  }
  const { positionals } = parsed;
  const [min, max] = spec.positionals;
  if (positionals.length < min) {
    const missing = positionals.length === 0 ? '<repo>' : spec.usage.split(' ')[positionals.length + 1];
    throw usageError(`${command}: missing ${missing}; usage: ${BIN} ${spec.usage}`);
  }
  if (positionals.length > max) {
    throw usageError(`${command}: unexpected argument ${q(positionals[max])}; usage: ${BIN} ${spec.usage}`);
  }
  ctx.repo = positionals[0];
  const passphraseFile = parsed.values['passphrase-file'];
  if (passphraseFile === '') throw usageError('--passphrase-file needs a file name');
  return spec.run({ values: parsed.values, positionals, io: { ...io, passphraseFile }, ctx });
}

/** Runs the CLI; resolves to the exit code. Never rejects. */
async function run(argv, io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }) {
  const ctx = { command: undefined, repo: undefined };
  try {
    const code = await dispatch(argv, io, ctx);
    return typeof code === 'number' ? code : 0;
  } catch (err) {
    const { exitCode, message } = explain(err, ctx);
    io.stderr.write(`${BIN}: ${oneLine(message)}\n`);
    if (io.env.CONTAINERARCHIVE_DEBUG && err && err.stack) io.stderr.write(`${err.stack}\n`);
    return exitCode;
  }
}

module.exports = { run, explain, COMMANDS };
