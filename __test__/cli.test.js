'use strict';

// The `containerarchive` CLI, spawned the way a user runs it
// (`node bin/containerarchive.js ...`, stdin/stdout/stderr are pipes, no TTY).
// Exit codes: 0 success, 1 the operation found a problem, 2 bad usage or input.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { PassThrough } = require('node:stream');

const { tmpFor, randomBytes, textishBytes, sha256, KiB, MiB, loadPackage } = require('./helpers');
const { Progress, formatBytes } = require('../cli/progress');
const { promptHidden } = require('../cli/passphrase');

const { BIN, ENV_VAR, EXIT, baseEnv, cli, expectExit, expectUsage, expectFailure, ok, snapshotsJson } = require('./cli-helpers');

const lines = (text) => text.split('\n').filter((l) => l.length > 0);

describe('CLI: usage errors exit 2 with one line naming the fix', () => {
  it('--help and --version exit 0', () => {
    const help = ok(cli(['--help']), '--help');
    for (const c of ['init', 'backup', 'snapshots', 'restore', 'verify', 'prune', 'repair', 'reindex', 'unlock', 'stats']) {
      assert.match(help.out, new RegExp(`^  ${c} `, 'm'), `--help lists ${c}`);
    }
    assert.match(help.out, /CONTAINERARCHIVE_PASSPHRASE/);
    assert.match(help.out, /Exit codes: 0 .*1 .*2 /);
    assert.match(ok(cli(['backup', '--help']), 'backup --help').out, /^Usage: containerarchive backup <repo> \(<file\|->\.\.\. \| --command 'CMD'\)/);
    assert.equal(ok(cli(['--version']), '--version').out.trim(), require('../package.json').version);
  });

  it('missing or unknown command, missing arguments, unknown or malformed options', (t) => {
    const dir = tmpFor(t);
    expectUsage(cli([]), [/missing command/, /--help/], 'no command');
    expectUsage(cli(['bakup', dir]), [/unknown command/, /bakup/, /backup/], 'unknown command');
    expectUsage(cli(['verify']), [/missing <repo>/, /usage: containerarchive verify <repo>/], 'verify without repo');
    expectUsage(cli(['backup', dir]), [/missing <file\|->/], 'backup without inputs');
    expectUsage(cli(['restore', dir]), [/missing <snapshot/], 'restore without snapshot');
    expectUsage(cli(['verify', dir, '--level', 'deep']), [/--level takes quick, standard or full/, /deep/], 'bad --level');
    expectUsage(cli(['verify', dir, '--level']), [/^containerarchive: verify: --level needs a value; see: containerarchive verify --help$/], '--level without value');
    expectUsage(cli(['verify', dir, '--json=1']), [/^containerarchive: verify: --json takes no value; see: containerarchive verify --help$/], '--json with a value');
    expectUsage(cli(['snapshots', dir, '--colour']), [/^containerarchive: snapshots: unknown option --colour; see: containerarchive snapshots --help$/], 'unknown option');
    expectUsage(cli(['restore', dir, 'latest', '-x']), [/^containerarchive: restore: unknown option -x; see: containerarchive restore --help$/], 'unknown short option');
    expectUsage(cli(['snapshots', dir, 'extra']), [/unexpected argument extra/], 'extra positional');
    expectUsage(cli(['init', dir, '--compression', 'lz4']), [/--compression takes gzip, zstd or none/], 'bad --compression');
    expectUsage(cli(['backup', dir, '-', '--tag', 'novalue']), [/--tag takes key=value/], 'bad --tag');
    expectUsage(cli(['init', dir, '--passphrase', 'secret']), [/never taken from the command line/, new RegExp(ENV_VAR)], '--passphrase argument');
    expectUsage(cli(['prune', dir]), [/at least one keep rule/, /--keep-last/], 'prune without a rule');
    expectUsage(cli(['prune', dir, '--keep-last', 'seven']), [/--keep-last takes a whole number/], 'prune with a bad number');
    expectUsage(cli(['prune', dir, '--keep-within', '30x']), [/--keep-within takes a duration/], 'prune with a bad duration');
  });

  it('bad input: no repository, no such file, a directory, an unknown snapshot', (t) => {
    const dir = tmpFor(t);
    const missing = path.join(dir, 'nope');
    expectFailure(cli(['snapshots', missing]), EXIT.NO_REPOSITORY, [/no repository at/, /containerarchive init /], 'ERR_REPO_NOT_FOUND');
    expectFailure(cli(['verify', missing]), EXIT.NO_REPOSITORY, [/no repository at/], 'ERR_REPO_NOT_FOUND (verify)');
    const repo = path.join(dir, 'repo');
    ok(cli(['init', repo]), 'init');
    expectUsage(cli(['init', repo]), [/already holds a repository/], 'ERR_REPO_EXISTS');
    expectUsage(cli(['backup', repo, path.join(dir, 'absent.sql')]), [/cannot read/, /no such file/], 'missing input file');
    expectUsage(cli(['backup', repo, dir]), [/is a directory/, /tar /], 'directory input');
    expectUsage(cli(['backup', repo, '-', '-']), [/stdin/, /only once/], 'stdin twice');
    expectUsage(cli(['restore', repo, 'latest']), [/no snapshots yet/, /containerarchive backup/], 'restore latest from an empty repo');
    ok(cli(['backup', repo, '-'], { input: 'x' }), 'backup');
    expectUsage(cli(['restore', repo, 'f'.repeat(64)]), [/snapshots /], 'ERR_SNAPSHOT_NOT_FOUND (full id)');
    const id = snapshotsJson(repo)[0].id;
    const other = id[0] === 'a' ? 'b' : 'a';
    expectUsage(cli(['restore', repo, other.repeat(8)]), [/no snapshot matches/, /containerarchive snapshots /], 'no snapshot matches the prefix');
    expectUsage(cli(['restore', repo, id.slice(0, 7)]), [/is not a snapshot id/, /at least 8/], 'a prefix shorter than 8 digits');
    expectUsage(cli(['restore', repo, 'not-hex']), [/is not a snapshot id/], 'malformed snapshot reference');
    expectUsage(cli(['restore', repo, id.slice(0, 8), '--item', 'nope']), [/has no item nope/, /stdin/], 'unknown item');
  });
});

