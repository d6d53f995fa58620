'use strict';

// What the CLI prints: --quiet for cron (nothing on success), --verbose per item,
// --no-progress, and JSON progress lines on stderr with --json.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { tmpFor, textishBytes, sha256, KiB } = require('./helpers');
const { Progress } = require('../cli/progress');
const { cli, expectUsage, expectFailure, EXIT, ok, snapshotsJson } = require('./cli-helpers');

describe('CLI: output modes', () => {
  it('--quiet prints nothing on success (restore still writes its data), and errors still reach stderr', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    const data = textishBytes(256 * KiB, 3);
    for (const [args, input] of [
      [['init', repo, '-q'], undefined],
      [['backup', repo, '-', '--quiet', '--tag', 'a=b'], data],
      [['verify', repo, '--quiet', '--level', 'full'], undefined],
      [['stats', repo, '-q'], undefined],
      [['snapshots', repo, '-q'], undefined],
      [['prune', repo, '--keep-last', '1', '-q'], undefined],
    ]) {
      const r = ok(cli(args, { input }), args.join(' '));
      assert.equal(r.out, '', `${args[0]} --quiet: nothing on stdout`);
      assert.equal(r.stderr, '', `${args[0]} --quiet: nothing on stderr`);
    }
    const restored = ok(cli(['restore', repo, 'latest', '--quiet']), 'restore --quiet');
    assert.equal(sha256(restored.stdout), sha256(data), 'the data still reaches stdout');
    assert.equal(restored.stderr, '', 'no summary line');
    // --json is asked for explicitly, so --quiet keeps it.
    assert.equal(JSON.parse(ok(cli(['snapshots', repo, '--json', '-q']), 'snapshots --json -q').out).length, 1);
    expectFailure(cli(['verify', path.join(dir, 'nothing'), '-q']), EXIT.NO_REPOSITORY, [/no repository/], 'an error with --quiet');
    expectUsage(cli(['verify', repo, '-q', '-v']), [/--quiet and --verbose/], 'both');
  });

  it('--verbose shows every item: name, type, size and checksum', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    ok(cli(['init', repo]), 'init');
    const a = path.join(dir, 'a.sql');
    const b = path.join(dir, 'b.tar');
    fs.writeFileSync(a, textishBytes(100 * KiB, 1));
    fs.writeFileSync(b, textishBytes(50 * KiB, 2));
    const backup = ok(cli(['backup', repo, a, b, '--item', 'db.sql:database-dump', '-v']), 'backup -v');
    assert.match(backup.out, new RegExp(`^  item db\\.sql \\(database-dump\\): 100 KiB, sha256 ${sha256(fs.readFileSync(a))}$`, 'm'));
    assert.match(backup.out, new RegExp(`^  item b\\.tar \\(data\\): 50\\.0 KiB, sha256 ${sha256(fs.readFileSync(b))}$`, 'm'));
    const [snap] = snapshotsJson(repo);
    const list = ok(cli(['snapshots', repo, '--verbose']), 'snapshots --verbose');
    assert.match(list.out, new RegExp(`^${snap.id}`, 'm'), 'the full id');
    assert.match(list.out, /^ {2}db\.sql \(database-dump\) {2}100 KiB {2}sha256 [0-9a-f]{64}$/m);
    const restore = ok(cli(['restore', repo, snap.id, '--item', 'b.tar', '-o', path.join(dir, 'out'), '-v']), 'restore -v');
    assert.match(restore.stderr, /^ {2}item b\.tar \(data\): 50\.0 KiB, sha256 [0-9a-f]{64} verified$/m);
  });

  it('--json on backup and restore streams JSON progress lines on stderr, ending in the totals', (t) => {
    const dir = tmpFor(t);
    const repo = path.join(dir, 'repo');
    ok(cli(['init', repo]), 'init');
    const data = textishBytes(3 * 1024 * KiB, 9);
    const file = path.join(dir, 'dump.sql');
    fs.writeFileSync(file, data);
    const backup = ok(cli(['backup', repo, file, '--json']), 'backup --json');
    const snapshot = JSON.parse(backup.out);
    const lines = backup.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(lines.length >= 1 && lines.every((l) => l.type === 'progress' && l.operation === 'backup'), backup.stderr);
    const last = lines.at(-1);
    assert.equal(last.bytes, data.length, 'the last line has every byte');
    assert.equal(last.total, data.length);
    assert.equal(last.percentage, 100);

    const restore = ok(cli(['restore', repo, snapshot.id, '--json']), 'restore --json');
    assert.equal(sha256(restore.stdout), sha256(data));
    const rl = restore.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(rl.slice(0, -1).map((l) => l.type), rl.slice(0, -1).map(() => 'progress'));
    assert.equal(rl.at(-2).bytes, data.length);
    assert.deepEqual({ ...rl.at(-1), elapsedMs: 0 }, {
      type: 'summary', snapshot: snapshot.id, item: 'dump.sql', bytes: data.length, sha256: sha256(data), output: '-', elapsedMs: 0,
    });
  });

  it('--no-progress (and --quiet) keep a terminal free of the bar', () => {
    const written = [];
    const tty = { isTTY: true, columns: 80, write: (s) => written.push(s) };
    const bar = new Progress('backup', { stream: tty, total: 100 });
    bar.update({ bytes: 50 });
    bar.finish();
    assert.ok(written.length > 0, 'a terminal gets the bar by default (so the check below can fail)');
    written.length = 0;
    const off = new Progress('backup', { stream: tty, total: 100, off: true });
    off.update({ bytes: 50 });
    off.finish();
    assert.deepEqual(written, [], 'off: nothing drawn');
  });

  it('<command> --help describes every option of that command and of all commands, with an example', () => {
    const { COMMANDS } = require('../cli/main');
    for (const [name, spec] of Object.entries(COMMANDS)) {
      const help = ok(cli([name, '--help']), `${name} --help`).out;
      for (const [option, def] of Object.entries(spec.options)) {
        const flag = new RegExp(`^  (-${def.short}, )?--${option}\\b.*\\S{3,}`, 'm');
        assert.match(help, flag, `${name} --help describes --${option}`);
      }
      for (const global of ['--quiet', '--verbose', '--no-progress', '--lock-wait', '--passphrase-file']) {
        assert.match(help, new RegExp(`  (-\\w, )?${global}\\b`), `${name} --help lists ${global}`);
      }
      assert.match(help, /^Examples?:\n  containerarchive /m, `${name} --help has an example`);
    }
  });
});
