'use strict';
// The `containerarchive` operator CLI. Arguments are parsed with Node's
// util.parseArgs; every failure ends in one line on stderr and an exit code
// (cli/errors.js): 0 success, 1 a problem found, 2 bad usage, 10-12 as restic,
// 130/143 interrupted.

const { parseArgs } = require('node:util');

const { ENV_VAR, FILE_VAR, COMMAND_VAR, SOURCES_HINT } = require('./passphrase');
const { BIN, LOCK_WAIT_VAR, usageError, oneLine, q, parseDuration } = require('./common');
const { explain, EXIT } = require('./errors');

// Each command lives in cli/commands/<name>.js as { usage, summary, options, positionals, run }.
const COMMANDS = Object.fromEntries(
  ['init', 'backup', 'snapshots', 'restore', 'ls', 'copy', 'verify', 'prune', 'forget', 'repair', 'reindex', 'unlock', 'stats', 'key'].map((name) => [
    name,
    require(`./commands/${name}`),
  ]),
);


/** `--range -500`: a string option's value may be a negative number, which parseArgs takes for an option. */
function withNegativeValues(args, options) {
  const out = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : null;
    if (name && options[name] && options[name].type === 'string' && /^-\d+$/.test(args[i + 1] ?? '')) {
      out.push(`${args[i]}=${args[i + 1]}`);
      i++;
    } else out.push(args[i]);
  }
  return out;
}
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
    '',
    'Every command also takes: -q/--quiet (nothing printed on success), -v/--verbose (per-item detail),',
    '  --no-progress, --lock-wait DURATION, --passphrase-file FILE, --cache-dir DIR, --no-cache, -h/--help.',
    '',
    'Off-site repositories: give s3://bucket/prefix wherever a repository path goes. Connection settings come',
    '  from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION and AWS_ENDPOINT_URL',
    '  (e.g. http://127.0.0.1:3900 for MinIO or Garage).',
    '',
    `Waiting for a lock: --lock-wait 10m (any command), or set ${LOCK_WAIT_VAR}; by default a locked repository fails at once.`,
    '',
    'Exit codes: 0 success, 1 the operation found a problem (or the filesystem failed), 2 bad usage or input,',
    '  10 no repository at the path, 11 locked by another process, 12 wrong or missing passphrase,',
    '  130 / 143 interrupted by SIGINT (Ctrl-C) / SIGTERM: the operation stopped cleanly and removed its lock.',
    '',
  ];
  return lines.join('\n');
}

/** Options every command takes, for each command's --help. */
const GLOBAL_HELP = {
  '-q, --quiet': 'print nothing on success (errors still go to stderr)',
  '-v, --verbose': 'per-item detail',
  '--no-progress': 'no progress bar, even on a terminal',
  '--lock-wait D': `wait up to D (30s, 10m, 1h) for another process's lock; default: fail at once (${LOCK_WAIT_VAR})`,
  '--cache-dir DIR': 's3:// repositories: keep the local metadata cache in DIR (default: the OS cache directory)',
  '--no-cache': 's3:// repositories: no local metadata cache (every index and manifest is fetched)',
  '--passphrase-file FILE': `the passphrase of an encrypted repository (or ${ENV_VAR}, ${FILE_VAR}, ${COMMAND_VAR})`,
  '-h, --help': 'this help',
};

