'use strict';

// Issue 13: tar-aware items. Tars written by GNU tar (gnu, pax, ustar, sparse), bsdtar (when on
// PATH) and Node's `tar` package are ingested as 'volume-tar'; the catalog lists every member as
// an independent reference parser reads it (tar-helpers.parseTar, cross-checked with `tar -t`),
// restoreFile gives what `tar -x` extracts, restoreFiles gives a tar of just the chosen members.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { KiB, MiB, makeTmp, removeTmp, tmpFor, randomBytes, collect, assertSameBytes, rejectsWithCode, loadPackage } = require('./helpers');
const { run, which, norm, parseTar, memberBytes, storedSize, writeTree, listTree, listAll, globRegExp } = require('./tar-helpers');

const { ContainerArchive } = loadPackage();
const nodeTar = require('tar');

const LONG_DIR = `sub/${'d'.repeat(60)}/${'e'.repeat(50)}`; // > 100 chars with the file name
const LONG_FILE = `${LONG_DIR}/${'f'.repeat(40)}.txt`;

/** The common tree: long names, links, modes, sizes around block boundaries. */
function commonTree(root, { longComponent = true } = {}) {
  const spec = {
    'top.txt': Buffer.from('hello catalog\n'),
    'empty.txt': Buffer.alloc(0),
    'block.bin': randomBytes(512, 21),
    'odd.bin': randomBytes(513, 22),
    'sub/deep/a.bin': randomBytes(300 * KiB + 7, 23),
    'sub/deep/f1.bin': randomBytes(2 * MiB + 11, 24),
    'sub/deep/f2.bin': randomBytes(9999, 25),
    'sub/x/f3.bin': randomBytes(1, 26),
    'sub/exec.sh': { data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
    'sub/secret': { data: Buffer.from('s3cret'), mode: 0o600 },
    [LONG_FILE]: randomBytes(4000, 27),
    'links/to-top': { symlink: '../top.txt' },
    'links/hard-f2': { hardlink: 'sub/deep/f2.bin' },
    'emptydir': { dir: true, mode: 0o750 },
  };
  // ustar has no room for a 120-character name or a link target over 100 characters
  if (longComponent) spec[`sub/${'n'.repeat(120)}.dat`] = randomBytes(777, 28);
  if (longComponent) spec['links/long-target'] = { symlink: `../${LONG_FILE}` };
  writeTree(root, spec);
}

/** GNU sparse: 8 MiB with data at 1 MiB and 6 MiB, holes elsewhere; a normal file after it. */
function sparseTree(root) {
  fs.mkdirSync(root, { recursive: true });
  const f = path.join(root, 'sparse.img');
  run('truncate', ['-s', String(8 * MiB), f]);
  fs.writeFileSync(path.join(root, 'chunk'), randomBytes(64 * KiB, 31));
  run('dd', [`if=${path.join(root, 'chunk')}`, `of=${f}`, 'bs=65536', 'seek=16', 'conv=notrunc', 'status=none']);
  run('dd', [`if=${path.join(root, 'chunk')}`, `of=${f}`, 'bs=65536', 'seek=96', 'conv=notrunc', 'status=none']);
  fs.unlinkSync(path.join(root, 'chunk'));
  fs.writeFileSync(path.join(root, 'after.txt'), randomBytes(3000, 32));
}

const TYPE_OF = (m) => m.type;

describe('tar catalogs: formats', () => {
  let dir;
  let repo;
  const repoDir = () => path.join(dir, 'repo');
  before(async () => {
    dir = makeTmp();
    repo = await ContainerArchive.init(repoDir(), { compression: 'zstd' });
  });
  after(async () => {
    if (repo) await repo.close();
    removeTmp(dir);
  });

  /** Ingests `tarFile` as volume-tar and checks the catalog, restoreFile and restoreFiles against it. */
  async function checkTar(t, tarFile, { sparse = false, subsets = true } = {}) {
    const tarBuf = fs.readFileSync(tarFile);
    const ref = parseTar(tarBuf);
    // cross-check the reference parser with GNU tar's own listing
    const names = run('tar', ['-tf', tarFile]).toString('utf8').split('\n').filter(Boolean);
    assert.deepEqual(ref.map((m) => norm(m.path)), names.map(norm), 'reference parser agrees with tar -t');

    const snap = await repo.ingest(fs.createReadStream(tarFile), { items: [{ name: 'vol.tar', type: 'volume-tar' }] });
    const item = snap.items[0];
    assert.equal(item.size, tarBuf.length);
    assert.ok(item.catalog, `a catalog (catalogError: ${item.catalogError})`);
    assert.equal(item.catalog.format, 'tar');
    assert.equal(item.catalog.entries, ref.length, 'catalog entries = members');
    assert.ok(Number.isInteger(item.catalog.size) && item.catalog.size > 0);
    assert.ok(!('catalogError' in item) || item.catalogError == null, 'no catalogError');
    const listed = (await repo.getSnapshot(snap.id)).items[0];
    assert.deepEqual(listed.catalog, item.catalog, 'getSnapshot shows the catalog');
    assert.deepEqual((await repo.listSnapshots()).find((s) => s.id === snap.id).items[0].catalog, item.catalog, 'listSnapshots too');

    // the item itself is byte-exact
    const full = await repo.restore(snap.id).then(collect);
    assertSameBytes(full, tarBuf, 'full restore of the tar item');

    // listFiles: every member, in order, with the reference's fields
    const entries = await listAll(repo.listFiles(snap.id));
    assert.deepEqual(entries.map((e) => norm(e.path)), ref.map((m) => norm(m.path)), 'listFiles paths in archive order');
    for (let i = 0; i < ref.length; i++) {
      const e = entries[i];
      const m = ref[i];
      const what = `member ${m.path}`;
      assert.equal(e.path, m.path, `${what}: path as stored`);
      assert.equal(e.type, m.type, `${what}: type`);
      assert.equal(e.mode & 0o7777, m.mode & 0o7777, `${what}: mode`);
      assert.equal(e.uid, m.uid, `${what}: uid`);
      assert.equal(e.gid, m.gid, `${what}: gid`);
      assert.equal(typeof e.mtime, 'number');
      assert.equal(Math.floor(e.mtime), Math.floor(m.mtime), `${what}: mtime`);
      if (e.uname !== undefined && m.uname) assert.equal(e.uname, m.uname, `${what}: uname`);
      if (e.gname !== undefined && m.gname) assert.equal(e.gname, m.gname, `${what}: gname`);
      assert.equal(e.offset, m.offset, `${what}: data offset`);
      assert.equal(e.header, m.header, `${what}: first header block`);
      if (m.type === 'symlink' || m.type === 'hardlink') assert.equal(e.link, m.link, `${what}: link target`);
      if (m.sparse) {
        assert.equal(e.sparse, true, `${what}: sparse`);
        assert.ok(e.size === m.realSize || e.size === m.size, `${what}: size ${e.size} is the real (${m.realSize}) or stored (${m.size}) size`);
      } else {
        assert.ok(!e.sparse, `${what}: not sparse`);
        if (m.type === 'hardlink') {
          const target = ref.find((r) => norm(r.path) === norm(m.link));
          assert.ok(e.size === 0 || e.size === target.size, `${what}: hardlink size ${e.size} is 0 or the target's`);
        } else if (m.type === 'file') assert.equal(e.size, m.size, `${what}: size`);
      }
      if (m.type === 'file' && !m.sparse) assertSameBytes(tarBuf.subarray(e.offset, e.offset + e.size), tarBuf.subarray(m.offset, m.offset + m.size), `${what}: offset`);
    }

    // restoreFile of every regular member and hardlink = what tar -x extracts from the full restore
    const x = path.join(dir, `x-${path.basename(tarFile)}`);
    fs.mkdirSync(x);
    t.after(() => removeTmp(x));
    const fullFile = path.join(dir, `full-${path.basename(tarFile)}`);
    fs.writeFileSync(fullFile, full);
    t.after(() => fs.rmSync(fullFile, { force: true }));
    run('tar', ['-xf', fullFile, '-C', x]);
    let restored = 0;
    for (const m of ref) {
      if (m.type !== 'file' && m.type !== 'hardlink') continue;
      const want = fs.readFileSync(path.join(x, norm(m.path)));
      if (m.sparse) {
        let got;
        try {
          got = await repo.restoreFile(snap.id, { path: m.path }).then(collect);
        } catch (err) {
          assert.equal(err.code, 'ERR_UNSUPPORTED_FORMAT', `sparse member: ${err.message}`);
          assert.match(err.message, /whole item|restore the (whole|entire|full)/i, 'the message says to restore the whole item');
          continue;
        }
        assertSameBytes(got, want, `sparse member ${m.path} restored exactly`);
        continue;
      }
      assertSameBytes(await repo.restoreFile(snap.id, { path: m.path }).then(collect), want, `restoreFile ${m.path}`);
      restored++;
    }
    assert.ok(restored >= 1);
    if (sparse) assert.ok(ref.some((m) => m.sparse), 'the tar has a GNU sparse member');

    // normalised lookups, wrong kinds, absent members
    const file = ref.find((m) => m.type === 'file' && !m.sparse && m.size > 0);
    const fileBytes = fs.readFileSync(path.join(x, norm(file.path)));
    for (const p of [norm(file.path), `./${norm(file.path)}`, `/${norm(file.path)}`]) {
      assertSameBytes(await repo.restoreFile(snap.id, { item: 'vol.tar', path: p }).then(collect), fileBytes, `restoreFile ${p}`);
    }
    for (const m of ref.filter((r) => r.type === 'dir' || r.type === 'symlink')) {
      await rejectsWithCode(() => repo.restoreFile(snap.id, { path: m.path }), 'ERR_INVALID_ARGUMENT');
    }
    await rejectsWithCode(() => repo.restoreFile(snap.id, { path: 'no/such/member' }), 'ERR_FILE_NOT_FOUND');
    await rejectsWithCode(() => repo.restoreFile(snap.id, { item: 'nope', path: norm(file.path) }), 'ERR_ITEM_NOT_FOUND');

    if (!subsets) return { snap, ref };
    // restoreFiles: by paths, prefix and glob
    const hard = ref.find((m) => m.type === 'hardlink');
    const selections = [
      { opts: { paths: ['top.txt', 'sub/deep/f1.bin', ...(hard ? [hard.link, hard.path].map(norm) : [])] }, pick: (p) => ['top.txt', 'sub/deep/f1.bin', ...(hard ? [hard.link, hard.path].map(norm) : [])].includes(p) },
      { opts: { prefix: 'sub/deep/' }, pick: (p) => p.startsWith('sub/deep/'), optional: (p) => p === 'sub/deep' },
      { opts: { glob: 'sub/**' }, pick: (p) => globRegExp('sub/**').test(p) },
      { opts: { glob: '*.txt' }, pick: (p) => globRegExp('*.txt').test(p) },
      { opts: { glob: 'sub/*/f?.bin' }, pick: (p) => globRegExp('sub/*/f?.bin').test(p) },
    ];
    for (const { opts, pick, optional } of selections) {
      const what = `restoreFiles ${JSON.stringify(opts)}`;
      const part = await repo.restoreFiles(snap.id, opts).then(collect);
      const gotMembers = parseTar(part);
      const chosen = ref.filter((m) => pick(norm(m.path)) || (optional && optional(norm(m.path)) && gotMembers.some((g) => norm(g.path) === norm(m.path))));
      assert.ok(chosen.length > 0, `${what} picks something`);
      assert.deepEqual(gotMembers.map((m) => norm(m.path)), chosen.map((m) => norm(m.path)), `${what}: the members, in archive order`);
      const wantBytes = Buffer.concat([...chosen.map((m) => memberBytes(tarBuf, m, storedSize(tarBuf, m))), Buffer.alloc(1024)]);
      assertSameBytes(part, wantBytes, `${what}: original header blocks and data, then two zero blocks`);
      const px = path.join(dir, 'part-x');
      removeTmp(px);
      fs.mkdirSync(px);
      const partFile = path.join(dir, 'part.tar');
      fs.writeFileSync(partFile, part);
      run('tar', ['-xf', partFile, '-C', px]);
      const tree = listTree(px);
      const nonDirs = [...tree].filter(([, k]) => k !== 'dir').map(([p]) => p).sort();
      assert.deepEqual(nonDirs, chosen.filter((m) => m.type !== 'dir').map((m) => norm(m.path)).sort(), `${what}: tar -x extracts exactly those`);
      for (const m of chosen) {
        if (m.type === 'file' || m.type === 'hardlink') assertSameBytes(fs.readFileSync(path.join(px, norm(m.path))), fs.readFileSync(path.join(x, norm(m.path))), `${what}: ${m.path}`);
      }
      removeTmp(px);
      fs.rmSync(partFile);
    }
    await rejectsWithCode(() => repo.restoreFiles(snap.id, {}), 'ERR_INVALID_ARGUMENT');
    return { snap, ref };
  }

  it('GNU tar, default format (tar cf), paths with ./', async (t) => {
    const root = path.join(dir, 'tree-gnu-default');
    commonTree(root);
    const tarFile = path.join(dir, 'gnu-default.tar');
    run('tar', ['-cf', tarFile, '-C', root, '.']);
    const { ref, snap } = await checkTar(t, tarFile, { subsets: false });
    assert.ok(ref[0].path.startsWith('./'));
    // subsets with './' paths: the normalised forms select them
    const part = await repo.restoreFiles(snap.id, { paths: ['top.txt'] }).then(collect);
    assert.deepEqual(parseTar(part).map((m) => m.path), ['./top.txt']);
  });

  it('GNU tar --format=gnu: names over 100 characters (././@LongLink), long symlink targets', async (t) => {
    const root = path.join(dir, 'tree-gnu');
    commonTree(root);
    const tarFile = path.join(dir, 'gnu.tar');
    run('tar', ['--format=gnu', '-cf', tarFile, '-C', root, 'top.txt', 'empty.txt', 'block.bin', 'odd.bin', 'sub', 'links', 'emptydir']);
    const raw = fs.readFileSync(tarFile);
    assert.ok(raw.includes(Buffer.from('././@LongLink')), 'GNU long-name blocks are used');
    await checkTar(t, tarFile);
  });

  it('GNU tar --format=pax: long names and a hard link', async (t) => {
    const root = path.join(dir, 'tree-pax');
    commonTree(root);
    const tarFile = path.join(dir, 'pax.tar');
    run('tar', ['--format=pax', '-cf', tarFile, '-C', root, 'top.txt', 'empty.txt', 'block.bin', 'odd.bin', 'sub', 'links', 'emptydir']);
    const { ref } = await checkTar(t, tarFile);
    assert.ok(ref.some((m) => m.type === 'hardlink'), 'a hard link member');
    assert.ok(ref.some((m) => m.path.length > 100 && m.header < m.offset - 512), 'a pax header before a long name');
  });

  it('GNU tar --format=ustar: names split into prefix and name', async (t) => {
    const root = path.join(dir, 'tree-ustar');
    commonTree(root, { longComponent: false });
    const tarFile = path.join(dir, 'ustar.tar');
    run('tar', ['--format=ustar', '-cf', tarFile, '-C', root, 'top.txt', 'empty.txt', 'block.bin', 'odd.bin', 'sub', 'links', 'emptydir'], { allowFail: false });
    await checkTar(t, tarFile);
  });

  it('GNU sparse member (tar -S): listed as sparse; restoreFile exact or ERR_UNSUPPORTED_FORMAT; the next member is right', async (t) => {
    const root = path.join(dir, 'tree-sparse');
    sparseTree(root);
    const tarFile = path.join(dir, 'sparse.tar');
    run('tar', ['-S', '-cf', tarFile, '-C', root, 'sparse.img', 'after.txt']);
    const { ref } = await checkTar(t, tarFile, { sparse: true, subsets: false });
    const sp = ref.find((m) => m.sparse);
    assert.equal(sp.realSize, 8 * MiB);
    assert.ok(sp.size < MiB, 'stored with its holes left out');
  });

  it('GNU sparse in pax form (tar --format=pax -S, GNU.sparse 1.0): listed by its real name as sparse', async (t) => {
    const root = path.join(dir, 'tree-pax-sparse');
    sparseTree(root);
    const tarFile = path.join(dir, 'pax-sparse.tar');
    run('tar', ['--format=pax', '-S', '-cf', tarFile, '-C', root, 'sparse.img', 'after.txt']);
    const { ref } = await checkTar(t, tarFile, { sparse: true, subsets: false });
    assert.equal(norm(ref[0].path), 'sparse.img');
    assert.equal(ref[0].realSize, 8 * MiB);
  });

  it('bsdtar (libarchive)', async (t) => {
    if (!which('bsdtar')) {
      t.skip('bsdtar is not on PATH (apt-get install libarchive-tools): the bsdtar case is skipped');
      return;
    }
    const root = path.join(dir, 'tree-bsd');
    commonTree(root);
    for (const format of ['pax', 'ustar', 'gnutar']) {
      if (format === 'ustar') continue; // the 120-char component does not fit ustar
      const tarFile = path.join(dir, `bsd-${format}.tar`);
      run('bsdtar', ['--format', format, '-cf', tarFile, '-C', root, 'top.txt', 'empty.txt', 'block.bin', 'odd.bin', 'sub', 'links', 'emptydir']);
      await checkTar(t, tarFile);
    }
  });

  it("Node's tar package", async (t) => {
    const root = path.join(dir, 'tree-node');
    commonTree(root);
    const tarFile = path.join(dir, 'node.tar');
    nodeTar.c({ file: tarFile, cwd: root, sync: true }, ['top.txt', 'empty.txt', 'block.bin', 'odd.bin', 'sub', 'links', 'emptydir']);
    const { ref } = await checkTar(t, tarFile);
    assert.ok(ref.some((m) => m.path.length > 100), 'a long name');
    assert.ok(ref.some((m) => m.type === 'hardlink'), 'node tar wrote a hard link');
  });
});

describe('tar catalogs: what gets one', () => {
  it('a non-tar stream typed volume-tar is stored byte-exact, with catalog null and the reason; listFiles rejects ERR_NO_CATALOG', async (t) => {
    const dir = tmpFor(t);
    const repo = await ContainerArchive.init(path.join(dir, 'repo'));
    t.after(() => repo.close());
    const junk = randomBytes(3 * MiB + 5, 41);
    const snap = await repo.ingest([junk], { items: [{ name: 'junk.tar', type: 'volume-tar' }] });
    const item = snap.items[0];
    assert.equal(item.catalog, null);
    assert.equal(typeof item.catalogError, 'string');
    assert.ok(item.catalogError.length > 0);
    assertSameBytes(await repo.restore(snap.id).then(collect), junk, 'non-tar restored byte-exact');
    assert.equal((await repo.getSnapshot(snap.id)).items[0].catalogError, item.catalogError);
    const err = await rejectsWithCode(() => listAll(repo.listFiles(snap.id)), 'ERR_NO_CATALOG');
    assert.ok(err.message.includes(item.catalogError), `the message gives the reason: ${err.message} / ${item.catalogError}`);
    await rejectsWithCode(() => repo.restoreFile(snap.id, { path: 'x' }), 'ERR_NO_CATALOG');
    await rejectsWithCode(() => repo.restoreFiles(snap.id, { prefix: 'x' }), 'ERR_NO_CATALOG');

    // A damaged tar never fails the backup: truncated mid-member, and a corrupted header.
    const root = path.join(dir, 'tree');
    commonTree(root);
    const good = path.join(dir, 'good.tar');
    run('tar', ['-cf', good, '-C', root, 'sub', 'top.txt']);
    const buf = fs.readFileSync(good);
    const ref = parseTar(buf);
    const truncated = buf.subarray(0, ref[3].offset + 100);
    const corrupted = Buffer.from(buf);
    corrupted[ref[2].header + 10] ^= 0xff;
    for (const [name, bytes] of [['truncated', truncated], ['corrupted', corrupted]]) {
      const s = await repo.ingest([bytes], { items: [{ name, type: 'volume-tar' }] });
      assertSameBytes(await repo.restore(s.id).then(collect), bytes, `${name} tar restored byte-exact`);
      const it = s.items[0];
      assert.ok(it.catalog === null ? typeof it.catalogError === 'string' : it.catalog.entries >= 0, `${name}: a catalog or a reason`);
    }
  });

  it("catalog: 'tar' on another type makes one, type 'tar' makes one, catalog: false and 'database-dump' make none", async (t) => {
    const dir = tmpFor(t);
    const repo = await ContainerArchive.init(path.join(dir, 'repo'));
    t.after(() => repo.close());
    const root = path.join(dir, 'tree');
    commonTree(root);
    const tarFile = path.join(dir, 'v.tar');
    run('tar', ['-cf', tarFile, '-C', root, 'top.txt', 'sub']);
    const buf = fs.readFileSync(tarFile);
    const n = parseTar(buf).length;
    const snap = await repo.ingestMulti([
      { name: 'as-data', type: 'data', catalog: 'tar', stream: [buf] },
      { name: 'as-tar', type: 'tar', stream: [buf] },
      { name: 'off', type: 'volume-tar', catalog: false, stream: [buf] },
      { name: 'dump', type: 'database-dump', stream: [buf] },
      { name: 'plain', stream: [buf] },
    ]);
    const by = Object.fromEntries(snap.items.map((i) => [i.name, i]));
    assert.deepEqual(snap.items.map((i) => i.name), ['as-data', 'as-tar', 'off', 'dump', 'plain'], 'catalogs are not items');
    assert.equal(by['as-data'].catalog.entries, n);
    assert.equal(by['as-tar'].catalog.entries, n);
    for (const name of ['off', 'dump', 'plain']) {
      assert.equal(by[name].catalog, null, `${name}: catalog null`);
      assert.ok(!('catalogError' in by[name]), `${name}: never catalogued, so no catalogError`);
      await rejectsWithCode(() => listAll(repo.listFiles(snap.id, { item: name })), 'ERR_NO_CATALOG');
    }
    assert.equal(snap.originalSize, 5 * buf.length, 'originalSize counts the items, not the catalogs');
    const entries = await listAll(repo.listFiles(snap.id, { item: 'as-data', prefix: 'sub/deep/' }));
    assert.ok(entries.length >= 3 && entries.every((e) => norm(e.path) === 'sub/deep' || norm(e.path).startsWith('sub/deep/')));
    const globbed = await listAll(repo.listFiles(snap.id, { item: 'as-tar', glob: 'sub/*/f?.bin' }));
    assert.deepEqual(globbed.map((e) => norm(e.path)).sort(), ['sub/deep/f1.bin', 'sub/deep/f2.bin', 'sub/x/f3.bin']);
    assertSameBytes(await repo.restoreFile(snap.id, { item: 'as-data', path: 'top.txt' }).then(collect), Buffer.from('hello catalog\n'), 'restoreFile from a catalog: tar item');

    // ingest() takes catalog in its item spec too
    const one = await repo.ingest([buf], { items: [{ name: 'x', type: 'data', catalog: 'tar' }] });
    assert.equal(one.items[0].catalog.entries, n);
    await rejectsWithCode(() => repo.ingest([buf], { items: [{ name: 'y', catalog: 'zip' }] }), 'ERR_INVALID_ARGUMENT');

    // the catalog survives verify, forget + prune, and is sealed in an encrypted repository
    assert.equal((await repo.verify({ level: 'full' })).ok, true);
    await repo.forget(one.id, { prune: true });
    assert.equal((await listAll(repo.listFiles(snap.id, { item: 'as-data' }))).length, n, 'catalog kept by prune');
    assert.equal((await repo.verify({ level: 'full' })).ok, true);

    // copySnapshots keeps the catalog
    const target = await ContainerArchive.init(path.join(dir, 'copy'));
    t.after(() => target.close());
    await repo.copySnapshots(target);
    const copied = await target.getSnapshot(snap.id);
    assert.deepEqual(copied.items.map((i) => i.catalog && i.catalog.entries), [n, n, null, null, null]);
    assert.equal((await listAll(target.listFiles(snap.id, { item: 'as-tar' }))).length, n, 'the copy lists the members');
    assertSameBytes(await target.restoreFile(snap.id, { item: 'as-tar', path: 'top.txt' }).then(collect), Buffer.from('hello catalog\n'), 'restoreFile from the copy');
  });

  it('an encrypted repository stores no member name in the clear', async (t) => {
    const dir = tmpFor(t);
    const repoPath = path.join(dir, 'repo');
    const repo = await ContainerArchive.init(repoPath, { passphrase: 'catalog' });
    t.after(() => repo.close());
    const root = path.join(dir, 'tree');
    writeTree(root, { 'zzuniquemembername-4711.txt': Buffer.from('x'.repeat(100)) });
    const tarFile = path.join(dir, 'e.tar');
    run('tar', ['-cf', tarFile, '-C', root, '.']);
    const snap = await repo.ingest(fs.createReadStream(tarFile), { items: [{ name: 'e.tar', type: 'volume-tar' }] });
    assert.equal(snap.items[0].catalog.entries, 2);
    assert.deepEqual((await listAll(repo.listFiles(snap.id))).map((e) => e.path), ['./', './zzuniquemembername-4711.txt']);
    const grep = run('grep', ['-rl', 'zzuniquemembername', repoPath], { allowFail: true });
    assert.equal(grep.stdout.toString(), '', 'no repository file holds the member name in the clear');
  });
});

// One member out of a 1 GiB tar, timed against its full restore: large-tar.test.js.

describe('tar catalogs: subsets with hard links', () => {
  it('a hard link chosen without its target brings the target along, so tar -x can create it', async (t) => {
    const tmp = tmpFor(t);
    const root = path.join(tmp, 'tree');
    fs.mkdirSync(path.join(root, 'data'), { recursive: true });
    const bytes = randomBytes(70 * KiB + 3, 41);
    fs.writeFileSync(path.join(root, 'data', 'target.bin'), bytes);
    fs.writeFileSync(path.join(root, 'data', 'other.bin'), randomBytes(5000, 42));
    fs.linkSync(path.join(root, 'data', 'target.bin'), path.join(root, 'link.bin'));
    const tarFile = path.join(tmp, 'links.tar');
    // The target is archived first, so link.bin is the hard-link member.
    run('tar', ['-cf', tarFile, '-C', root, 'data/target.bin', 'data/other.bin', 'link.bin']);
    const repo = await ContainerArchive.init(path.join(tmp, 'repo'));
    t.after(() => repo.close());
    const snap = await repo.ingest(fs.createReadStream(tarFile), { items: [{ name: 'v.tar', type: 'volume-tar' }] });
    const part = path.join(tmp, 'part.tar');
    fs.writeFileSync(part, await collect(await repo.restoreFiles(snap.id, { paths: ['link.bin'] })));
    const out = path.join(tmp, 'out');
    fs.mkdirSync(out);
    run('tar', ['-xf', part, '-C', out]);
    assertSameBytes(fs.readFileSync(path.join(out, 'link.bin')), bytes, 'the link');
    assertSameBytes(fs.readFileSync(path.join(out, 'data', 'target.bin')), bytes, 'its target, brought along');
    assert.ok(!fs.existsSync(path.join(out, 'data', 'other.bin')), 'nothing else');
  });
});
