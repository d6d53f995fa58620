'use strict';

// Issue 13 on the command line: `containerarchive ls` (ls -l lines, --json NDJSON, a path
// prefix, --item), `restore --file PATH -o out`, `restore --include GLOB > part.tar`, exit codes.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { KiB, MiB, makeTmp, removeTmp, randomBytes, assertSameBytes, loadPackage } = require('./helpers');
const { cli, ok, expectUsage, expectExit, baseEnv } = require('./cli-helpers');
const { run, norm, writeTree, listTree, listAll, parseTar } = require('./tar-helpers');

const { ContainerArchive } = loadPackage();

const lines = (text) => text.split('\n').filter((l) => l.length > 0);
const env = baseEnv({ TZ: 'UTC' });

function modeString(type, mode) {
  const letter = { file: '-', dir: 'd', symlink: 'l', hardlink: '[-h]', chardev: 'c', blockdev: 'b', fifo: 'p' }[type];
  const bits = 'rwxrwxrwx'.split('').map((c, i) => (mode & (0o400 >> i) ? c : '-')).join('');
  return `${letter}${bits}`;
}

describe('CLI ls and member restores', () => {
  let dir;
  let repoPath;
  let snapId;
  let multiId;
  let files;
  let api;
  const tarFile = () => path.join(dir, 'vol.tar');

  before(async () => {
    dir = makeTmp();
    repoPath = path.join(dir, 'repo');
    const root = path.join(dir, 'tree');
    files = {
      'app/config.yml': Buffer.from('port: 8080\n'),
      'app/data/one.bin': randomBytes(2 * MiB + 3, 61),
      'app/data/two.bin': randomBytes(10 * KiB, 62),
      'app/data/sub/three.txt': Buffer.from('three\n'),
      'readme.md': Buffer.from('# volume\n'),
    };
    writeTree(root, { ...files, 'app/run.sh': { data: Buffer.from('#!/bin/sh\n'), mode: 0o755 }, 'app/current': { symlink: 'data/one.bin' }, 'app/hard.bin': { hardlink: 'app/data/two.bin' } });
    files['app/run.sh'] = Buffer.from('#!/bin/sh\n');
    // explicit order: app/data/two.bin is stored as the file, app/hard.bin as the hard link to it
    // (a subset holding a hard link without its target would not extract, with tar -x as here)
    run('tar', ['-cf', tarFile(), '-C', root, 'app/data', 'app/config.yml', 'app/run.sh', 'app/current', 'app/hard.bin', 'readme.md']);
    fs.writeFileSync(path.join(dir, 'db.sql'), 'select 1;\n');
    ok(cli(['init', repoPath], { env }), 'init');
    snapId = /^snapshot ([0-9a-f]{64}) /.exec(ok(cli(['backup', repoPath, tarFile(), '--item', 'vol.tar:volume-tar'], { env }), 'backup').out)[1];
    multiId = /^snapshot ([0-9a-f]{64}) /.exec(
      ok(cli(['backup', repoPath, tarFile(), path.join(dir, 'db.sql'), '--item', 'vol.tar:volume-tar', '--item', 'db.sql:database-dump'], { env }), 'backup two items').out,
    )[1];
    const repo = await ContainerArchive.open(repoPath);
    try {
      api = await listAll(repo.listFiles(snapId));
    } finally {
      await repo.close();
    }
  });
  after(() => removeTmp(dir));

  it('ls prints one ls -l style line per member: mode, owner, size, date, path, link target', () => {
    const r = ok(cli(['ls', repoPath, snapId.slice(0, 8)], { env }), 'ls');
    const got = lines(r.out);
    assert.equal(got.length, api.length, r.out);
    for (let i = 0; i < api.length; i++) {
      const e = api[i];
      const d = new Date(Math.floor(e.mtime) * 1000).toISOString();
      const owner = `(?:${e.uid}/${e.gid}|${e.uname || e.uid}/${e.gname || e.gid})`;
      const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const link = e.type === 'symlink' ? ` -> ${esc(e.link)}` : e.type === 'hardlink' ? ` (?:->|link to) ${esc(e.link)}` : '';
      const re = new RegExp(`^${modeString(e.type, e.mode)} +${owner} +${e.size} ${d.slice(0, 10)} ${d.slice(11, 16)} ${esc(e.path)}${link}$`);
      assert.match(got[i], re, `line ${i} for ${e.path}`);
    }
    assert.ok(api.some((e) => e.type === 'symlink') && api.some((e) => e.type === 'hardlink') && api.some((e) => e.type === 'dir'));
    assert.match(r.out, /^-rwxr-xr-x .* app\/run\.sh$/m);
  });

  it('ls --json is NDJSON of the API entries; a path prefix filters; --item picks the item', () => {
    const all = lines(ok(cli(['ls', repoPath, snapId, '--json'], { env }), 'ls --json').out).map((l) => JSON.parse(l));
    assert.deepEqual(all, api, 'one JSON entry per line, as listFiles gives them');
    const sub = lines(ok(cli(['ls', repoPath, snapId, 'app/data/', '--json'], { env }), 'ls prefix').out).map((l) => JSON.parse(l));
    const want = api.filter((e) => norm(e.path).startsWith('app/data/') || norm(e.path) === 'app/data');
    assert.ok(sub.length >= 4);
    assert.deepEqual(sub.map((e) => e.path).filter((p) => norm(p) !== 'app/data'), want.map((e) => e.path).filter((p) => norm(p) !== 'app/data'));
    const plain = lines(ok(cli(['ls', repoPath, snapId, 'readme'], { env }), 'ls prefix, plain').out);
    assert.equal(plain.length, 1);
    assert.match(plain[0], / readme\.md$/);
    assert.equal(ok(cli(['ls', repoPath, snapId, 'nothing/here'], { env }), 'ls prefix matching nothing').out, '');

    const multi = lines(ok(cli(['ls', repoPath, multiId, '--item', 'vol.tar', '--json'], { env }), 'ls --item').out).map((l) => JSON.parse(l));
    assert.deepEqual(multi, api);
    assert.equal(lines(ok(cli(['ls', repoPath, 'latest', '--item', 'vol.tar'], { env }), 'ls latest').out).length, api.length);
  });

  it('ls exit codes: usage 2, unknown snapshot/item 2, an item without a catalog fails with the reason', () => {
    expectUsage(cli(['ls'], { env }), [/missing <repo>/], 'ls without repo');
    expectUsage(cli(['ls', repoPath], { env }), [/missing <snapshot/], 'ls without snapshot');
    expectUsage(cli(['ls', repoPath, snapId, '--bogus'], { env }), [/unknown option --bogus/], 'unknown option');
    expectUsage(cli(['ls', repoPath, 'f'.repeat(64)], { env }), [/snapshot/], 'unknown snapshot');
    expectUsage(cli(['ls', repoPath, multiId, '--item', 'nope'], { env }), [/no item nope/], 'unknown item');
    const r = cli(['ls', repoPath, multiId, '--item', 'db.sql'], { env });
    assert.ok(r.status === 1 || r.status === 2, `no catalog: exit 1 or 2, got ${r.status}: ${r.stderr}`);
    assert.equal(r.out, '');
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, /catalog/i);
    assert.ok(ok(cli(['ls', '--help'], { env }), 'ls --help').out.includes('ls <repo>'));
  });

  it('restore --file writes one member (-o file or stdout); hard links give the target; errors exit 2', () => {
    const out = path.join(dir, 'one.bin');
    ok(cli(['restore', repoPath, snapId, '--file', 'app/data/one.bin', '-o', out], { env }), 'restore --file -o');
    assertSameBytes(fs.readFileSync(out), files['app/data/one.bin'], '--file -o');
    assertSameBytes(ok(cli(['restore', repoPath, snapId, '--file', './app/config.yml'], { env }), '--file to stdout').stdout, files['app/config.yml'], '--file stdout');
    assertSameBytes(ok(cli(['restore', repoPath, multiId, '--item', 'vol.tar', '--file', 'app/hard.bin'], { env }), '--file hardlink').stdout, files['app/data/two.bin'], 'hardlink');
    expectUsage(cli(['restore', repoPath, snapId, '--file', 'app/data/one.bin', '-o', out], { env }), [/exists/, /--force/], 'existing -o');
    expectUsage(cli(['restore', repoPath, snapId, '--file', 'app/missing.txt'], { env }), [/app\/missing\.txt/], 'absent member');
    expectUsage(cli(['restore', repoPath, snapId, '--file', 'app/data'], { env }), [/app\/data/], 'a directory');
    expectUsage(cli(['restore', repoPath, snapId, '--file', 'a', '--range', '0-1'], { env }), [/--range|--file/], '--file with --range');
  });

  it("restore --include 'dir/**' > part.tar extracts exactly those members; --include repeats", () => {
    const x = path.join(dir, 'x');
    for (const [globs, want] of [
      [['app/data/**'], ['app/data/one.bin', 'app/data/two.bin', 'app/data/sub/three.txt']],
      [['app/data/**', 'readme.md'], ['app/data/one.bin', 'app/data/two.bin', 'app/data/sub/three.txt', 'readme.md']],
      [['*.md', 'app/*.yml'], ['app/config.yml', 'readme.md']],
    ]) {
      const r = ok(cli(['restore', repoPath, snapId, ...globs.flatMap((g) => ['--include', g])], { env }), `--include ${globs}`);
      const part = path.join(dir, 'part.tar');
      fs.writeFileSync(part, r.stdout);
      removeTmp(x);
      fs.mkdirSync(x);
      run('tar', ['-xf', part, '-C', x]);
      const got = [...listTree(x)].filter(([, k]) => k !== 'dir').map(([p]) => p).sort();
      assert.deepEqual(got, [...want].sort(), `--include ${globs}`);
      for (const p of want) assertSameBytes(fs.readFileSync(path.join(x, p)), files[p], p);
      assert.ok(parseTar(r.stdout).length >= want.length);
      fs.rmSync(part);
    }
    removeTmp(x);
    // nothing matches: an empty tar (the two end blocks), or a one-line refusal
    const none = cli(['restore', repoPath, snapId, '--include', 'zzz/**'], { env });
    if (none.status === 0) assert.deepEqual(parseTar(none.stdout), [], 'an empty tar');
    else expectUsage(none, [/zzz/], 'include matching nothing');
    const nocat = cli(['restore', repoPath, multiId, '--item', 'db.sql', '--include', 'x/**'], { env });
    assert.ok(nocat.status === 1 || nocat.status === 2, `no catalog: exit 1 or 2, got ${nocat.status}`);
    assert.equal(nocat.out, '');
    assert.match(nocat.stderr, /catalog/i);
  });
});