function optionLines(help) {
  const width = Math.max(...Object.keys(help).map((k) => k.length));
  return Object.entries(help).map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`);
}

function commandHelp(name) {
  const c = COMMANDS[name];
  const lines = [`Usage: ${BIN} ${c.usage}`, '', `${c.summary[0].toUpperCase()}${c.summary.slice(1)}.`, ''];
  if (c.optionHelp && Object.keys(c.optionHelp).length > 0) lines.push('Options:', ...optionLines(c.optionHelp), '');
  lines.push('Options of every command:', ...optionLines(GLOBAL_HELP), '');
  if (c.examples && c.examples.length > 0) lines.push(c.examples.length === 1 ? 'Example:' : 'Examples:', ...c.examples.map((e) => `  ${e}`), '');
  return `${lines.join('\n')}`;
}

// ---------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------

/** Options every command takes; they reach the command as `io` fields. */
const GLOBAL_OPTIONS = {
  'passphrase-file': { type: 'string' },
  'lock-wait': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v' },
  'no-progress': { type: 'boolean' },
  'cache-dir': { type: 'string' },
  'no-cache': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

/** Swallows output: what --quiet gives a command instead of stdout. */
const SILENT = { write: () => true, isTTY: false };

/** Node's parser text ("Unknown option '--x'. To specify a positional…") in our words. */
function parseFailure(err, command, spec) {
  const option = /'(-[^' ]*)/.exec(err.message)?.[1] ?? '';
  const help = `see: ${BIN} ${command} --help`;
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return usageError(`${command}: unknown option ${option}; ${help}`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return usageError(
        /argument missing/.test(err.message)
          ? `${command}: ${option} needs a value; ${help}`
          : `${command}: ${option} takes no value; ${help}`,
      );
    default:
      return usageError(`${command}: ${oneLine(err.message)}; usage: ${BIN} ${spec.usage}`);
  }
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
    const options = { ...spec.options, ...GLOBAL_OPTIONS };
    parsed = parseArgs({ args: withNegativeValues(rest, options), options, allowPositionals: true, strict: true });
  } catch (err) {
    throw parseFailure(err, command, spec);
  }
  if (parsed.values.help) {
    io.stdout.write(commandHelp(command));
    return 0;
  }
  const { positionals } = parsed;
  const [min, max] = spec.positionals;
  if (positionals.length < min) {
    const missing = spec.usage.split(' ')[positionals.length + 1];
    throw usageError(`${command}: missing ${missing}; usage: ${BIN} ${spec.usage}`);
  }
  if (positionals.length > max) {
    throw usageError(`${command}: unexpected argument ${q(positionals[max])}; usage: ${BIN} ${spec.usage}`);
  }
  ctx.repo = positionals[0];
  const passphraseFile = parsed.values['passphrase-file'];
  if (passphraseFile === '') throw usageError('--passphrase-file needs a file name');
  const lockWait = parsed.values['lock-wait'] ?? (io.env[LOCK_WAIT_VAR] || undefined);
  const lockWaitMs = lockWait === undefined ? undefined : parseDuration(lockWait, parsed.values['lock-wait'] === undefined ? LOCK_WAIT_VAR : '--lock-wait');
  const { quiet = false, verbose = false } = parsed.values;
  if (quiet && verbose) throw usageError(`${command}: --quiet and --verbose contradict each other; give one`);
  const noProgress = quiet || Boolean(parsed.values['no-progress']);
  // --quiet: nothing on stdout on success, unless it is the data (restore) or JSON asked for; errors still reach stderr.
  const stdout = quiet && !parsed.values.json && command !== 'restore' ? SILENT : io.stdout;
  const cacheDir = parsed.values['cache-dir'];
  if (cacheDir === '') throw usageError('--cache-dir needs a directory');
  const noCache = Boolean(parsed.values['no-cache']);
  if (noCache && cacheDir !== undefined) throw usageError(`${command}: --cache-dir and --no-cache contradict each other; give one`);
  const commandIo = { ...io, stdout, passphraseFile, lockWaitMs, quiet, verbose, noProgress, cacheDir, noCache };
  return spec.run({ values: parsed.values, positionals, io: commandIo, ctx });
}

/** After SIGINT/SIGTERM stopped the operation: one line, and 130 or 143 (128 + the signal's number). */
function interrupted(io, ctx) {
  const signal = io.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
  const what = ctx.command ? `${ctx.command} ` : '';
  io.stderr.write(`${BIN}: ${what}interrupted (${signal}); it stopped at a safe point, kept nothing partial and removed its lock\n`);
  return signal === 'SIGTERM' ? EXIT.SIGTERM : EXIT.SIGINT;
}

/**
 * Runs the CLI; resolves to the exit code. Never rejects. `io.signal` (an
 * AbortSignal; bin/containerarchive.js fires it on SIGINT/SIGTERM) cancels
 * the running operation.
 */
async function run(argv, io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }) {
  const ctx = { command: undefined, repo: undefined };
  try {
    const code = await dispatch(argv, io, ctx);
    return typeof code === 'number' ? code : 0;
  } catch (err) {
    if (io.signal && io.signal.aborted) return interrupted(io, ctx);
    const { exitCode, message } = explain(err, ctx);
    io.stderr.write(`${BIN}: ${oneLine(message)}\n`);
    if (io.env.CONTAINERARCHIVE_DEBUG && err && err.stack) io.stderr.write(`${err.stack}\n`);
    return exitCode;
  }
}

module.exports = { run, explain, COMMANDS };
