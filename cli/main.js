'use strict';
// The `containerarchive` operator CLI. Arguments are parsed with Node's
// util.parseArgs; every failure ends in one line on stderr and an exit code:
// 0 success, 1 the operation found a problem, 2 bad usage or input.

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Transform } = require('node:stream');
const { pipeline } = require('node:stream/promises');

const { Progress, formatBytes, formatElapsed } = require('./progress');
const { ENV_VAR, PromptAborted, promptHidden, canPrompt } = require('./passphrase');
const { startProducer, ProducerFailed } = require('./producer');
const { printPruneGroups } = require('./prune-report');

const BIN = 'containerarchive';
const PACKAGE = '@serve.zone/containerarchive';

class CliError extends Error {
  constructor(exitCode, message) {
    super(message);
    this.exitCode = exitCode;
  }
}

const usageError = (message) => new CliError(2, message);

let library = null;
/** The package itself, loaded on first use so --help works even without the native addon. */
function lib() {
  if (library) return library;
  try {
    library = require('..');
  } catch (err) {
    throw new CliError(
      2,
      `cannot load the native engine (${oneLine(err.message)}); reinstall ${PACKAGE} so npm adds its prebuilt package for ${process.platform}-${process.arch}`,
    );
  }
  return library;
}

function oneLine(text) {
  return String(text).replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** A path or argument as the user would type it back. */
function q(text) {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${String(text).replace(/'/g, "'\\''")}'`;
}

const short = (id) => id.slice(0, 12);

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

const JSON_OPTION = { json: { type: 'boolean' } };

const COMMANDS = {
  init: {
    usage: 'init <repo> [--encrypt] [--compression gzip|zstd|none]',
    summary: 'create a repository (encrypted with --encrypt)',
    options: { encrypt: { type: 'boolean' }, compression: { type: 'string' } },
    positionals: [1, 1],
    run: cmdInit,
  },
  backup: {
    usage: "backup <repo> (<file|->... | --command 'CMD') [--tag k=v]... [--host H] [--item name[:type]]... [--json]",
    summary: "store files (or stdin as -, or a command's output) as one snapshot",
    options: { tag: { type: 'string', multiple: true }, host: { type: 'string' }, item: { type: 'string', multiple: true }, command: { type: 'string' }, ...JSON_OPTION },
    positionals: [1, Infinity],
    run: cmdBackup,
  },
  snapshots: {
    usage: 'snapshots <repo> [--tag k=v]... [--host H] [--after DATE] [--before DATE] [--latest N] [--json]',
    summary: 'list snapshots, oldest first',
    options: {
      tag: { type: 'string', multiple: true },
      host: { type: 'string' },
      after: { type: 'string' },
      before: { type: 'string' },
      latest: { type: 'string' },
      ...JSON_OPTION,
    },
    positionals: [1, 1],
    run: cmdSnapshots,
  },
  restore: {
    usage: 'restore <repo> <snapshot|latest> [--tag k=v]... [--host H] [--item name] [-o file|-] [--force]',
    summary: 'write one item of a snapshot to a file or stdout',
    options: {
      item: { type: 'string' },
      output: { type: 'string', short: 'o' },
      force: { type: 'boolean' },
      tag: { type: 'string', multiple: true },
      host: { type: 'string' },
    },
    positionals: [2, 2],
    run: cmdRestore,
  },
  verify: {
    usage: 'verify <repo> [--level quick|standard|full] [--json]',
    summary: 'check the repository (exit 1 when it finds a problem)',
    options: { level: { type: 'string' }, ...JSON_OPTION },
    positionals: [1, 1],
    run: cmdVerify,
  },
  prune: {
    usage:
      'prune <repo> [--keep-last N] [--keep-hourly N] [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] [--keep-within 30d] [--keep-tag k=v]... [--tag k=v]... [--group-by host,KEY|none] [--dry-run] [--json]',
    summary: 'remove snapshots the retention policy does not keep, and their data',
    options: {
      'keep-last': { type: 'string' },
      'keep-hourly': { type: 'string' },
      'keep-daily': { type: 'string' },
      'keep-weekly': { type: 'string' },
      'keep-monthly': { type: 'string' },
      'keep-yearly': { type: 'string' },
      'keep-within': { type: 'string' },
      'keep-tag': { type: 'string', multiple: true },
      tag: { type: 'string', multiple: true },
      'group-by': { type: 'string' },
      'dry-run': { type: 'boolean' },
      ...JSON_OPTION,
    },
    positionals: [1, 1],
    run: cmdPrune,
  },
  repair: {
    usage: 'repair <repo> [--json]',
    summary: 'rebuild what parity and the packs can restore (exit 1 when something is lost)',
    options: { ...JSON_OPTION },
    positionals: [1, 1],
    run: cmdRepair,
  },
  reindex: {
    usage: 'reindex <repo> [--json]',
    summary: 'rebuild the global index from the packs',
    options: { ...JSON_OPTION },
    positionals: [1, 1],
    run: cmdReindex,
  },
  unlock: {
    usage: 'unlock <repo> [--force]',
    summary: 'remove stale locks (every lock with --force)',
    options: { force: { type: 'boolean' } },
    positionals: [1, 1],
    run: cmdUnlock,
  },
  stats: {
    usage: 'stats <repo> [--json]',
    summary: 'snapshots, logical vs unique vs stored bytes, dedup and compression ratios, parity overhead',
    options: { ...JSON_OPTION },
    positionals: [1, 1],
    run: cmdStats,
  },
};

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
    `Passphrase: set ${ENV_VAR}; on a terminal you are prompted (no echo) when it is unset.`,
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
// Parsing helpers
// ---------------------------------------------------------------------------

function parseKeyValues(list, flag) {
  const out = {};
  for (const entry of list || []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw usageError(`${flag} takes key=value, not ${q(entry)}; e.g. ${flag} service=postgres`);
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

function parseCount(value, flag) {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw usageError(`${flag} takes a whole number, not ${q(value)}; e.g. ${flag} 7`);
  }
  return Number(value);
}

/** "name[:type]"; the last ':' separates the type, so names may contain ':'. */
function parseItem(spec) {
  const colon = spec.lastIndexOf(':');
  const name = colon === -1 ? spec : spec.slice(0, colon);
  const type = colon === -1 ? undefined : spec.slice(colon + 1);
  if (name.length === 0 || type === '') throw usageError(`--item takes name or name:type, not ${q(spec)}; e.g. --item database.sql:database-dump`);
  return { name, type };
}

// ---------------------------------------------------------------------------
// Repository access and passphrases
// ---------------------------------------------------------------------------

function envPassphrase(io) {
  const value = io.env[ENV_VAR];
  return value === undefined || value === '' ? undefined : value;
}

async function askPassphrase(io, prompt) {
  const value = await promptHidden(prompt, io.stdin, io.stderr);
  if (value.length === 0) throw usageError(`empty passphrase; type the passphrase, or set ${ENV_VAR}`);
  return value;
}

async function openRepo(repoPath, io) {
  const { ContainerArchive } = lib();
  try {
    return await ContainerArchive.open(repoPath);
  } catch (err) {
    if (err.code !== 'ERR_PASSPHRASE_REQUIRED') throw err;
  }
  const fromEnv = envPassphrase(io);
  if (fromEnv !== undefined) return ContainerArchive.open(repoPath, { passphrase: fromEnv });
  if (!canPrompt(io.stdin)) {
    throw usageError(`${q(repoPath)} is encrypted and there is no terminal to ask on; set ${ENV_VAR} to its passphrase`);
  }
  for (let attempt = 1; ; attempt += 1) {
    const passphrase = await askPassphrase(io, `Passphrase for ${repoPath}: `);
    try {
      return await ContainerArchive.open(repoPath, { passphrase });
    } catch (err) {
      if (err.code !== 'ERR_WRONG_PASSPHRASE' || attempt === 3) throw err;
      io.stderr.write('wrong passphrase, try again\n');
    }
  }
}

/** Opens the repository, runs fn(repo), and always closes it. */
async function withRepo(repoPath, io, fn) {
  const repo = await openRepo(repoPath, io);
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

/** Subscribes to an event when this build of the engine has it (prune:progress is newer). */
function subscribe(repo, event, handler) {
  try {
    return repo.on(event, handler);
  } catch {
    return { unsubscribe() {} };
  }
}

/** --tag and --host as the API's { tags, host } filter. */
function selection(values) {
  const filter = { tags: parseKeyValues(values.tag, '--tag') };
  if (values.host !== undefined) filter.host = values.host;
  return filter;
}

function describeSelection(filter) {
  const parts = Object.entries(filter.tags).map(([k, v]) => `--tag ${q(`${k}=${v}`)}`);
  if (filter.host !== undefined) parts.push(`--host ${q(filter.host)}`);
  return parts.join(' ');
}

/** 'latest', a full id or a unique prefix (8+ digits), narrowed by the filter -> the snapshot. */
async function resolveSnapshot(repo, ref, repoPath, filter) {
  try {
    // Typed ids may be upper case; the API takes them as listed (lower case).
    return await repo.getSnapshot(/^[0-9a-fA-F]+$/.test(ref) ? ref.toLowerCase() : ref, filter);
  } catch (err) {
    if (err.code !== 'ERR_SNAPSHOT_NOT_FOUND') throw err;
    const narrowed = describeSelection(filter);
    if (ref === 'latest' && narrowed === '') {
      throw usageError(`${q(repoPath)} has no snapshots yet; make one with: ${BIN} backup ${q(repoPath)} <file>`);
    }
    const what = ref === 'latest' ? `no snapshot matches ${narrowed}` : `no snapshot matches ${q(ref)}${narrowed ? ` ${narrowed}` : ''}`;
    throw usageError(`${what} in ${q(repoPath)}; list them with: ${BIN} snapshots ${q(repoPath)}`);
  }
}

function formatDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function formatTags(tags) {
  const entries = Object.entries(tags || {});
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

const plural = (n, word, words = `${word}s`) => `${n} ${n === 1 ? word : words}`;

function writeJson(io, value) {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

// ---------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------

async function cmdInit({ values, positionals: [repoPath], io }) {
  const compression = values.compression;
  if (compression !== undefined && !['gzip', 'zstd', 'none'].includes(compression)) {
    throw usageError(`--compression takes gzip, zstd or none, not ${q(compression)}`);
  }
  let passphrase;
  if (values.encrypt && io.env[ENV_VAR] === '') {
    // Likely a variable meant to be filled; never fall back to a prompt or to no encryption.
    throw usageError(`init --encrypt: ${ENV_VAR} is set but empty; set it to the passphrase, or leave out --encrypt for an unencrypted repository`);
  }
  if (values.encrypt) {
    passphrase = envPassphrase(io);
    if (passphrase === undefined) {
      if (!canPrompt(io.stdin)) {
        throw usageError(`init --encrypt needs a passphrase and there is no terminal to ask on; set ${ENV_VAR}`);
      }
      passphrase = await askPassphrase(io, `New passphrase for ${repoPath}: `);
      const again = await askPassphrase(io, 'Repeat the passphrase: ');
      if (again !== passphrase) throw usageError('the two passphrases differ; run init again');
    }
  } else if (envPassphrase(io) !== undefined) {
    io.stderr.write(`${BIN}: note: ${ENV_VAR} is set, but without --encrypt the repository is NOT encrypted\n`);
  }
  const { ContainerArchive } = lib();
  const options = {};
  if (passphrase !== undefined) options.passphrase = passphrase;
  if (compression !== undefined) options.compression = compression;
  const repo = await ContainerArchive.init(repoPath, options);
  await repo.close();
  io.stdout.write(`created repository ${repoPath} (${compression || 'gzip'} compression, ${passphrase !== undefined ? 'encrypted' : 'not encrypted'})\n`);
  return 0;
}

// ---------------------------------------------------------------------------
// backup
// ---------------------------------------------------------------------------

/** Marks the --command input in the backup plan. */
const COMMAND_INPUT = Symbol('command');

async function cmdBackup({ values, positionals: [repoPath, ...files], io }) {
  const tags = parseKeyValues(values.tag, '--tag');
  const specs = (values.item || []).map(parseItem);
  if (values.command !== undefined) {
    if (files.length > 0) throw usageError(`--command replaces the inputs; give either files (or -) or --command, not both`);
    if (values.command.trim() === '') throw usageError("--command needs a command, e.g. --command 'pg_dump mydb'");
  } else if (files.length === 0) {
    throw usageError(`backup: missing <file|->; usage: ${BIN} ${COMMANDS.backup.usage}`);
  }
  const inputs = values.command !== undefined ? [COMMAND_INPUT] : files;
  if (specs.length > inputs.length) {
    throw usageError(`${plural(specs.length, '--item')} for ${plural(inputs.length, 'input')}; give at most one --item per input, in input order`);
  }
  if (inputs.filter((i) => i === '-').length > 1) throw usageError("'-' (stdin) can be given only once");

  let total = 0;
  const names = new Set();
  const plan = inputs.map((input, k) => {
    let size = null;
    if (input === '-') {
      if (io.stdin.isTTY) {
        throw usageError(`stdin is a terminal; pipe the data in, e.g. ${BIN} backup ${q(repoPath)} --command 'pg_dump mydb'`);
      }
    } else if (input !== COMMAND_INPUT) {
      let stat;
      try {
        stat = fs.statSync(input);
        fs.accessSync(input, fs.constants.R_OK);
      } catch (err) {
        throw usageError(`cannot read ${q(input)}: ${err.code === 'ENOENT' ? 'no such file' : oneLine(err.message)}; check the path`);
      }
      if (stat.isDirectory()) {
        throw usageError(`${q(input)} is a directory; back up a tar of it: tar -C ${q(input)} -cf - . | ${BIN} backup ${q(repoPath)} -`);
      }
      if (stat.isFile()) size = stat.size;
    }
    if (size === null) total = null;
    else if (total !== null) total += size;
    const spec = specs[k] || {};
    const fallback = input === '-' ? 'stdin' : input === COMMAND_INPUT ? 'stdout' : path.basename(input);
    const name = spec.name || fallback;
    if (names.has(name)) {
      throw usageError(`two inputs are named ${q(name)}; name them with --item NAME[:TYPE], one per input in order`);
    }
    names.add(name);
    // Streams (stdin, a command's output) that give no data are suspicious; empty files are not.
    return { input, name, type: spec.type, streamed: typeof input !== 'string' || input === '-' };
  });

  return withRepo(repoPath, io, async (repo) => {
    const progress = new Progress('backup', { stream: io.stderr, total });
    const sub = repo.on('ingest:progress', (e) => progress.update({ bytes: e.bytesProcessed, percentage: e.percentage }));
    // Started only now, so a usage error or a locked repository never runs the producer.
    const producer = values.command !== undefined ? startProducer(values.command, io.stderr) : null;
    const streams = plan.map((p) => {
      if (p.input === COMMAND_INPUT) return producer.stream;
      return p.input === '-' ? io.stdin : fs.createReadStream(p.input, { highWaterMark: 1 << 20 });
    });
    let snapshot;
    try {
      snapshot = await repo.ingestMulti(
        plan.map((p, k) => ({ name: p.name, ...(p.type ? { type: p.type } : {}), stream: streams[k] })),
        { tags, ...(values.host !== undefined ? { host: values.host } : {}), ...(producer ? { until: producer.until } : {}) },
      );
    } catch (err) {
      if (err instanceof ProducerFailed) {
        throw new CliError(1, `${err.message}; no snapshot was written`);
      }
      throw err;
    } finally {
      progress.finish();
      sub.unsubscribe();
      if (producer) producer.stop();
      for (const s of streams) if (s !== io.stdin) s.destroy();
    }
    const empty = plan.filter((p, k) => p.streamed && snapshot.items[k].size === 0).map((p) => p.name);
    for (const name of empty) {
      io.stderr.write(
        `${BIN}: warning: ${q(name)} read 0 bytes, so the snapshot holds an empty item; if a producer failed, ` +
          `use --command so a failing producer writes no snapshot\n`,
      );
    }
    if (values.json) {
      writeJson(io, snapshot);
    } else {
      io.stdout.write(
        `snapshot ${snapshot.id} saved: ${plural(snapshot.items.length, 'item')}, ${formatBytes(snapshot.originalSize)} read, ` +
          `${formatBytes(snapshot.storedSize)} added, ${snapshot.newChunks} new / ${snapshot.reusedChunks} reused chunks, ` +
          `in ${formatElapsed(progress.elapsedMs())}${empty.length > 0 ? `; WARNING: empty input (${empty.join(', ')})` : ''}\n`,
      );
    }
    return 0;
  });
}

// ---------------------------------------------------------------------------
// snapshots
// ---------------------------------------------------------------------------

function table(rows, rightAligned = []) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => r.map((cell, c) => {
      if (c === r.length - 1 && !rightAligned.includes(c)) return cell;
      return rightAligned.includes(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]);
    }).join('  ').trimEnd())
    .join('\n');
}

function parseDateFlag(value, flag) {
  if (value === undefined) return undefined;
  if (Number.isNaN(Date.parse(value))) throw usageError(`${flag} takes a date such as 2026-01-31 or 2026-01-31T12:00:00Z, not ${q(value)}`);
  return value;
}

async function cmdSnapshots({ values, positionals: [repoPath], io }) {
  const filter = selection(values);
  const after = parseDateFlag(values.after, '--after');
  const before = parseDateFlag(values.before, '--before');
  const latest = parseCount(values.latest, '--latest');
  if (latest === 0) throw usageError('--latest takes a count of 1 or more; e.g. --latest 5');
  return withRepo(repoPath, io, async (repo) => {
    let list = await repo.listSnapshots({ ...filter, ...(after ? { after } : {}), ...(before ? { before } : {}) });
    if (latest !== undefined) list = list.slice(-latest);
    if (values.json) {
      writeJson(io, list);
      return 0;
    }
    const rows = [['ID', 'DATE (UTC)', 'HOST', 'TAGS', 'ITEMS', 'SIZE']];
    for (const s of list) {
      rows.push([short(s.id), formatDate(s.createdAt), s.host || '-', formatTags(s.tags), s.items.map((i) => i.name).join(','), formatBytes(s.originalSize)]);
    }
    io.stdout.write(`${table(rows, [5])}\n`);
    io.stdout.write(`${plural(list.length, 'snapshot')}\n`);
    return 0;
  });
}

// ---------------------------------------------------------------------------
// restore
// ---------------------------------------------------------------------------

async function cmdRestore({ values, positionals: [repoPath, ref], io }) {
  const filter = selection(values);
  const output = values.output === undefined || values.output === '-' ? null : values.output;
  if (output === null && io.stdout.isTTY) {
    throw usageError(`stdout is a terminal; restore to a file with -o FILE, or redirect: ${BIN} restore ${q(repoPath)} ${q(ref)} > FILE`);
  }
  if (output !== null && !values.force && fs.existsSync(output)) {
    throw usageError(`${q(output)} exists; pass --force to overwrite it, or choose another -o`);
  }
  return withRepo(repoPath, io, async (repo) => {
    const snapshot = await resolveSnapshot(repo, ref, repoPath, filter);
    const itemNames = snapshot.items.map((i) => i.name).join(', ');
    let item;
    if (values.item !== undefined) {
      item = snapshot.items.find((i) => i.name === values.item);
      if (!item) throw usageError(`snapshot ${short(snapshot.id)} has no item ${q(values.item)}; its items: ${itemNames}`);
    } else if (snapshot.items.length === 1) {
      item = snapshot.items[0];
    } else {
      throw usageError(`snapshot ${short(snapshot.id)} has ${snapshot.items.length} items (${itemNames}); choose one with --item NAME`);
    }

    const progress = new Progress('restore', { stream: io.stderr, total: item.size });
    let bytes = 0;
    const counter = new Transform({
      transform(chunk, _encoding, callback) {
        bytes += chunk.length;
        progress.update({ bytes });
        callback(null, chunk);
      },
    });
    const source = await repo.restore(snapshot.id, { item: item.name });
    try {
      if (output === null) {
        await pipeline(source, counter, io.stdout, { end: false });
      } else {
        // Written next to the target and renamed into place, so a failed restore leaves no partial file.
        const tmp = path.join(path.dirname(output), `.${path.basename(output)}.${process.pid}.containerarchive-tmp`);
        try {
          await pipeline(source, counter, fs.createWriteStream(tmp, { flags: 'wx' }));
          fs.renameSync(tmp, output);
        } catch (err) {
          fs.rmSync(tmp, { force: true });
          throw err;
        }
      }
    } finally {
      progress.finish();
    }
    if (bytes !== item.size) {
      throw new CliError(1, `restored ${bytes} bytes of ${q(item.name)}, but snapshot ${short(snapshot.id)} records ${item.size}; run: ${BIN} verify ${q(repoPath)} --level full`);
    }
    io.stderr.write(
      `restored ${item.name} from snapshot ${short(snapshot.id)}: ${formatBytes(bytes)} to ${output === null ? 'stdout' : output} in ${formatElapsed(progress.elapsedMs())}\n`,
    );
    return 0;
  });
}

// ---------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------

const LEVELS = ['quick', 'standard', 'full'];

function issueLine(issue) {
  return `  ${issue.kind}: ${oneLine(issue.error)}`;
}

async function cmdVerify({ values, positionals: [repoPath], io }) {
  const level = values.level === undefined ? 'standard' : values.level;
  if (!LEVELS.includes(level)) throw usageError(`--level takes quick, standard or full, not ${q(level)}`);
  return withRepo(repoPath, io, async (repo) => {
    const progress = new Progress(`verify (${level})`, { stream: io.stderr });
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
        for (const issue of result.errors) io.stdout.write(`${issueLine(issue)}\n`);
        io.stdout.write(`verify (${level}): ${plural(result.errors.length, 'problem')} found (${what}); run: ${BIN} repair ${q(repoPath)}\n`);
      }
    }
    return result.ok ? 0 : 1;
  });
}

// ---------------------------------------------------------------------------
// prune
// ---------------------------------------------------------------------------

/** --group-by host,service -> ['host', 'service']; none -> false. */
function parseGroupBy(value) {
  if (value === 'none') return false;
  const keys = value.split(',').map((k) => k.trim());
  if (keys.some((k) => k.length === 0) || new Set(keys).size !== keys.length) {
    throw usageError(`--group-by takes distinct comma-separated keys (host or tag keys) or none, not ${q(value)}; e.g. --group-by host,service`);
  }
  return keys;
}

async function cmdPrune({ values, positionals: [repoPath], io }) {
  const retention = {};
  const counts = [
    ['keep-last', 'keepLast'],
    ['keep-hourly', 'keepHourly'],
    ['keep-daily', 'keepDays'],
    ['keep-weekly', 'keepWeeks'],
    ['keep-monthly', 'keepMonths'],
    ['keep-yearly', 'keepYears'],
  ];
  for (const [flag, key] of counts) {
    const n = parseCount(values[flag], `--${flag}`);
    if (n !== undefined) retention[key] = n;
  }
  if (values['keep-within'] !== undefined) {
    if (!/^(\d+[ymwdh])+$/.test(values['keep-within'])) {
      throw usageError(`--keep-within takes a duration like 30d, 12h, 2w or 1y6m, not ${q(values['keep-within'])}`);
    }
    retention.keepWithin = values['keep-within'];
  }
  const keepTags = parseKeyValues(values['keep-tag'], '--keep-tag');
  if (Object.keys(keepTags).length > 0) retention.keepTags = keepTags;
  const scope = parseKeyValues(values.tag, '--tag');
  const keepsSomething = Object.values(retention).some((v) => typeof v !== 'number' || v > 0);
  if (!keepsSomething) {
    throw usageError('prune needs at least one keep rule, e.g. --keep-last 7 (a policy that keeps nothing would remove every snapshot)');
  }
  const { ContainerArchive } = lib();
  if (typeof ContainerArchive.prototype.prune !== 'function') {
    throw usageError(`this version of ${PACKAGE} has no prune(); upgrade it`);
  }
  if (Object.keys(scope).length > 0) retention.filter = { tags: scope };
  if (values['group-by'] !== undefined) retention.groupBy = parseGroupBy(values['group-by']);
  const dryRun = Boolean(values['dry-run']);
  return withRepo(repoPath, io, async (repo) => {
    const before = new Map((await repo.listSnapshots()).map((s) => [s.id, s]));
    const progress = new Progress(dryRun ? 'prune (dry run)' : 'prune', { stream: io.stderr });
    const sub = subscribe(repo, 'prune:progress', (e) => progress.update({ bytes: e.bytesProcessed, percentage: e.percentage }));
    let result;
    try {
      result = await repo.prune(retention, dryRun);
    } finally {
      progress.finish();
      sub.unsubscribe();
    }
    if (values.json) {
      writeJson(io, result);
      return 0;
    }
    const describe = (id) => {
      const s = before.get(id);
      return s ? `${short(id)}  ${formatDate(s.createdAt)}  ${formatTags(s.tags)}` : short(id);
    };
    printPruneGroups(io.stdout, result, describe);
    if (dryRun) {
      io.stdout.write(
        `prune (dry run): would keep ${result.keptSnapshots.length} and remove ${plural(result.removedSnapshots.length, 'snapshot')}` +
          ` in ${plural(result.groups.length, 'group')}, ` +
          `delete ${plural(result.removedPacks, 'pack')}, repack ${result.repackedPacks}, free ${formatBytes(result.freedBytes)}; nothing was changed\n`,
      );
    } else {
      io.stdout.write(
        `prune: kept ${result.keptSnapshots.length} and removed ${plural(result.removedSnapshots.length, 'snapshot')}` +
          ` in ${plural(result.groups.length, 'group')}, ` +
          `deleted ${plural(result.removedPacks, 'pack')}, repacked ${result.repackedPacks}, freed ${formatBytes(result.freedBytes)} in ${formatElapsed(progress.elapsedMs())}\n`,
      );
    }
    return 0;
  });
}

// ---------------------------------------------------------------------------
// repair, reindex, unlock
// ---------------------------------------------------------------------------

async function cmdRepair({ values, positionals: [repoPath], io }) {
  return withRepo(repoPath, io, async (repo) => {
    const result = await repo.repair();
    const lost = result.unrecoverable.length > 0 || result.errors.length > 0;
    if (values.json) {
      writeJson(io, result);
      return lost ? 1 : 0;
    }
    for (const issue of result.errors) io.stdout.write(`${issueLine(issue)}\n`);
    for (const q of result.quarantined ?? []) io.stdout.write(`  quarantined: ${q.file} -> ${q.movedTo} (${oneLine(q.reason)})\n`);
    for (const u of result.unrecoverable) {
      const what = u.pack === null ? 'an unreadable snapshot manifest' : `pack ${u.pack}`;
      io.stdout.write(`  unrecoverable: ${what}; snapshots affected: ${u.snapshots.length ? u.snapshots.map(short).join(', ') : 'none'}\n`);
    }
    const summary =
      `${plural(result.packsRepaired, 'pack')} repaired, ${plural(result.parityRewritten, 'parity group')} rewritten, ` +
      `${plural(result.snapshotsRepaired, 'snapshot manifest')} restored, ` +
      `index ${result.indexRebuilt ? 'rebuilt' : 'unchanged'}, ${plural(result.locksRemoved, 'stale lock')} removed`;
    if (lost) {
      io.stdout.write(`repair: ${summary}; ${plural(result.unrecoverable.length, 'unrecoverable pack')}, ${plural(result.errors.length, 'unfixed problem')}\n`);
      return 1;
    }
    io.stdout.write(`repair: ${summary}\n`);
    return 0;
  });
}

async function cmdReindex({ values, positionals: [repoPath], io }) {
  return withRepo(repoPath, io, async (repo) => {
    const result = await repo.reindex();
    if (values.json) writeJson(io, result);
    else io.stdout.write(`reindex: ${plural(result.packs, 'pack')}, ${plural(result.chunks, 'chunk')} indexed\n`);
    return 0;
  });
}

async function cmdUnlock({ values, positionals: [repoPath], io }) {
  return withRepo(repoPath, io, async (repo) => {
    const removed = await repo.unlock({ force: Boolean(values.force) });
    io.stdout.write(`removed ${plural(removed, values.force ? 'lock' : 'stale lock')}\n`);
    return 0;
  });
}

// ---------------------------------------------------------------------------
// stats
// ---------------------------------------------------------------------------

async function cmdStats({ values, positionals: [repoPath], io }) {
  return withRepo(repoPath, io, async (repo) => {
    const stats = await repo.stats();
    if (values.json) {
      writeJson(io, stats);
      return 0;
    }
    const ratio = (r) => (r === null ? '-' : `${r.toFixed(2)}x`);
    const bytes = (n) => `${formatBytes(n)} (${n})`;
    const u = stats.uniqueChunks;
    const rows = [
      ['snapshots', String(stats.snapshots)],
      ['logical bytes', `${bytes(stats.logicalBytes)}, the sum of every snapshot's items`],
      ['unique chunks', `${u.count}: ${formatBytes(u.rawBytes)} raw, ${formatBytes(u.storedBytes)} stored`],
      ['unreferenced chunks', `${stats.unreferencedChunks.count}: ${formatBytes(stats.unreferencedChunks.storedBytes)} stored (prune reclaims them)`],
      ['pack bytes on disk', `${formatBytes(stats.packs.bytes)} in ${plural(stats.packs.files, 'pack')}`],
      ['parity bytes on disk', `${formatBytes(stats.parity.bytes)} in ${plural(stats.parity.files, 'file')}`],
      ['repository on disk', formatBytes(stats.repositoryBytes)],
      ['dedup ratio', `${ratio(stats.dedupRatio)} (logical / unique raw)`],
      ['compression ratio', `${ratio(stats.compressionRatio)} (unique raw / unique stored)`],
      ['parity overhead', stats.parityOverhead === null ? '-' : `${(stats.parityOverhead * 100).toFixed(1)}% (parity / pack bytes)`],
    ];
    if (stats.missingChunks > 0) rows.push(['missing chunks', `${stats.missingChunks}; run: ${BIN} verify ${q(repoPath)}`]);
    io.stdout.write(`${table(rows.map(([k, v]) => [`${k}:`, v]))}\n`);
    return 0;
  });
}

// ---------------------------------------------------------------------------
// Dispatch and error reporting
// ---------------------------------------------------------------------------

/** Maps any failure to { exitCode, message } (the message names the fix). */
function explain(err, ctx) {
  if (err instanceof CliError) return { exitCode: err.exitCode, message: err.message };
  if (err instanceof PromptAborted) return { exitCode: err.exitCode, message: err.message };
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
        return { exitCode: 2, message: `${repo} is encrypted; set ${ENV_VAR} to its passphrase` };
      case 'ERR_WRONG_PASSPHRASE':
        return { exitCode: 2, message: `wrong passphrase for ${repo}; set ${ENV_VAR} to the passphrase it was created with` };
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
    throw usageError(`the passphrase is never taken from the command line; set ${ENV_VAR} (or type it when prompted on a terminal)`);
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...spec.options, help: { type: 'boolean', short: 'h' } },
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
  return spec.run({ values: parsed.values, positionals, io, ctx });
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
