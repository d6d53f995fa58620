'use strict';

// listSnapshots({ tags, after, before }): tag matching, date filters (ISO strings and Dates),
// ordering oldest first. One repository with a handful of tiny snapshots.
//
// Snapshots can only be created "now", so date expectations are derived from the createdAt
// values the product returned (two ingests may share a millisecond). `before` is exclusive;
// a snapshot whose createdAt equals an `after` bound may be in or out.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Readable } = require('node:stream');

const { makeTmp, removeTmp, rejectsWithCode, assertSnapshotShape, loadPackage } = require('./helpers');

const { ContainerArchive } = loadPackage();

const ms = (iso) => Date.parse(iso);

describe('listSnapshots', () => {
  let root;
  let repo;
  const created = []; // in creation order
  let mid; // a Date taken after created[1] resolved and before created[2] started

  const specs = [
    { service: 'a', env: 'prod' },
    { service: 'b', env: 'prod' },
    { service: 'a', env: 'dev', tier: '1' },
    {},
  ];

  before(async () => {
    root = makeTmp();
    repo = await ContainerArchive.init(path.join(root, 'repo'));
    for (let i = 0; i < specs.length; i++) {
      if (i === 2) mid = new Date();
      created.push(await repo.ingest(Readable.from([Buffer.from(`snapshot number ${i}\n`)]), { tags: specs[i] }));
    }
  });
  after(async () => {
    try {
      if (repo) await repo.close();
    } finally {
      removeTmp(root);
    }
  }, { timeout: 60000 });

  /**
   * Asserts `result` is exactly the created snapshots for which pred(s) is true, plus any
   * subset of those for which pred(s) === 'either', sorted oldest first.
   */
  function assertSelection(result, pred, what) {
    assertOldestFirst(result);
    const got = new Set(result.map((s) => s.id));
    assert.equal(got.size, result.length, `${what}: duplicate ids`);
    for (const s of created) {
      const p = pred(s);
      if (p === true) assert.ok(got.has(s.id), `${what}: missing ${JSON.stringify(s.tags)} @${s.createdAt}`);
      else if (p === false) assert.ok(!got.has(s.id), `${what}: unexpected ${JSON.stringify(s.tags)} @${s.createdAt}`);
    }
    const known = new Set(created.map((s) => s.id));
    for (const id of got) assert.ok(known.has(id), `${what}: unknown snapshot ${id}`);
  }

  function assertOldestFirst(list) {
    for (let i = 1; i < list.length; i++) {
      assert.ok(
        ms(list[i - 1].createdAt) <= ms(list[i].createdAt),
        `not sorted oldest first: ${list[i - 1].createdAt} before ${list[i].createdAt}`,
      );
    }
  }

  const tagsMatch = (filter) => (s) => Object.entries(filter).every(([k, v]) => s.tags[k] === v);
  const afterPred = (bound) => (s) => (ms(s.createdAt) > bound ? true : ms(s.createdAt) < bound ? false : 'either');
  const beforePred = (bound) => (s) => ms(s.createdAt) < bound;

  it('lists every snapshot, oldest first, with full snapshot objects', async () => {
    const list = await repo.listSnapshots();
    assert.equal(list.length, created.length);
    list.forEach(assertSnapshotShape);
    assertSelection(list, () => true, 'no filter');
    // creation order is respected where timestamps differ
    const pos = new Map(list.map((s, i) => [s.id, i]));
    for (let i = 0; i < created.length; i++) {
      for (let j = i + 1; j < created.length; j++) {
        assert.ok(ms(created[i].createdAt) <= ms(created[j].createdAt), 'createdAt went backwards between ingests');
        if (ms(created[i].createdAt) < ms(created[j].createdAt)) assert.ok(pos.get(created[i].id) < pos.get(created[j].id));
      }
    }
    for (const s of list) {
      const mine = created.find((c) => c.id === s.id);
      assert.equal(s.createdAt, mine.createdAt);
      assert.deepEqual(s.tags, mine.tags);
      assert.deepEqual(s.items, mine.items);
    }
    assert.deepEqual((await repo.listSnapshots({})).map((s) => s.id), list.map((s) => s.id));
  });

  it('tag filters require every given tag to match', async () => {
    const filters = [
      { service: 'a' },
      { service: 'a', env: 'prod' },
      { env: 'prod' },
      { service: 'a', env: 'dev', tier: '1' },
      { tier: '1' },
      { service: 'zzz' },
      { service: 'a', env: 'staging' },
      { nosuchkey: 'a' },
      {},
    ];
    const expectedCounts = [2, 1, 2, 1, 1, 0, 0, 0, 4];
    for (let i = 0; i < filters.length; i++) {
      const list = await repo.listSnapshots({ tags: filters[i] });
      assertSelection(list, tagsMatch(filters[i]), `tags ${JSON.stringify(filters[i])}`);
      assert.equal(list.length, expectedCounts[i], `tags ${JSON.stringify(filters[i])}`);
    }
  });

  it('before is exclusive and accepts ISO strings and Dates', async () => {
    const second = created[1];
    const bound = ms(second.createdAt);
    for (const b of [second.createdAt, new Date(second.createdAt)]) {
      const list = await repo.listSnapshots({ before: b });
      assertSelection(list, beforePred(bound), `before ${b}`);
      assert.ok(!list.some((s) => s.id === second.id), 'before: snapshots[1].createdAt must exclude snapshots[1]');
    }
    // a bound after the last snapshot includes everything
    const last = ms(created[created.length - 1].createdAt);
    const all = await repo.listSnapshots({ before: new Date(last + 1) });
    assert.equal(all.length, created.length);
  });

  it('after accepts ISO strings and Dates', async () => {
    assert.ok(ms(created[1].createdAt) <= mid.getTime() && mid.getTime() <= ms(created[2].createdAt));
    for (const a of [mid, mid.toISOString()]) {
      const list = await repo.listSnapshots({ after: a });
      assertSelection(list, afterPred(mid.getTime()), `after ${a}`);
      // the snapshots created after mid are certainly newer than anything before it
      assert.ok(list.some((s) => s.id === created[3].id) || ms(created[3].createdAt) === mid.getTime());
    }
    // one millisecond after the first snapshot excludes the first snapshot
    const first = created[0];
    const list = await repo.listSnapshots({ after: new Date(ms(first.createdAt) + 1) });
    assert.ok(!list.some((s) => s.id === first.id));
    assertSelection(list, afterPred(ms(first.createdAt) + 1), 'after first+1ms');
  });

  it('bounds far in the past/future, with and without offsets', async () => {
    assert.equal((await repo.listSnapshots({ after: '2000-01-01T00:00:00Z' })).length, created.length);
    assert.equal((await repo.listSnapshots({ after: '2000-01-01T02:00:00+02:00' })).length, created.length);
    assert.equal((await repo.listSnapshots({ after: new Date('2000-01-01T00:00:00Z') })).length, created.length);
    assert.equal((await repo.listSnapshots({ before: '2000-01-01T00:00:00Z' })).length, 0);
    assert.equal((await repo.listSnapshots({ after: '2999-01-01T00:00:00Z' })).length, 0);
    assert.equal((await repo.listSnapshots({ before: new Date('2999-01-01T00:00:00Z') })).length, created.length);
    // after > before selects nothing
    assert.equal((await repo.listSnapshots({ after: '2999-01-01T00:00:00Z', before: '2000-01-01T00:00:00Z' })).length, 0);
  });

  it('combines tags, after and before', async () => {
    const upper = ms(created[3].createdAt);
    const filter = { tags: { service: 'a' }, after: '2000-01-01T00:00:00Z', before: created[3].createdAt };
    const list = await repo.listSnapshots(filter);
    assertSelection(list, (s) => tagsMatch({ service: 'a' })(s) && ms(s.createdAt) < upper, 'combined');

    const list2 = await repo.listSnapshots({ tags: { env: 'prod' }, after: mid });
    assertSelection(list2, (s) => {
      if (!tagsMatch({ env: 'prod' })(s)) return false;
      return afterPred(mid.getTime())(s);
    }, 'combined tags+after');
  });

  it('rejects ERR_INVALID_ARGUMENT for unparseable dates', async () => {
    await rejectsWithCode(() => repo.listSnapshots({ after: 'not a date' }), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(() => repo.listSnapshots({ before: new Date('nope') }), 'ERR_INVALID_ARGUMENT');
  });
});