describe('CLI: backup, snapshots, restore', () => {
  it('backs up files (one multi-item snapshot) and stdin, lists both forms, restores byte-identical to stdout', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    const dump = textishBytes(3 * MiB + 123, 11);
    const blob = randomBytes(1 * MiB + 7, 12);
    const piped = textishBytes(2 * MiB + 5, 13);
    fs.writeFileSync(path.join(dir, 'database.sql'), dump);
    fs.writeFileSync(path.join(dir, 'volumes.tar'), blob);

    const init = ok(cli(['init', repo, '--compression', 'zstd']), 'init');
    assert.equal(lines(init.out).length, 1);
    assert.match(init.out, /zstd/);

    const files = ok(
      cli(['backup', repo, path.join(dir, 'database.sql'), path.join(dir, 'volumes.tar'), '--tag', 'service=nextcloud', '--tag', 'kind=full', '--item', 'db.sql:database-dump']),
      'backup files',
    );
    // Not a TTY: quiet, one summary line on stdout, nothing on stderr.
    assert.equal(files.stderr, '', 'no progress output when stderr is not a TTY');
    assert.equal(lines(files.out).length, 1, `one summary line: ${files.out}`);
    assert.match(files.out, /^snapshot [0-9a-f]{64} saved: 2 items, /);

    const stdin = ok(cli(['backup', repo, '-', '--tag', 'service=postgres'], { input: piped }), 'backup stdin');
    assert.equal(stdin.stderr, '');
    assert.equal(lines(stdin.out).length, 1);
    const stdinId = /^snapshot ([0-9a-f]{64}) /.exec(stdin.out)[1];

    const list = snapshotsJson(repo);
    assert.equal(list.length, 2);
    const [multi, single] = list;
    assert.equal(single.id, stdinId);
    assert.deepEqual(multi.tags, { service: 'nextcloud', kind: 'full' });
    assert.deepEqual(multi.items.map((i) => [i.name, i.type, i.size]), [['db.sql', 'database-dump', dump.length], ['volumes.tar', 'data', blob.length]]);
    assert.deepEqual(single.items.map((i) => [i.name, i.size]), [['stdin', piped.length]]);
    assert.deepEqual(snapshotsJson(repo, undefined).map((s) => s.id), list.map((s) => s.id));

    const filtered = JSON.parse(ok(cli(['snapshots', repo, '--json', '--tag', 'service=postgres']), 'snapshots --tag').out);
    assert.deepEqual(filtered.map((s) => s.id), [stdinId]);

    // The table: a header, one row per snapshot (12-char ids), aligned columns, a count.
    const table = lines(ok(cli(['snapshots', repo]), 'snapshots').out);
    assert.equal(table.length, 4, table.join('\n'));
    const [header, row1, row2, count] = table;
    assert.match(header, /^ID\s+DATE \(UTC\)\s+HOST\s+TAGS\s+ITEMS\s+SIZE$/);
    assert.equal(count, '2 snapshots');
    for (const [row, snap] of [[row1, multi], [row2, single]]) {
      assert.ok(row.startsWith(`${snap.id.slice(0, 12)}  `), row);
      for (const column of ['DATE', 'TAGS', 'ITEMS']) {
        const at = header.indexOf(column);
        assert.notEqual(row[at], ' ', `column ${column} starts at ${at} in every row:\n${header}\n${row}`);
        assert.equal(row[at - 1], ' ', `column ${column} is preceded by a space:\n${header}\n${row}`);
      }
      assert.equal(row.length, header.length, 'the right-aligned SIZE column ends where its header does');
    }
    assert.match(row1, /kind=full|service=nextcloud/);
    assert.match(row1, /db\.sql,volumes\.tar/);
    assert.match(row2, /2\.00 MiB$/);

    // Restore to stdout: by unique prefix, by 'latest', with and without -o -.
    const out1 = ok(cli(['restore', repo, stdinId.slice(0, 8)]), 'restore prefix');
    assert.ok(out1.stdout.equals(piped), 'restored stdin snapshot is byte-identical');
    assert.equal(lines(out1.stderr).length, 1, 'one summary line on stderr');
    assert.match(out1.stderr, /^restored stdin from snapshot [0-9a-f]{12}: /);
    const out2 = ok(cli(['restore', repo, 'latest', '-o', '-']), 'restore latest -o -');
    assert.ok(out2.stdout.equals(piped));
    const out3 = ok(cli(['restore', repo, multi.id, '--item', 'db.sql']), 'restore --item');
    assert.equal(sha256(out3.stdout), sha256(dump));
    const out4 = ok(cli(['restore', repo, multi.id.slice(0, 12), '--item', 'volumes.tar']), 'restore second item');
    assert.ok(out4.stdout.equals(blob));
    expectUsage(cli(['restore', repo, multi.id.slice(0, 12)]), [/has 2 items/, /--item/], 'multi-item restore without --item');

    // Restore to a file: refused over an existing file unless --force.
    const target = path.join(dir, 'restored.sql');
    ok(cli(['restore', repo, multi.id, '--item', 'db.sql', '-o', target]), 'restore -o file');
    assert.equal(sha256(fs.readFileSync(target)), sha256(dump));
    expectUsage(cli(['restore', repo, stdinId, '-o', target]), [/exists/, /--force/], 'restore over an existing file');
    ok(cli(['restore', repo, stdinId, '-o', target, '--force']), 'restore --force');
    assert.ok(fs.readFileSync(target).equals(piped));
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('containerarchive-tmp')), [], 'no temp files left behind');

    // -o DIR is a usage error, with or without --force; a missing directory is a filesystem failure (exit 1) naming the user's path.
    for (const force of [[], ['--force']]) {
      expectUsage(cli(['restore', repo, stdinId, '-o', dir, ...force]), [/is a directory/, /give -o a file name/], `restore -o DIR ${force}`);
    }
    const nowhere = path.join(dir, 'no', 'such', 'dir', 'x.sql');
    const r = expectFailure(cli(['restore', repo, stdinId, '-o', nowhere]), EXIT.PROBLEM, [/does not exist/, /no\/such\/dir/], 'restore into a missing directory');
    assert.doesNotMatch(r.stderr, /containerarchive-tmp|ENOENT/, 'the message names the user\'s path, not a temp file');
  });

  it('stats: figures from the index and the disk, true after prune (two identical backups, keep last 1)', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    const data = randomBytes(3 * MiB, 21);
    ok(cli(['init', repo]), 'init');
    ok(cli(['backup', repo, '-'], { input: data }), 'backup 1');
    ok(cli(['backup', repo, '-'], { input: data }), 'backup 2 (all chunks reused)');
    const packBytes = () => {
      const dataDir = path.join(repo, 'packs', 'data');
      return fs.readdirSync(dataDir).filter((f) => f.endsWith('.pack')).reduce((n, f) => n + fs.statSync(path.join(dataDir, f)).size, 0);
    };
    const parityBytes = () => {
      const parityDir = path.join(repo, 'packs', 'parity');
      return fs.readdirSync(parityDir).filter((f) => /\.(par|group)$/.test(f)).reduce((n, f) => n + fs.statSync(path.join(parityDir, f)).size, 0);
    };
    const two = JSON.parse(ok(cli(['stats', repo, '--json']), 'stats --json').out);
    assert.equal(two.snapshots, 2);
    assert.equal(two.logicalBytes, 2 * data.length);
    assert.equal(two.uniqueChunks.rawBytes, data.length, 'random data: every chunk is unique once');
    assert.equal(two.dedupRatio, 2);
    assert.equal(two.packs.bytes, packBytes());
    assert.ok(parityBytes() > 0, 'the repository has parity');
    assert.equal(two.parity.bytes, parityBytes());
    assert.equal(two.parityOverhead, parityBytes() / packBytes());

    // The reproduction: the sums of per-snapshot counters said 0 B stored here.
    ok(cli(['prune', repo, '--keep-last', '1']), 'prune --keep-last 1');
    const one = JSON.parse(ok(cli(['stats', repo, '--json']), 'stats --json after prune').out);
    assert.equal(one.snapshots, 1);
    assert.equal(one.logicalBytes, data.length);
    assert.deepEqual(one.uniqueChunks, two.uniqueChunks, 'the kept snapshot still has all its chunks');
    assert.ok(one.uniqueChunks.storedBytes > 0 && one.uniqueChunks.storedBytes <= packBytes());
    assert.equal(one.packs.bytes, packBytes());
    assert.equal(one.dedupRatio, 1);

    const text = ok(cli(['stats', repo]), 'stats').out;
    assert.match(text, /^snapshots:\s+1$/m);
    assert.match(text, /^logical bytes:\s+3\.00 MiB \(3145728\)/m);
    assert.match(text, /^unique chunks:\s+\d+: 3\.00 MiB raw, [\d.]+ [KM]iB stored$/m);
    assert.match(text, /^dedup ratio:\s+1\.00x /m);
    assert.match(text, /^compression ratio:\s+\d+\.\d\dx /m);
    assert.match(text, /^parity overhead:\s+\d+\.\d% /m);
  });
});

