'use strict';
// What every CLI command shares: errors, argument parsing, opening a repository
// (with its passphrase), tables and JSON output.

const { inCliWords } = require('./words');
const { ENV_VAR, SOURCES_HINT, PromptAborted, promptHidden, canPrompt, passphraseFromSources } = require('./passphrase');

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

const JSON_OPTION = { json: { type: 'boolean' } };

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

const LOCK_WAIT_VAR = 'CONTAINERARCHIVE_LOCK_WAIT';
const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration such as 30s, 10m, 1h30m or 0 (restic's --retry-lock) -> milliseconds. */
function parseDuration(value, flag) {
  const text = String(value).trim();
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h)/g)];
  const bad = () => usageError(`${flag} takes a duration such as 30s, 10m or 1h30m, not ${q(text)}`);
  if (text === '0') return 0;
  if (parts.length === 0 || parts.map((m) => m[0]).join('') !== text) throw bad();
  const ms = parts.reduce((sum, [, n, unit]) => sum + Number(n) * DURATION_UNITS[unit], 0);
  // The engine takes a u32 of milliseconds: about 49 days.
  if (!Number.isSafeInteger(ms) || ms > 0xffffffff) throw usageError(`${flag} ${text} is too long; at most 1000h`);
  return ms;
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
async function askPassphrase(io, prompt) {
  const value = await promptHidden(prompt, io.stdin, io.stderr);
  if (value.length === 0) throw passphraseError(`empty passphrase; type the passphrase, or ${SOURCES_HINT}`);
  return value;
}

/** Wrong or missing passphrase: restic's exit code 12. */
const passphraseError = (message) => new CliError(12, message);

/**
 * How to reach an s3:// repository: the AWS_* variables of the CLI's own
 * environment (`io.env`) and the global --cache-dir / --no-cache options.
 * Empty for a local path.
 */
function whereOptions(repoPath, io) {
  const { isS3Url, ENV } = require('../lib/location.js');
  if (!isS3Url(repoPath)) return {};
  const storage = {};
  for (const [field, names] of Object.entries(ENV)) {
    const value = names.map((n) => io.env[n]).find((v) => typeof v === 'string' && v !== '');
    if (value !== undefined) storage[field] = value;
  }
  const where = { storage };
  if (io.noCache) where.cache = false;
  else if (io.cacheDir !== undefined) where.cacheDir = io.cacheDir;
  return where;
}

async function openRepo(repoPath, io) {
  const { ContainerArchive } = lib();
  // `io.lockWaitMs` is the global --lock-wait option: how long each operation waits for a lock.
  const lock = { ...whereOptions(repoPath, io), ...(io.lockWaitMs === undefined ? {} : { lockTimeoutMs: io.lockWaitMs }) };
  try {
    return await ContainerArchive.open(repoPath, lock);
  } catch (err) {
    if (err.code !== 'ERR_PASSPHRASE_REQUIRED') throw err;
  }
  // `io.passphraseFile` is the global --passphrase-file option.
  const given = passphraseFromSources(io.env, io.passphraseFile);
  if (given !== undefined) {
    try {
      return await ContainerArchive.open(repoPath, { passphrase: given.passphrase, ...lock });
    } catch (err) {
      if (err.code !== 'ERR_WRONG_PASSPHRASE') throw err;
      throw passphraseError(`wrong passphrase: the one from ${given.source} does not unlock ${q(repoPath)}; check it`);
    }
  }
  if (!canPrompt(io.stdin)) {
    throw passphraseError(`${q(repoPath)} is encrypted and there is no terminal to ask on; ${SOURCES_HINT}`);
  }
  for (let attempt = 1; ; attempt += 1) {
    const passphrase = await askPassphrase(io, `Passphrase for ${repoPath}: `);
    try {
      return await ContainerArchive.open(repoPath, { passphrase, ...lock });
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

/** One verify/repair finding, in CLI words (`repo` as the user typed it). */
function issueLine(issue, repo = '<repo>') {
  return `  ${issue.kind}: ${inCliWords(oneLine(issue.error), repo)}`;
}

module.exports = {
  BIN, PACKAGE, ENV_VAR, LOCK_WAIT_VAR, CliError, passphraseError, parseDuration, PromptAborted, usageError, lib, oneLine, q, short, JSON_OPTION,
  parseKeyValues, parseCount, parseItem, askPassphrase, canPrompt, whereOptions, openRepo, withRepo, subscribe,
  selection, describeSelection, resolveSnapshot, formatDate, formatTags, plural, writeJson, table, parseDateFlag, issueLine,
};
