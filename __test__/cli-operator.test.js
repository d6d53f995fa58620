'use strict';

// Operator safety through the real `containerarchive` binary: prune per
// group, backup --command, empty stdin warnings, restore/snapshots filters,
// init --encrypt with an empty variable. Each "today" reproduction of the
// issue is a regression test.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const { tmpFor, MiB, PKG_DIR } = require('./helpers');

const BIN = path.join(PKG_DIR, 'bin', 'containerarchive.js');
const ENV_VAR = 'CONTAINERARCHIVE_PASSPHRASE';
const T = { timeout: 120000 };
const HOST = require('node:os').hostname(); // snapshots record the machine's name

function cli(args, { input, env = {} } = {}) {
  const base = { ...process.env };
  delete base[ENV_VAR];
  delete base.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input: input === undefined ? '' : input,
    env: { ...base, ...env },
    maxBuffer: 64 * MiB,
    timeout: 60000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, out: r.stdout.toString(), stderr: r.stderr.toString() };
}

function expectExit(r, code, what) {
  assert.equal(r.status, code, `${what}: expected exit ${code}, got ${r.status}\n--- stdout ---\n${r.out}\n--- stderr ---\n${r.stderr}`);
  return r;
}
const ok = (r, what) => expectExit(r, 0, what);
const snapshots = (repo, ...args) => JSON.parse(ok(cli(['snapshots', repo, '--json', ...args]), 'snapshots --json').out);
const lines = (text) => text.split('\n').filter((l) => l.length > 0);

/** postgres x2 and nextcloud x1, like the example. */
function threeServices(t) {
  const repo = path.join(tmpFor(t), 'repo');
  ok(cli(['init', repo]), 'init');
  ok(cli(['backup', repo, '-', '--item', 'database.sql', '--tag', 'service=postgres'], { input: 'pg one' }), 'pg 1');
  ok(cli(['backup', repo, '-', '--item', 'database.sql', '--tag', 'service=nextcloud'], { input: 'nextcloud' }), 'nc');
  ok(cli(['backup', repo, '-', '--item', 'database.sql', '--tag', 'service=postgres'], { input: 'pg two' }), 'pg 2');
  const [pg1, nc, pg2] = snapshots(repo);
  return { repo, pg1, nc, pg2 };
}

describe('CLI: retention per backup source', () => {
  it('prune --keep-daily 1 keeps one snapshot per group and prints the groups', T, (t) => {
    const { repo, pg1, nc, pg2 } = threeServices(t);
    // Today: the dry run removed nextcloud's only snapshot.
    const dry = ok(cli(['prune', repo, '--keep-daily', '1', '--dry-run']), 'prune --dry-run');
    const out = lines(dry.out);
    assert.deepEqual(out.filter((l) => l.startsWith('group ')), [`group host ${HOST}, tags service=nextcloud`, `group host ${HOST}, tags service=postgres`]);
    const at = (prefix) => out.findIndex((l) => l.startsWith(prefix));
    assert.ok(at(`  keep    ${nc.id.slice(0, 12)}`) === 1, dry.out);
    assert.ok(at(`  keep    ${pg2.id.slice(0, 12)}`) > at(`group host ${HOST}, tags service=postgres`), dry.out);
    assert.match(out[at(`  remove  ${pg1.id.slice(0, 12)}`)], /service=postgres$/);
    assert.match(out.at(-1), /would keep 2 and remove 1 snapshot in 2 groups/);

    const json = JSON.parse(ok(cli(['prune', repo, '--keep-daily', '1', '--dry-run', '--json']), '--json').out);
    assert.deepEqual(json.removedSnapshots, [pg1.id]);
    assert.deepEqual(json.groups.map((g) => g.tags.service), ['nextcloud', 'postgres']);

    const whole = JSON.parse(ok(cli(['prune', repo, '--keep-daily', '1', '--group-by', 'none', '--dry-run', '--json']), 'none').out);
    assert.deepEqual(whole.removedSnapshots, [pg1.id, nc.id]);
    const keyed = JSON.parse(ok(cli(['prune', repo, '--keep-last', '1', '--group-by', 'host,service', '--dry-run', '--json']), 'host,service').out);
    assert.deepEqual(keyed.groups.map((g) => [g.host, g.tags]), [[HOST, { service: 'nextcloud' }], [HOST, { service: 'postgres' }]]);
    for (const bad of ['host,,service', 'host,host', '']) {
      const r = expectExit(cli(['prune', repo, '--keep-last', '1', '--group-by', bad]), 2, `--group-by ${bad}`);
      assert.match(r.stderr, /--group-by/);
    }

    const real = ok(cli(['prune', repo, '--keep-daily', '1']), 'prune');
    assert.ok(lines(real.out).includes(`group host ${HOST}, tags service=postgres`), real.out);
    assert.match(real.out, new RegExp(`  removed ${pg1.id.slice(0, 12)}`));
    assert.deepEqual(snapshots(repo).map((s) => s.id), [nc.id, pg2.id]);
  });
});