describe('CLI: verify, repair, reindex, unlock (exit 1 when a problem is found)', () => {
  it('verify exits 0 on a healthy repository at every level', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    ok(cli(['init', repo]), 'init');
    ok(cli(['backup', repo, '-'], { input: textishBytes(MiB, 31) }), 'backup');
    for (const level of [undefined, 'quick', 'standard', 'full']) {
      const r = ok(cli(['verify', repo, ...(level ? ['--level', level] : [])]), `verify ${level}`);
      assert.equal(r.stderr, '', 'quiet on a non-TTY');
      assert.equal(lines(r.out).length, 1);
      assert.match(r.out, new RegExp(`^verify \\(${level || 'standard'}\\): ok, 1 snapshot, `));
    }
    const json = JSON.parse(ok(cli(['verify', repo, '--json']), 'verify --json').out);
    assert.equal(json.ok, true);
    assert.match(ok(cli(['repair', repo]), 'repair').out, /^repair: 0 packs repaired/);
    assert.match(ok(cli(['reindex', repo]), 'reindex').out, /^reindex: 1 pack, \d+ chunks? indexed\n$/);
    assert.equal(ok(cli(['unlock', repo]), 'unlock').out, 'removed 0 stale locks\n');
    assert.equal(ok(cli(['unlock', repo, '--force']), 'unlock --force').out, 'removed 0 locks\n');
  });

  it('verify exits 1 on a repository with a deleted pack; repair rebuilds it from parity', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    const data = randomBytes(2 * MiB, 41);
    ok(cli(['init', repo]), 'init');
    ok(cli(['backup', repo, '-'], { input: data }), 'backup');
    const dataDir = path.join(repo, 'packs', 'data');
    const pack = fs.readdirSync(dataDir).find((f) => f.endsWith('.pack'));
    fs.rmSync(path.join(dataDir, pack));

    const bad = cli(['verify', repo]);
    expectExit(bad, 1, 'verify with a deleted pack');
    assert.match(bad.out, /missing-pack/);
    assert.match(lines(bad.out).at(-1), /^verify \(standard\): \d+ problems? found .*; run: containerarchive repair /);
    const badJson = cli(['verify', repo, '--json']);
    expectExit(badJson, 1, 'verify --json with a deleted pack');
    assert.equal(JSON.parse(badJson.out).ok, false);

    const fixed = ok(cli(['repair', repo]), 'repair');
    assert.match(fixed.out, /^repair: 1 pack repaired/);
    ok(cli(['verify', repo, '--level', 'full']), 'verify after repair');
    assert.ok(ok(cli(['restore', repo, 'latest']), 'restore after repair').stdout.equals(data));
  });

  it('repair exits 1 and names the lost pack when parity cannot rebuild it', async (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    // Small packs, so one ingest makes several packs in one RS(20,1) parity group.
    const { ContainerArchive } = loadPackage();
    const archive = await ContainerArchive.init(repo, { packTargetSize: 64 * KiB, chunking: { minSize: 16 * KiB, avgSize: 32 * KiB, maxSize: 64 * KiB } });
    await archive.close();
    ok(cli(['backup', repo, '-'], { input: randomBytes(512 * KiB, 51) }), 'backup');
    const dataDir = path.join(repo, 'packs', 'data');
    const packs = fs.readdirSync(dataDir).filter((f) => f.endsWith('.pack'));
    assert.ok(packs.length >= 2, `expected several packs, got ${packs.length}`);
    for (const p of packs.slice(0, 2)) fs.rmSync(path.join(dataDir, p));

    const r = cli(['repair', repo]);
    expectExit(r, 1, 'repair with two packs lost from one parity group');
    assert.match(r.out, /unrecoverable: pack [0-9a-f]{64}; snapshots affected: [0-9a-f]{12}/);
    assert.match(lines(r.out).at(-1), /^repair: .*unrecoverable pack/);
    expectExit(cli(['verify', repo]), 1, 'verify still finds the loss');
  });
});

