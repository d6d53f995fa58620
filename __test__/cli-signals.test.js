'use strict';

// Ctrl-C and SIGTERM, sent as real signals to the real CLI: the running
// operation stops, removes its own lock, says "interrupted" and exits 130 /
// 143; nothing partial is left and the repository verifies. And
// `verify --subset`.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Readable } = require('node:stream');

const { tmpFor, randomBytes, MiB, loadPackage } = require('./helpers');
const { BIN, EXIT, baseEnv, cli, show, expectExit, expectUsage, ok, snapshotsJson } = require('./cli-helpers');

const { ContainerArchive } = loadPackage();

const locksIn = (dir) => fs.readdirSync(path.join(dir, 'locks'));

/**
 * Spawns the CLI; `started` resolves once `ready(stream, text)` holds for
 * the output seen so far, `exited` with { status, signal, stderr }.
 */
function spawnCli(args, ready) {
  const child = spawn(process.execPath, [BIN, ...args], { env: baseEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let stdoutBytes = 0;
  let resolveStarted;
  const started = new Promise((resolve) => (resolveStarted = resolve));
  const check = () => {
    if (ready({ stderr, stdoutBytes })) resolveStarted();
  };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s) => {
    stderr += s;
    check();
  });
  child.stdout.on('data', (b) => {
    stdoutBytes += b.length;
    check();
    // Read once, then stop: the restore stalls on backpressure, still running.
    if (stdoutBytes > 0) child.stdout.pause();
  });
  child.stdin.on('error', () => {}); // EPIPE once the child has exited
  const stderrEnded = new Promise((resolve) => child.stderr.on('end', resolve));
  const exited = new Promise((resolve) =>
    child.on('exit', (status, signal) => {
      child.stdout.resume(); // drain what a paused reader left
      stderrEnded.then(() => resolve({ status, signal, stderr }));
    }),
  );
  // A run that never gets ready must fail the test, not hang it.
  exited.then(resolveStarted);
  return { child, started, exited };
}

/** A stdin that never ends, as from a producer that is still dumping. */
function endlessInput() {
  let seed = 1;
  return new Readable({
    read() {
      this.push(randomBytes(256 * 1024, seed++));
    },
  });
}

describe('CLI signals', () => {
  it('SIGINT during a backup of an endless stdin: exit 130, "interrupted", no snapshot, no lock, verify clean', { timeout: 120_000 }, async (t) => {
    const repo = path.join(tmpFor(t), 'repo');
    ok(cli(['init', repo]), 'init');
    const run = spawnCli(['backup', repo, '-', '--json'], ({ stderr }) => /"type":"progress".*"bytes":[1-9]/.test(stderr));
    const input = endlessInput();
    input.pipe(run.child.stdin);
    await run.started;
    assert.equal(run.child.exitCode, null, "the backup is still running");
    run.child.kill('SIGINT');
    const result = await run.exited;
    input.destroy();
    assert.equal(result.status, EXIT_SIGINT, `exit 130 after SIGINT, got ${result.status} ${result.signal}\n${result.stderr}`);
    assert.match(result.stderr, /backup interrupted \(SIGINT\)/);
    assert.deepEqual(locksIn(repo), [], 'the process removed its own lock');
    assert.deepEqual(snapshotsJson(repo), [], 'no snapshot was written');
    const verify = cli(['verify', repo, '--level', 'full']);
    ok(verify, 'verify after the interrupted backup');
  });

  it('SIGTERM during a restore to a pipe: exit 143, no lock left', { timeout: 120_000 }, async (t) => {
    const repo = path.join(tmpFor(t), 'repo');
    const archive = await ContainerArchive.init(repo);
    const data = randomBytes(48 * MiB, 11);
    const snap = await archive.ingest(Readable.from([data]));
    await archive.close();
    const run = spawnCli(['restore', repo, snap.id], ({ stdoutBytes }) => stdoutBytes > 0);
    run.child.stdin.end();
    await run.started;
    assert.equal(run.child.exitCode, null, 'the restore is still running (stalled on the unread pipe)');
    run.child.kill('SIGTERM');
    const result = await run.exited;
    assert.equal(result.status, EXIT_SIGTERM, `exit 143 after SIGTERM, got ${result.status} ${result.signal}\n${result.stderr}`);
    assert.match(result.stderr, /restore interrupted \(SIGTERM\)/);
    assert.deepEqual(locksIn(repo), [], 'the process removed its own lock');
    // The repository and its snapshot are intact.
    const restored = cli(['restore', repo, snap.id]);
    expectExit(restored, EXIT.OK, 'a full restore afterwards');
    assert.ok(restored.stdout.equals(data), 'bytes match');
  });
});

const EXIT_SIGINT = 130;
const EXIT_SIGTERM = 143;

describe('verify --subset', () => {
  it('slices 1/2 and 2/2 read every pack once; the JSON report names the slice', async (t) => {
    const repo = path.join(tmpFor(t), 'repo');
    const archive = await ContainerArchive.init(repo, { packTargetSize: 64 * 1024, chunking: { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 } });
    await archive.ingest(Readable.from([randomBytes(2 * MiB, 12)]));
    await archive.close();
    let read = 0;
    let total;
    for (const subset of ['1/2', '2/2']) {
      const r = cli(['verify', repo, '--subset', subset, '--json']);
      ok(r, `verify --subset ${subset}`);
      const report = JSON.parse(r.out);
      assert.equal(report.subset.subset, subset);
      total ??= report.subset.packsTotal;
      read += report.subset.packsRead;
      const text = cli(['verify', repo, '--level', 'full', '--subset', subset]);
      ok(text, 'text form');
      assert.match(text.out, new RegExp(`verify \\(full, subset ${subset}\\): ok, .*${report.subset.packsRead} of ${total} packs read`));
    }
    assert.ok(total > 4, `several packs (${total})`);
    assert.equal(read, total, 'the two slices read every pack once');
    ok(cli(['verify', repo, '--subset', '25%']), 'a percentage');
  });

  it('a subset with another level, or a malformed one, is a usage error', async (t) => {
    const repo = path.join(tmpFor(t), 'repo');
    ok(cli(['init', repo]), 'init');
    expectUsage(cli(['verify', repo, '--level', 'standard', '--subset', '1/7']), [/--subset/, /--level full/], 'subset with standard');
    expectUsage(cli(['verify', repo, '--subset', 'half']), [/--subset/, /1\/7/], 'malformed subset');
    expectUsage(cli(['verify', repo, '--subset', '8/7']), [/subset/], 'slice past the cycle');
    const help = cli(['verify', '--help']);
    ok(help, 'help');
    assert.match(help.out, /--subset N\/M\|P%/);
    assert.ok(!show(help).includes('undefined'));
  });
});
