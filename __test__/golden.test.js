'use strict';

// Golden repositories (__test__/golden/v<version>/<name>/), written by earlier
// builds with scripts/make-golden.js: today's engine must open every one and
// restore every item byte-identically. A change that breaks this must bump the
// format version with a documented migration (docs/FORMAT.md, "Compatibility").

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');
const H = require('./helpers');

const { ContainerArchive } = H.loadPackage();
const GOLDEN = path.join(__dirname, 'golden');
// Git keeps no empty directories; every repository has these (docs/FORMAT.md, Layout).
const LAYOUT = ['packs/data', 'packs/parity', 'snapshots', 'index', 'keys', 'locks'];

function goldenSets() {
  if (!fs.existsSync(GOLDEN)) return [];
  const sets = [];
  for (const version of fs.readdirSync(GOLDEN).filter((v) => /^v\d+$/.test(v)).sort()) {
    for (const name of fs.readdirSync(path.join(GOLDEN, version)).sort()) {
      const dir = path.join(GOLDEN, version, name);
      if (fs.existsSync(path.join(dir, 'expected.json'))) sets.push({ version, name, dir });
    }
  }
  return sets;
}

describe('golden repositories', () => {
  const sets = goldenSets();
  let tmp;
  let originalTree;

  before(() => {
    tmp = H.makeTmp();
    originalTree = H.treeState(GOLDEN);
  });
  after(() => H.removeTmp(tmp));

  it('there is a set for every format version up to the one this engine writes', async () => {
    const probe = path.join(tmp, 'probe');
    const repo = await ContainerArchive.init(probe);
    await repo.close();
    const current = JSON.parse(fs.readFileSync(path.join(probe, 'config.json'), 'utf8')).version;
    const versions = new Set(sets.map((s) => s.version));
    for (let v = 1; v <= current; v++) {
      assert.ok(versions.has(`v${v}`), `no golden set for format version ${v}; run node scripts/make-golden.js`);
    }
    assert.ok(sets.length >= 6 * current, `expected at least 6 repositories per version, found ${sets.length}`);
  });

  for (const { version, name, dir } of sets) {
    it(`${version}/${name}: every snapshot and item reads back byte-identically, and verify(full) is clean`, async () => {
      const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
      const copy = path.join(tmp, version, name);
      fs.cpSync(path.join(dir, 'repo'), copy, { recursive: true });
      for (const d of LAYOUT) fs.mkdirSync(path.join(copy, d), { recursive: true });

      const repo = await ContainerArchive.open(copy, { passphrase: expected.passphrase ?? undefined });
      try {
        const listed = await repo.listSnapshots();
        assert.deepEqual(
          listed.map((s) => ({ id: s.id, createdAt: s.createdAt, tags: s.tags, items: s.items.map((i) => [i.name, i.type, i.size]) })),
          expected.snapshots.map((s) => ({ id: s.id, createdAt: s.createdAt, tags: s.tags, items: s.items.map((i) => [i.name, i.type, i.size]) })),
        );
        let items = 0;
        for (const snap of expected.snapshots) {
          for (const item of snap.items) {
            const got = await H.hashStream(await repo.restore(snap.id, { item: item.name }));
            assert.equal(got.length, item.size, `${snap.id}/${item.name}: size`);
            assert.equal(got.sha256, item.sha256, `${snap.id}/${item.name}: content`);
            items++;
          }
        }
        assert.ok(items >= 4, 'a golden repository holds several items');
        const report = await repo.verify({ level: 'full' });
        assert.deepEqual(report.errors, []);
        assert.equal(report.ok, true);
      } finally {
        await repo.close();
      }
    });
  }

  it('the committed golden repositories were not modified', () => {
    assert.deepEqual(H.treeState(GOLDEN), originalTree);
  });
});