describe('CLI: locks', () => {
  it('a live lock makes a conflicting command exit 11 naming --lock-wait and unlock; unlock --force removes it', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    ok(cli(['init', repo]), 'init');
    ok(cli(['backup', repo, '-'], { input: 'locked data' }), 'backup');
    // An exclusive lock held by a live process on this host: this test process.
    const id = 'ab'.repeat(16);
    const now = new Date().toISOString();
    fs.mkdirSync(path.join(repo, 'locks'), { recursive: true });
    fs.writeFileSync(
      path.join(repo, 'locks', `${id}.json`),
      JSON.stringify({ id, exclusive: true, hostname: require('node:os').hostname(), pid: process.pid, createdAt: now, refreshedAt: now }),
    );
    expectFailure(cli(['verify', repo]), EXIT.LOCKED, [/lock/i, /--lock-wait/, /containerarchive unlock /], 'verify against a live exclusive lock');
    assert.equal(ok(cli(['unlock', repo]), 'unlock').out, 'removed 0 stale locks\n', 'a live lock is not stale');
    assert.equal(ok(cli(['unlock', repo, '--force']), 'unlock --force').out, 'removed 1 lock\n');
    ok(cli(['verify', repo]), 'verify after unlock --force');
  });

  it('--lock-wait (or CONTAINERARCHIVE_LOCK_WAIT) waits that long for a lock, then exits 11; a lock released meanwhile lets it run', async (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    ok(cli(['init', repo]), 'init');
    ok(cli(['backup', repo, '-'], { input: 'data' }), 'backup');
    const lockFile = holdLiveLock(repo);
    for (const [args, env, what] of [
      [['--lock-wait', '400ms'], undefined, '--lock-wait 400ms'],
      [[], baseEnv({ CONTAINERARCHIVE_LOCK_WAIT: '400ms' }), 'the variable'],
    ]) {
      const started = Date.now();
      const r = cli(['verify', repo, ...args], { env });
      expectFailure(r, EXIT.LOCKED, [/locked/, /--lock-wait/], what);
      assert.ok(Date.now() - started >= 400, `${what}: it waited for the lock before giving up`);
      assert.doesNotMatch(r.stderr, /\w\(\)|lockTimeoutMs/, `${what}: the message names CLI options and commands only`);
    }
    expectUsage(cli(['verify', repo, '--lock-wait', 'soon']), [/--lock-wait takes a duration/, /soon/], 'a bad duration');
    // Waiting for a long time; the lock goes away while (or before) it waits.
    const waiting = cliAsync(['verify', repo, '--lock-wait', '2m']);
    fs.rmSync(lockFile);
    const r = await waiting;
    assert.equal(r.status, 0, `verify ran once the lock was gone: ${r.stderr}`);
  });
});

