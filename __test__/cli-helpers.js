'use strict';
// Running the `containerarchive` CLI the way a user does (`node bin/containerarchive.js ...`,
// stdin/stdout/stderr are pipes, no TTY) and asserting on its exit code and output.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const { MiB, PKG_DIR } = require('./helpers');

const BIN = path.join(PKG_DIR, 'bin', 'containerarchive.js');
const ENV_VAR = 'CONTAINERARCHIVE_PASSPHRASE';
const PASSPHRASE_VARS = [ENV_VAR, `${ENV_VAR}_FILE`, `${ENV_VAR}_COMMAND`, `CONTAINERARCHIVE_NEW_PASSPHRASE`];

/** The environment a user's shell would give: no passphrase unless the test sets one. */
function baseEnv(extra = {}) {
  const env = { ...process.env };
  for (const name of PASSPHRASE_VARS) delete env[name];
  delete env.NODE_TEST_CONTEXT;
  delete env.CONTAINERARCHIVE_DEBUG;
  return { ...env, ...extra };
}

/** Runs the CLI; stdout is a Buffer (restores are binary), stderr a string. */
function cli(args, { input, env, cwd } = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    input: input === undefined ? '' : input,
    env: env || baseEnv(),
    cwd,
    maxBuffer: 256 * MiB,
    timeout: 60000,
  });
  if (result.error) throw result.error;
  return {
    status: result.status,
    signal: result.signal,
    stdout: result.stdout,
    out: result.stdout.toString('utf8'),
    stderr: result.stderr.toString('utf8'),
  };
}

function show(r) {
  return `exit ${r.status}${r.signal ? ` (signal ${r.signal})` : ''}\n--- stdout ---\n${r.out.slice(0, 4000)}\n--- stderr ---\n${r.stderr}`;
}

function expectExit(r, code, what) {
  assert.equal(r.status, code, `${what}: expected exit ${code}, got ${show(r)}`);
}

/** The CLI's exit codes (README), restic's numbers for 10-12. */
const EXIT = { OK: 0, PROBLEM: 1, USAGE: 2, NO_REPOSITORY: 10, LOCKED: 11, PASSPHRASE: 12 };

/** Exit 2 with exactly one line on stderr that matches every pattern (the fix it names). */
function expectUsage(r, patterns, what) {
  expectFailure(r, EXIT.USAGE, patterns, what);
}

/** Exit `code` with exactly one line on stderr that matches every pattern, and nothing on stdout. */
function expectFailure(r, code, patterns, what) {
  expectExit(r, code, what);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `${what}: a usage error is ONE line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^containerarchive: /, what);
  for (const p of patterns) assert.match(lines[0], p, `${what}: the message must match ${p}`);
  assert.equal(r.out, '', `${what}: nothing on stdout`);
  return r;
}

function ok(r, what) {
  expectExit(r, 0, what);
  return r;
}

function snapshotsJson(repo, env) {
  const r = ok(cli(['snapshots', repo, '--json'], { env }), 'snapshots --json');
  return JSON.parse(r.out);
}

module.exports = { BIN, ENV_VAR, EXIT, baseEnv, cli, show, expectExit, expectUsage, expectFailure, ok, snapshotsJson };