describe('CLI: a failed producer never becomes a snapshot', () => {
  it('backup --command writes the snapshot only when the command exits 0', T, (t) => {
    const repo = path.join(tmpFor(t), 'repo');
    ok(cli(['init', repo]), 'init');
    const node = JSON.stringify(process.execPath);
    // Today: `pg_dump_fail | backup -` exited 0 with an empty snapshot that became latest.
    const failed = expectExit(
      cli(['backup', repo, '--command', `${node} -e "process.stdout.write('partial'); console.error('pg_dump: connection refused'); process.exit(3)"`, '--item', 'database.sql:database-dump']),
      1,
      'failing command',
    );
    assert.match(failed.stderr, /pg_dump: connection refused/, "the command's stderr is passed through");
    assert.match(failed.stderr, /exited with status 3; no snapshot was written/);
    assert.deepEqual(snapshots(repo), []);
    expectExit(cli(['restore', repo, 'latest']), 2, 'nothing to restore');

    const good = ok(cli(['backup', repo, '--command', `${node} -e "process.stdout.write('CREATE TABLE t();')"`, '--item', 'database.sql:database-dump', '--tag', 'service=postgres']), 'good command');
    assert.match(good.out, /^snapshot [0-9a-f]{64} saved: 1 item, 17 B read/);
    const [snap] = snapshots(repo);
    assert.deepEqual(snap.items.map((i) => [i.name, i.type]), [['database.sql', 'database-dump']]);
    assert.equal(ok(cli(['restore', repo, 'latest', '--item', 'database.sql']), 'restore').out, 'CREATE TABLE t();');

    expectExit(cli(['backup', repo, '-', '--command', 'true']), 2, '--command with an input');
    expectExit(cli(['backup', repo, '--command', ' ']), 2, 'empty --command');
    expectExit(cli(['backup', repo]), 2, 'no input at all');
  });

  it('a stdin backup that read 0 bytes warns on stderr and in the summary', T, (t) => {
    const repo = path.join(tmpFor(t), 'repo');
    ok(cli(['init', repo]), 'init');
    const empty = ok(cli(['backup', repo, '-', '--item', 'database.sql']), 'empty stdin');
    assert.match(empty.stderr, /warning: database\.sql read 0 bytes/);
    assert.match(empty.out, /0 B read.*WARNING: empty input \(database\.sql\)$/m);
    const full = ok(cli(['backup', repo, '-'], { input: 'data' }), 'stdin with data');
    assert.doesNotMatch(full.stderr + full.out, /warning/i);
  });
});

describe('CLI: latest, prefixes and filters', () => {
  it('restore latest --tag restores the right service; snapshots filters', T, (t) => {
    const { repo, pg1, nc, pg2 } = threeServices(t);
    // Today: "Unknown option '--tag'", and `restore latest` gave the newest of any service.
    assert.equal(ok(cli(['restore', repo, 'latest', '--tag', 'service=nextcloud', '--item', 'database.sql']), 'latest nextcloud').out, 'nextcloud');
    assert.equal(ok(cli(['restore', repo, 'latest', '--tag', 'service=postgres']), 'latest postgres').out, 'pg two');
    assert.equal(ok(cli(['restore', repo, 'latest', '--host', HOST]), 'latest host').out, 'pg two');
    const none = expectExit(cli(['restore', repo, 'latest', '--tag', 'service=mysql']), 2, 'no match');
    assert.match(none.stderr, /no snapshot matches --tag service=mysql/);
    expectExit(cli(['restore', repo, 'latest', '--host', 'db1']), 2, 'no such host');
    expectExit(cli(['restore', repo, pg1.id.slice(0, 8), '--tag', 'service=nextcloud']), 2, 'prefix of another service');
    assert.equal(ok(cli(['restore', repo, pg1.id.slice(0, 8), '--tag', 'service=postgres']), 'prefix').out, 'pg one');

    const ids = (...args) => snapshots(repo, ...args).map((s) => s.id);
    assert.deepEqual(ids('--tag', 'service=postgres'), [pg1.id, pg2.id]);
    assert.deepEqual(ids('--host', HOST), [pg1.id, nc.id, pg2.id]);
    assert.deepEqual(ids('--host', 'db1'), []);
    assert.deepEqual(ids('--latest', '2'), [nc.id, pg2.id]);
    assert.deepEqual(ids('--tag', 'service=postgres', '--latest', '1'), [pg2.id]);
    assert.deepEqual(ids('--after', nc.createdAt), [pg2.id], '--after is exclusive');
    assert.deepEqual(ids('--before', nc.createdAt), [pg1.id]);
    assert.deepEqual(ids('--before', '2000-01-01'), []);
    assert.deepEqual(ids('--after', '2000-01-01T00:00:00Z'), [pg1.id, nc.id, pg2.id]);
    const table = ok(cli(['snapshots', repo, '--latest', '1']), 'table').out;
    assert.match(table, new RegExp(`^${pg2.id.slice(0, 12)}  `, 'm'));
    assert.match(table, /^1 snapshot$/m);
    expectExit(cli(['snapshots', repo, '--latest', '0']), 2, '--latest 0');
    expectExit(cli(['snapshots', repo, '--after', 'yesterday-ish']), 2, 'bad --after');
  });
});

describe('CLI: no repository is unencrypted by accident', () => {
  it('init --encrypt with an empty passphrase variable exits 12 and creates nothing', T, (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    const r = expectExit(cli(['init', repo, '--encrypt'], { env: { [ENV_VAR]: '' } }), 12, 'empty variable (12: no passphrase)');
    assert.match(r.stderr, new RegExp(`${ENV_VAR} is set but empty`));
    assert.match(r.stderr, /leave out --encrypt/);
    assert.equal(require('node:fs').existsSync(repo), false);
  });
});