describe('CLI: messages in CLI words', () => {
  it('no message names an API call or option: a damaged manifest, no repository, an existing one, a lock', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    ok(cli(['init', repo]), 'init');
    ok(cli(['backup', repo, '-'], { input: 'data' }), 'backup');
    const [snap] = snapshotsJson(repo);
    // Damage both copies of the manifest so nothing can restore it.
    for (const f of [path.join(repo, 'snapshots', snap.id), path.join(repo, 'packs', 'parity', 'snapshots', snap.id)]) {
      fs.writeFileSync(f, Buffer.alloc(fs.statSync(f).size, 0x5a));
    }
    const failures = [
      [cli(['restore', repo, snap.id]), EXIT.PROBLEM, [/damaged/, /containerarchive verify /, /containerarchive repair /]],
      [cli(['snapshots', path.join(dir, 'nothing')]), EXIT.NO_REPOSITORY, [/containerarchive init /]],
      [cli(['init', repo]), EXIT.USAGE, [/already holds a repository/]],
    ];
    holdLiveLock(repo);
    failures.push([cli(['repair', repo]), EXIT.LOCKED, [/containerarchive unlock /]]);
    for (const [r, code, patterns] of failures) {
      expectFailure(r, code, patterns, r.stderr);
      assert.doesNotMatch(r.stderr, /\w\(\)|\{ ?\w+ ?\}|lockTimeoutMs/, 'CLI words only');
    }
  });
});

/** An exclusive lock held by a live process on this host (this test process); returns its path. */
function holdLiveLock(repo) {
  const id = 'cd'.repeat(16);
  const now = new Date().toISOString();
  const file = path.join(repo, 'locks', `${id}.json`);
  fs.writeFileSync(file, JSON.stringify({ id, exclusive: true, hostname: require('node:os').hostname(), pid: process.pid, createdAt: now, refreshedAt: now }));
  return file;
}

/** The CLI as a child that runs while the test goes on; resolves to { status, stderr }. */
function cliAsync(args, env = baseEnv()) {
  const child = require('node:child_process').spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

describe('CLI: passphrase from the environment', () => {
  it('init --encrypt, backup, list and restore with CONTAINERARCHIVE_PASSPHRASE; without it exit 2 naming the variable', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    const env = baseEnv({ [ENV_VAR]: 'correct horse battery staple' });
    const data = textishBytes(MiB + 3, 61);

    expectFailure(cli(['init', repo, '--encrypt']), EXIT.PASSPHRASE, [new RegExp(ENV_VAR)], 'init --encrypt without a passphrase, no TTY');
    assert.ok(!fs.existsSync(path.join(repo, 'config.json')), 'nothing was created');
    const init = ok(cli(['init', repo, '--encrypt'], { env }), 'init --encrypt');
    assert.match(init.out, /encrypted/);
    assert.doesNotMatch(init.out + init.stderr, /correct horse/, 'the passphrase is never printed');
    const config = JSON.parse(fs.readFileSync(path.join(repo, 'config.json'), 'utf8'));
    assert.notEqual(config.encryption, null, 'the repository is encrypted');

    ok(cli(['backup', repo, '-'], { input: data, env }), 'backup with the passphrase');
    // (It fails before reading stdin, so a big input would only get EPIPE in this test's writer.)
    expectFailure(cli(['backup', repo, '-'], { input: 'x' }), EXIT.PASSPHRASE, [/is encrypted/, new RegExp(ENV_VAR)], 'backup without the passphrase');
    expectFailure(cli(['snapshots', repo]), EXIT.PASSPHRASE, [new RegExp(ENV_VAR)], 'snapshots without the passphrase');
    expectFailure(cli(['snapshots', repo], { env: baseEnv({ [ENV_VAR]: 'wrong' }) }), EXIT.PASSPHRASE, [/wrong passphrase/, new RegExp(ENV_VAR)], 'wrong passphrase');
    const list = snapshotsJson(repo, env);
    assert.equal(list.length, 1);
    assert.ok(ok(cli(['restore', repo, list[0].id.slice(0, 10)], { env }), 'restore').stdout.equals(data));
    ok(cli(['verify', repo, '--level', 'full'], { env }), 'verify full');

    // An unencrypted repository opens whatever the variable says (it is only needed for encrypted ones).
    const plain = path.join(dir, 'plain');
    const note = ok(cli(['init', plain], { env }), 'init without --encrypt while the variable is set');
    assert.match(note.out, /not encrypted/);
    assert.match(note.stderr, /NOT encrypted/, 'a note warns that --encrypt was not given');
    ok(cli(['snapshots', plain], { env }), 'snapshots of an unencrypted repo with the variable set');
  });
});

const pruneMissing = typeof loadPackage().ContainerArchive.prototype.prune !== 'function'
  ? 'ContainerArchive.prototype.prune is not implemented in this build'
  : false;

describe('CLI: prune', () => {
  it('--dry-run reports what a policy would remove and changes nothing; then prune removes it', { skip: pruneMissing }, (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    ok(cli(['init', repo]), 'init');
    for (let i = 0; i < 3; i++) ok(cli(['backup', repo, '-', '--tag', `n=${i}`], { input: randomBytes(300 * KiB, 70 + i) }), `backup ${i}`);
    const before = snapshotsJson(repo);
    assert.equal(before.length, 3);
    const treeBefore = fs.readdirSync(path.join(repo, 'snapshots')).sort();

    // Each snapshot has its own tag set, so only one policy for all of them removes any.
    const dry = ok(cli(['prune', repo, '--keep-last', '1', '--group-by', 'none', '--dry-run']), 'prune --dry-run');
    assert.equal(dry.stderr, '', 'quiet on a non-TTY');
    const out = lines(dry.out);
    assert.equal(out.filter((l) => l.startsWith('  keep    ')).length, 1);
    assert.equal(out.filter((l) => l.startsWith('  remove  ')).length, 2);
    assert.ok(out.some((l) => l.startsWith(`  keep    ${before[2].id.slice(0, 12)}`) && /\(last\)$/.test(l)), dry.out);
    assert.match(out.at(-1), /^prune \(dry run\): would keep 1 and remove 2 snapshots in 1 group, .*nothing was changed$/);
    assert.deepEqual(fs.readdirSync(path.join(repo, 'snapshots')).sort(), treeBefore, 'a dry run changes nothing');

    const json = JSON.parse(ok(cli(['prune', repo, '--keep-last', '1', '--keep-tag', 'n=0', '--group-by', 'none', '--dry-run', '--json']), 'prune --dry-run --json').out);
    assert.equal(json.dryRun, true);
    assert.deepEqual(json.keptSnapshots, [before[0].id, before[2].id]);
    assert.deepEqual(json.removedSnapshots, [before[1].id]);
    for (const key of ['removedPacks', 'repackedPacks', 'freedBytes']) assert.equal(typeof json[key], 'number', key);
    assert.equal(snapshotsJson(repo).length, 3);

    const real = ok(cli(['prune', repo, '--keep-last', '1', '--group-by', 'none']), 'prune');
    assert.match(lines(real.out).at(-1), /^prune: kept 1 and removed 2 snapshots in 1 group, /);
    assert.deepEqual(snapshotsJson(repo).map((s) => s.id), [before[2].id]);
    ok(cli(['verify', repo, '--level', 'full']), 'verify after prune');
  });
});

describe('CLI: progress and prompt (terminal behaviour, in-process)', () => {
  function fakeTty(columns = 100) {
    const writes = [];
    return { isTTY: true, columns, write: (s) => writes.push(s), writes };
  }

  it('draws a bar with percentage, rate and ETA on a TTY, and nothing when not a TTY', () => {
    let now = 0;
    const tty = fakeTty();
    const bar = new Progress('backup', { stream: tty, total: 100 * MiB, now: () => now });
    now = 2000;
    bar.update({ bytes: 25 * MiB });
    bar.finish();
    const drawn = tty.writes.join('');
    assert.match(drawn, /\rbackup \[#{5,}-{5,}\]  25%  25\.0 MiB \/ 100 MiB  12\.5 MiB\/s  ETA 0:06/);
    assert.ok(drawn.endsWith('\r\x1b[K'), 'the bar is cleared before the summary line');

    // Unknown total (stdin): bytes, rate and elapsed time, no bar.
    now = 0;
    const open = new Progress('backup', { stream: fakeTty(), now: () => now });
    now = 4000;
    open.update({ bytes: 8 * MiB });
    assert.equal(open.line(100), 'backup 8.00 MiB  2.00 MiB/s  0:04');
    open.finish();

    // A percentage from the engine (verify) drives bar and ETA.
    now = 0;
    const pct = new Progress('verify (full)', { stream: fakeTty(), now: () => now });
    now = 10000;
    pct.update({ bytes: MiB, percentage: 50 });
    assert.match(pct.line(100), / 50% .* ETA 0:10$/);
    pct.finish();

    const pipe = { isTTY: false, write: () => assert.fail('nothing may be written when stderr is not a TTY') };
    const quiet = new Progress('backup', { stream: pipe, total: 10 });
    quiet.update({ bytes: 5 });
    quiet.finish();
    assert.equal(formatBytes(1536), '1.50 KiB');
  });

  it('prompts without echo in raw mode and restores the terminal', async () => {
    const input = new PassThrough();
    const modes = [];
    input.isTTY = true;
    input.isRaw = false;
    input.setRawMode = (on) => { modes.push(on); input.isRaw = on; return input; };
    const output = fakeTty();
    const answer = promptHidden('Passphrase: ', input, output);
    input.write('sec');
    input.write('x\u007fret\u001b[D pass\r');
    assert.equal(await answer, 'secret pass');
    assert.deepEqual(modes, [true, false], 'raw mode on while typing, then restored');
    assert.deepEqual(output.writes, ['Passphrase: ', '\n'], 'nothing typed is echoed');

    const cancelled = promptHidden('Passphrase: ', input, output);
    input.write('abc\u0003');
    await assert.rejects(cancelled, (err) => err.exitCode === 130);
  });
});
