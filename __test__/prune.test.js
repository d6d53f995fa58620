'use strict';

// Retention and garbage collection: prune(retention, dryRun).
//
// Rule tests create tiny snapshots with controlled timestamps (the test-only `createdAt`,
// enabled by CONTAINERARCHIVE_TEST_CREATED_AT=1) and compare kept/removed/reasons with
// expectations worked out by hand from the chosen timestamps. Most policies run as dry runs
// on one repository; each test also runs one policy for real and checks what is left.
// GC tests use a crafted repository whose packs mix live and dead chunks.

// Retention works in UTC. A timezone with a half-hour offset makes a local-time bug visible
// (hour and day boundaries move by 30 minutes / 5.5 hours). Set before anything loads.
process.env.TZ = 'Asia/Kolkata';
process.env.CONTAINERARCHIVE_TEST_CREATED_AT = '1';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Readable } = require('node:stream');

const { KiB, tmpFor, rejectsWithCode, loadPackage } = require('./helpers');
const F = require('./fault-helpers');
const P = require('./prune-helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 120000 };
const MIN = 60 * 1000;
const DAY = 24 * 60 * MIN;

async function openRepo(t, dir, options) {
  const repo = await ContainerArchive.open(dir, options);
  t.after(() => repo.close().catch(() => {}), { timeout: 30000 });
  return repo;
}

/**
 * A repository with one tiny snapshot per spec ({ name, at, tags }), ingested in a shuffled
 * (not chronological) order, so ordering must come from createdAt. Returns a context used by
 * expectPolicy().
 */
async function seed(t, specs) {
  const dir = path.join(tmpFor(t), 'repo');
  const repo = await ContainerArchive.init(dir);
  t.after(() => repo.close().catch(() => {}), { timeout: 30000 });
  const order = specs.map((s) => [s]);
  const next = F.xorshift32(specs.length * 31 + 7);
  for (let i = order.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const id = {};
  const name = {};
  const payload = {};
  for (const [s] of order) {
    const bytes = Buffer.from(`snap-${s.name}`);
    const snap = await repo.ingest(Readable.from([bytes]), { createdAt: s.at, tags: s.tags || {} });
    assert.equal(Date.parse(snap.createdAt), Date.parse(s.at), `snapshot ${s.name} carries the createdAt it was given`);
    id[s.name] = snap.id;
    name[snap.id] = s.name;
    payload[s.name] = bytes;
  }
  assert.equal(Object.keys(name).length, specs.length, 'every snapshot has its own id');
  return { dir, repo, id, name, payload, all: specs.map((s) => s.name) };
}

const names = (ctx, ids) => ids.map((i) => ctx.name[i] || `?${i}`);

/**
 * Runs prune(policy, dryRun) and checks it against `kept` (names, oldest first) and `reasons`
 * ({ name: [rules] }; default: every kept snapshot has `[rule]`). Snapshots in `untouched` are
 * out of the policy's scope: listed nowhere in the result; those in `gone` were removed
 * earlier. Everything else must be removed.
 */
async function expectPolicy(ctx, givenPolicy, { kept, reasons, rule, untouched = [], gone = [], dryRun = true }) {
  // These rule tests check one policy across the seeded snapshots (whose tags differ), so
  // they group nothing unless they say otherwise; grouping is tested in operator.test.js.
  const policy = { groupBy: false, ...givenPolicy };
  const r = await ctx.repo.prune(policy, dryRun);
  P.assertPruneShape(r, dryRun);
  const label = JSON.stringify(policy);
  assert.deepEqual(names(ctx, r.keptSnapshots), kept, `${label}: keptSnapshots (oldest first)`);
  const removed = ctx.all.filter((n) => !kept.includes(n) && !untouched.includes(n) && !gone.includes(n)).sort();
  assert.deepEqual(names(ctx, r.removedSnapshots).sort(), removed, `${label}: removedSnapshots`);
  const wantReasons = {};
  for (const n of kept) wantReasons[n] = reasons && reasons[n] ? reasons[n] : [rule];
  const gotReasons = {};
  for (const [i, why] of Object.entries(r.reasons)) gotReasons[ctx.name[i] || `?${i}`] = why;
  assert.deepEqual(gotReasons, wantReasons, `${label}: reasons`);
  for (const n of untouched) {
    assert.ok(!r.keptSnapshots.includes(ctx.id[n]) && !r.removedSnapshots.includes(ctx.id[n]), `${label}: out-of-scope ${n} must not be listed`);
  }
  return r;
}

/** After a real prune: exactly `left` (names) are listed, in createdAt order, and restore. */
async function expectLeft(ctx, left) {
  const listed = await ctx.repo.listSnapshots();
  const byTime = [...left].sort((x, y) => Date.parse(ctx.at(x)) - Date.parse(ctx.at(y)));
  assert.deepEqual(names(ctx, listed.map((s) => s.id)), byTime, 'snapshots left after prune');
  for (const n of left) await P.assertRestoresBuffer(ctx.repo, ctx.id[n], ctx.payload[n], `snapshot ${n}`);
  for (const n of ctx.all.filter((x) => !left.includes(x))) {
    await rejectsWithCode(() => ctx.repo.getSnapshot(ctx.id[n]), 'ERR_SNAPSHOT_NOT_FOUND');
    await rejectsWithCode(() => ctx.repo.restore(ctx.id[n]), 'ERR_SNAPSHOT_NOT_FOUND');
  }
  await F.assertHealthy(ctx.repo, 'full', 'after prune');
}

function withTimes(ctx, specs) {
  const at = Object.fromEntries(specs.map((s) => [s.name, s.at]));
  ctx.at = (n) => at[n];
  return ctx;
}

async function seeded(t, specs) {
  return withTimes(await seed(t, specs), specs);
}

// ---------------------------------------------------------------------------

describe('test-only createdAt', () => {
  it('is rejected ERR_INVALID_ARGUMENT unless CONTAINERARCHIVE_TEST_CREATED_AT=1', T, async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const repo = await ContainerArchive.init(dir);
    t.after(() => repo.close().catch(() => {}));
    const saved = process.env.CONTAINERARCHIVE_TEST_CREATED_AT;
    try {
      for (const value of [undefined, '0', 'true', '']) {
        if (value === undefined) delete process.env.CONTAINERARCHIVE_TEST_CREATED_AT;
        else process.env.CONTAINERARCHIVE_TEST_CREATED_AT = value;
        await rejectsWithCode(() => repo.ingest(P.tiny('x'), { createdAt: '2020-01-01T00:00:00Z' }), 'ERR_INVALID_ARGUMENT');
        await rejectsWithCode(() => repo.ingest(P.tiny('x'), { createdAt: new Date(Date.UTC(2020, 0, 1)) }), 'ERR_INVALID_ARGUMENT');
        await rejectsWithCode(
          () => repo.ingestMulti([{ name: 'a', type: 'a', stream: P.tiny('x') }], { createdAt: '2020-01-01T00:00:00Z' }),
          'ERR_INVALID_ARGUMENT',
        );
      }
      assert.deepEqual(await repo.listSnapshots(), [], 'a rejected createdAt writes no snapshot');
      assert.deepEqual(F.packIds(dir), [], 'a rejected createdAt writes no pack');
      // without createdAt an ingest works as always, and gets the current time
      const before = Date.now();
      const snap = await repo.ingest(P.tiny('now'));
      assert.ok(Date.parse(snap.createdAt) >= before - 1000, `createdAt defaults to now: ${snap.createdAt}`);
    } finally {
      if (saved === undefined) delete process.env.CONTAINERARCHIVE_TEST_CREATED_AT;
      else process.env.CONTAINERARCHIVE_TEST_CREATED_AT = saved;
    }
    assert.equal(process.env.CONTAINERARCHIVE_TEST_CREATED_AT, '1');

    // enabled: ISO strings and Dates are accepted and stored (UTC); a bad value is refused
    const s1 = await repo.ingest(P.tiny('a'), { createdAt: '2021-03-04T05:06:07.000Z' });
    assert.equal(Date.parse(s1.createdAt), Date.parse('2021-03-04T05:06:07Z'));
    const s2 = await repo.ingestMulti([{ name: 'i', type: 't', stream: P.tiny('b') }], { createdAt: new Date(Date.UTC(2019, 11, 31, 23, 59, 59)) });
    assert.equal(Date.parse(s2.createdAt), Date.UTC(2019, 11, 31, 23, 59, 59));
    assert.equal(Date.parse((await repo.getSnapshot(s2.id)).createdAt), Date.UTC(2019, 11, 31, 23, 59, 59));
    await rejectsWithCode(() => repo.ingest(P.tiny('c'), { createdAt: 'not a date' }), 'ERR_INVALID_ARGUMENT');
    const listed = await repo.listSnapshots();
    assert.deepEqual(listed.slice(0, 2).map((s) => s.id), [s2.id, s1.id], 'listed by createdAt, oldest first');
  });
});

describe('prune arguments', () => {
  it('an empty policy rejects ERR_INVALID_ARGUMENT and changes nothing', T, async (t) => {
    const ctx = await seeded(t, [
      { name: 'a', at: '2024-01-01T00:00:00Z' },
      { name: 'b', at: '2024-01-02T00:00:00Z' },
      { name: 'c', at: '2024-01-03T00:00:00Z' },
    ]);
    const before = P.fingerprint(ctx.dir);
    const empty = [
      {},
      { keepLast: 0 },
      { keepLast: 0, keepHourly: 0, keepDays: 0, keepWeeks: 0, keepMonths: 0, keepYears: 0 },
      { keepTags: {} },
      { maxUnused: 0.5 },
      { filter: { tags: { a: 'b' } } },
      { lockTimeoutMs: 1000 },
      { keepDays: 0, maxUnused: '10%', filter: { tags: {} } },
    ];
    for (const policy of empty) {
      for (const dryRun of [false, true]) {
        await rejectsWithCode(() => ctx.repo.prune(policy, dryRun), 'ERR_INVALID_ARGUMENT');
      }
      await rejectsWithCode(() => ctx.repo.prune(policy), 'ERR_INVALID_ARGUMENT');
    }
    await rejectsWithCode(() => ctx.repo.prune(), 'ERR_INVALID_ARGUMENT');
    await rejectsWithCode(() => ctx.repo.prune(null), 'ERR_INVALID_ARGUMENT');
    P.assertSameFingerprint(P.fingerprint(ctx.dir), before, 'after rejected empty policies');
    assert.equal((await ctx.repo.listSnapshots()).length, 3);
  });

  it('malformed rules reject ERR_INVALID_ARGUMENT and change nothing', T, async (t) => {
    const ctx = await seeded(t, [
      { name: 'a', at: '2024-01-01T00:00:00Z' },
      { name: 'b', at: '2024-01-02T00:00:00Z' },
    ]);
    const before = P.fingerprint(ctx.dir);
    const bad = [
      { keepLast: -1 },
      { keepLast: 1.5 },
      { keepLast: '2' },
      { keepWithin: '30' },
      { keepWithin: 'abc' },
      { keepWithin: '' },
      { keepWithin: '5x' },
      { keepWithin: '-1d' },
      { keepWithin: 30 },
      { keepLast: 1, maxUnused: 1.5 },
      { keepLast: 1, maxUnused: -0.1 },
      { keepLast: 1, maxUnused: '150%' },
      { keepLast: 1, maxUnused: 'ten' },
      { keepLast: 1, keepTags: { a: 1 } },
      { keepLast: 1, filter: { tags: 'x' } },
      { keepLast: 1, keepEverything: true },
    ];
    for (const policy of bad) {
      const err = await rejectsWithCode(() => ctx.repo.prune(policy), 'ERR_INVALID_ARGUMENT');
      assert.ok(err.message.length > 0, JSON.stringify(policy));
    }
    await rejectsWithCode(() => ctx.repo.prune({ keepLast: 1 }, 'yes'), 'ERR_INVALID_ARGUMENT');
    P.assertSameFingerprint(P.fingerprint(ctx.dir), before, 'after rejected malformed policies');
  });
});

describe('retention rules', () => {
  it('keepLast keeps the N newest by createdAt (not by ingest order)', T, async (t) => {
    const specs = [1, 2, 3, 4, 5].map((i) => ({ name: `l${i}`, at: new Date(Date.UTC(2024, 5, 1, i)).toISOString() }));
    const ctx = await seeded(t, specs);
    await expectPolicy(ctx, { keepLast: 1 }, { kept: ['l5'], rule: 'last' });
    await expectPolicy(ctx, { keepLast: 3 }, { kept: ['l3', 'l4', 'l5'], rule: 'last' });
    await expectPolicy(ctx, { keepLast: 5 }, { kept: ['l1', 'l2', 'l3', 'l4', 'l5'], rule: 'last' });
    await expectPolicy(ctx, { keepLast: 50 }, { kept: ['l1', 'l2', 'l3', 'l4', 'l5'], rule: 'last' });
    const r = await expectPolicy(ctx, { keepLast: 2 }, { kept: ['l4', 'l5'], rule: 'last', dryRun: false });
    assert.equal(r.removedSnapshots.length, 3);
    await expectLeft(ctx, ['l4', 'l5']);
    // a second identical prune finds nothing more to remove
    const again = await expectPolicy(ctx, { keepLast: 2 }, { kept: ['l4', 'l5'], rule: 'last', gone: ['l1', 'l2', 'l3'], dryRun: false });
    assert.deepEqual(again.removedSnapshots, []);
    assert.equal(again.removedPacks, 0);
    await expectLeft(ctx, ['l4', 'l5']);
  });

  it('keepHourly keeps the newest snapshot of each of the last N UTC hours that have snapshots', T, async (t) => {
    const ctx = await seeded(t, [
      { name: 'h0959', at: '2024-05-01T09:59:00Z' },
      { name: 'h1005', at: '2024-05-01T10:05:00Z' },
      { name: 'h1040', at: '2024-05-01T10:40:00Z' },
      { name: 'h1110', at: '2024-05-01T11:10:00Z' },
      { name: 'h1150', at: '2024-05-01T11:50:00Z' },
      // no snapshot in hour 12
      { name: 'h1330', at: '2024-05-01T13:30:00Z' },
    ]);
    await expectPolicy(ctx, { keepHourly: 1 }, { kept: ['h1330'], rule: 'hourly' });
    await expectPolicy(ctx, { keepHourly: 2 }, { kept: ['h1150', 'h1330'], rule: 'hourly' });
    await expectPolicy(ctx, { keepHourly: 10 }, { kept: ['h0959', 'h1040', 'h1150', 'h1330'], rule: 'hourly' });
    await expectPolicy(ctx, { keepHourly: 3 }, { kept: ['h1040', 'h1150', 'h1330'], rule: 'hourly', dryRun: false });
    await expectLeft(ctx, ['h1040', 'h1150', 'h1330']);
  });

  it('keepDays uses UTC days and counts only days that have snapshots', T, async (t) => {
    const ctx = await seeded(t, [
      { name: 'd08', at: '2024-03-08T12:00:00Z' },
      { name: 'd10a', at: '2024-03-10T08:00:00Z' },
      { name: 'd10b', at: '2024-03-10T23:59:59Z' },
      { name: 'd11a', at: '2024-03-11T00:00:01Z' },
      { name: 'd11b', at: '2024-03-11T06:00:00Z' },
      // no snapshot on the 12th
      { name: 'd13', at: '2024-03-13T10:00:00Z' },
    ]);
    await expectPolicy(ctx, { keepDays: 1 }, { kept: ['d13'], rule: 'daily' });
    await expectPolicy(ctx, { keepDays: 2 }, { kept: ['d11b', 'd13'], rule: 'daily' });
    await expectPolicy(ctx, { keepDays: 4 }, { kept: ['d08', 'd10b', 'd11b', 'd13'], rule: 'daily' });
    await expectPolicy(ctx, { keepDays: 3 }, { kept: ['d10b', 'd11b', 'd13'], rule: 'daily', dryRun: false });
    await expectLeft(ctx, ['d10b', 'd11b', 'd13']);
  });

  it('keepWeeks: weeks start on Monday (UTC)', T, async (t) => {
    // 2024-02-26, 03-04, 03-11 and 03-18 are Mondays.
    const ctx = await seeded(t, [
      { name: 'w0227tue', at: '2024-02-27T10:00:00Z' },
      { name: 'w0310sun', at: '2024-03-10T23:00:00Z' },
      { name: 'w0311mon', at: '2024-03-11T00:30:00Z' },
      { name: 'w0313wed', at: '2024-03-13T12:00:00Z' },
      { name: 'w0317sun', at: '2024-03-17T22:00:00Z' },
      { name: 'w0318mon', at: '2024-03-18T01:00:00Z' },
    ]);
    await expectPolicy(ctx, { keepWeeks: 1 }, { kept: ['w0318mon'], rule: 'weekly' });
    // Sunday-based weeks would keep w0313wed instead of w0317sun.
    await expectPolicy(ctx, { keepWeeks: 2 }, { kept: ['w0317sun', 'w0318mon'], rule: 'weekly' });
    await expectPolicy(ctx, { keepWeeks: 4 }, { kept: ['w0227tue', 'w0310sun', 'w0317sun', 'w0318mon'], rule: 'weekly' });
    await expectPolicy(ctx, { keepWeeks: 3 }, { kept: ['w0310sun', 'w0317sun', 'w0318mon'], rule: 'weekly', dryRun: false });
    await expectLeft(ctx, ['w0310sun', 'w0317sun', 'w0318mon']);
  });

  it('keepWeeks: a week spanning New Year is one week', T, async (t) => {
    // 2024-12-30 and 2025-01-06 are Mondays.
    const ctx = await seeded(t, [
      { name: 'y1229sun', at: '2024-12-29T10:00:00Z' },
      { name: 'y1230mon', at: '2024-12-30T10:00:00Z' },
      { name: 'y0102thu', at: '2025-01-02T10:00:00Z' },
      { name: 'y0107tue', at: '2025-01-07T10:00:00Z' },
    ]);
    await expectPolicy(ctx, { keepWeeks: 2 }, { kept: ['y0102thu', 'y0107tue'], rule: 'weekly' });
    await expectPolicy(ctx, { keepWeeks: 3 }, { kept: ['y1229sun', 'y0102thu', 'y0107tue'], rule: 'weekly', dryRun: false });
    await expectLeft(ctx, ['y1229sun', 'y0102thu', 'y0107tue']);
  });

  it('keepMonths: calendar months (UTC) that have snapshots', T, async (t) => {
    const ctx = await seeded(t, [
      { name: 'm1231', at: '2023-12-31T12:00:00Z' },
      { name: 'm0131', at: '2024-01-31T23:59:59Z' },
      { name: 'm0201', at: '2024-02-01T00:00:00Z' },
      { name: 'm0215', at: '2024-02-15T12:00:00Z' },
      { name: 'm0229', at: '2024-02-29T23:00:00Z' },
      // no snapshot in March
      { name: 'm0401', at: '2024-04-01T00:00:01Z' },
    ]);
    await expectPolicy(ctx, { keepMonths: 1 }, { kept: ['m0401'], rule: 'monthly' });
    await expectPolicy(ctx, { keepMonths: 4 }, { kept: ['m1231', 'm0131', 'm0229', 'm0401'], rule: 'monthly' });
    await expectPolicy(ctx, { keepMonths: 3 }, { kept: ['m0131', 'm0229', 'm0401'], rule: 'monthly', dryRun: false });
    await expectLeft(ctx, ['m0131', 'm0229', 'm0401']);
  });

  it('keepYears: calendar years (UTC) that have snapshots', T, async (t) => {
    const ctx = await seeded(t, [
      { name: 'y2019', at: '2019-05-05T00:00:00Z' },
      { name: 'y2020', at: '2020-06-01T00:00:00Z' },
      { name: 'y2021a', at: '2021-01-01T00:00:00Z' },
      { name: 'y2021b', at: '2021-12-31T23:59:59Z' },
      // nothing in 2022
      { name: 'y2023a', at: '2023-03-03T03:03:03Z' },
      { name: 'y2023b', at: '2023-07-07T07:07:07Z' },
    ]);
    await expectPolicy(ctx, { keepYears: 1 }, { kept: ['y2023b'], rule: 'yearly' });
    await expectPolicy(ctx, { keepYears: 3 }, { kept: ['y2020', 'y2021b', 'y2023b'], rule: 'yearly' });
    await expectPolicy(ctx, { keepYears: 2 }, { kept: ['y2021b', 'y2023b'], rule: 'yearly', dryRun: false });
    await expectLeft(ctx, ['y2021b', 'y2023b']);
  });

  it('keepWithin is measured back from the newest snapshot (y = 365 d, m = 30 d)', T, async (t) => {
    // Everything is years in the past: measured from "now", nothing would be kept.
    const newest = Date.parse('2020-06-30T12:00:00Z');
    const off = {
      o0: 0,
      o1: 60 * MIN,
      o2: 719 * MIN, // 11h59m
      o3: 721 * MIN, // 12h01m
      o4: 3 * DAY,
      o5: 13 * DAY + 23 * 60 * MIN,
      o6: 14 * DAY + 60 * MIN,
      o7: 29 * DAY + 23 * 60 * MIN,
      o8: 30 * DAY + 60 * MIN,
      o9: 544 * DAY,
      o10: 546 * DAY,
    };
    const ctx = await seeded(t, Object.entries(off).map(([name, ms]) => ({ name, at: new Date(newest - ms).toISOString() })));
    const oldestFirst = (list) => [...list].reverse();
    const upTo = (n) => oldestFirst(Object.keys(off).slice(0, n + 1));
    await expectPolicy(ctx, { keepWithin: '12h' }, { kept: upTo(2), rule: 'within' });
    await expectPolicy(ctx, { keepWithin: '1d12h' }, { kept: upTo(3), rule: 'within' });
    await expectPolicy(ctx, { keepWithin: '2w' }, { kept: upTo(5), rule: 'within' });
    await expectPolicy(ctx, { keepWithin: '1y' }, { kept: upTo(8), rule: 'within' });
    await expectPolicy(ctx, { keepWithin: '6m' }, { kept: upTo(8), rule: 'within' });
    // 1y6m = 365 + 180 = 545 days (calendar arithmetic would give ~546-548 and keep o10)
    await expectPolicy(ctx, { keepWithin: '1y6m' }, { kept: upTo(9), rule: 'within' });
    await expectPolicy(ctx, { keepWithin: '30d' }, { kept: upTo(7), rule: 'within', dryRun: false });
    await expectLeft(ctx, upTo(7));
  });

  it('keepTags keeps every snapshot with any of the tag pairs', T, async (t) => {
    const ctx = await seeded(t, [
      { name: 't1', at: '2024-01-01T00:00:00Z', tags: { keep: 'yes' } },
      { name: 't2', at: '2024-01-02T00:00:00Z', tags: { keep: 'no' } },
      { name: 't3', at: '2024-01-03T00:00:00Z', tags: { other: 'yes' } },
      { name: 't4', at: '2024-01-04T00:00:00Z', tags: { keep: 'yes', x: '1' } },
      { name: 't5', at: '2024-01-05T00:00:00Z', tags: { release: 'v1' } },
      { name: 't6', at: '2024-01-06T00:00:00Z' },
      { name: 't7', at: '2024-01-07T00:00:00Z', tags: { keep: 'yes' } },
    ]);
    await expectPolicy(ctx, { keepTags: { release: 'v1' } }, { kept: ['t5'], rule: 'tags' });
    await expectPolicy(ctx, { keepTags: { keep: 'YES' } }, { kept: [], rule: 'tags' });
    await expectPolicy(
      ctx,
      { keepLast: 2, keepTags: { keep: 'yes' } },
      { kept: ['t1', 't4', 't6', 't7'], reasons: { t1: ['tags'], t4: ['tags'], t6: ['last'], t7: ['last', 'tags'] } },
    );
    await expectPolicy(ctx, { keepTags: { keep: 'yes', release: 'v1' } }, { kept: ['t1', 't4', 't5', 't7'], rule: 'tags', dryRun: false });
    await expectLeft(ctx, ['t1', 't4', 't5', 't7']);
  });

  it('filter.tags scopes the policy; other snapshots are untouched and not listed', T, async (t) => {
    const scope = { app: 'a', env: 'prod' };
    const ctx = await seeded(t, [
      { name: 'f1', at: '2024-02-01T00:00:00Z', tags: { app: 'a', env: 'prod' } },
      { name: 'f2', at: '2024-02-02T00:00:00Z', tags: { app: 'a', env: 'prod' } },
      { name: 'f3', at: '2024-02-03T00:00:00Z', tags: { app: 'a', env: 'prod', extra: '1' } },
      { name: 'f4', at: '2024-01-04T00:00:00Z', tags: { app: 'a' } },
      { name: 'f5', at: '2024-01-05T00:00:00Z', tags: { app: 'b', env: 'prod' } },
      { name: 'f6', at: '2024-01-06T00:00:00Z' },
      { name: 'f7', at: '2024-02-20T00:00:00Z', tags: { app: 'a', env: 'dev' } }, // newest overall
    ]);
    const untouched = ['f4', 'f5', 'f6', 'f7'];
    await expectPolicy(ctx, { keepLast: 2, filter: { tags: scope } }, { kept: ['f2', 'f3'], rule: 'last', untouched });
    await expectPolicy(ctx, { keepDays: 1, filter: { tags: scope } }, { kept: ['f3'], rule: 'daily', untouched });
    // within is measured from the newest snapshot IN SCOPE (f3), not from f7
    await expectPolicy(ctx, { keepWithin: '1d12h', filter: { tags: scope } }, { kept: ['f2', 'f3'], rule: 'within', untouched });
    // keepTags only applies in scope: f5 carries app=b but is out of scope, so not listed
    await expectPolicy(ctx, { keepLast: 1, keepTags: { app: 'b' }, filter: { tags: scope } }, { kept: ['f3'], rule: 'last', untouched });
    // a scope nothing matches: nothing kept, nothing removed
    await expectPolicy(ctx, { keepLast: 1, filter: { tags: { app: 'zzz' } } }, { kept: [], untouched: ctx.all });
    // filter: { tags: {} } scopes nothing out
    await expectPolicy(ctx, { keepLast: 1, filter: { tags: {} } }, { kept: ['f7'], rule: 'last' });

    await expectPolicy(ctx, { keepLast: 1, filter: { tags: scope } }, { kept: ['f3'], rule: 'last', untouched, dryRun: false });
    await expectLeft(ctx, ['f3', ...untouched]);
  });

  it('rules combine as a union; reasons list every rule that keeps a snapshot, in rule order', T, async (t) => {
    const ctx = await seeded(t, [
      { name: 's1', at: '2023-05-10T10:00:00Z', tags: { pin: '1' } },
      { name: 's2', at: '2024-01-15T10:00:00Z' },
      { name: 's3', at: '2024-02-20T10:00:00Z' },
      { name: 's4', at: '2024-03-04T09:00:00Z' },
      { name: 's5', at: '2024-03-08T09:00:00Z' },
      { name: 's6', at: '2024-03-09T10:00:00Z' },
      { name: 's7', at: '2024-03-09T18:00:00Z' },
      { name: 's8', at: '2024-03-10T08:00:00Z' },
      { name: 's9', at: '2024-03-10T20:00:00Z' },
    ]);
    const policy = {
      keepLast: 2,
      keepHourly: 1,
      keepDays: 2,
      keepWeeks: 2,
      keepMonths: 2,
      keepYears: 2,
      keepWithin: '1d',
      keepTags: { pin: '1' },
    };
    const expected = {
      kept: ['s1', 's3', 's7', 's8', 's9'],
      reasons: {
        s1: ['yearly', 'tags'],
        s3: ['weekly', 'monthly'],
        s7: ['daily'],
        s8: ['last', 'within'],
        s9: ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'within'],
      },
    };
    await expectPolicy(ctx, policy, expected);
    await expectPolicy(ctx, { keepDays: 2, keepLast: 1 }, { kept: ['s7', 's9'], reasons: { s7: ['daily'], s9: ['last', 'daily'] } });
    await expectPolicy(ctx, policy, { ...expected, dryRun: false });
    await expectLeft(ctx, expected.kept);
  });
});

// ---------------------------------------------------------------------------

async function gcRepo(t) {
  const dir = path.join(tmpFor(t), 'repo');
  const sc = await P.buildGcScenario(ContainerArchive, dir);
  return { dir, ...sc };
}

/** Per remaining pack: [packId, deadBytes, fileSize], using the unencrypted pack headers. */
function garbageShares(dir) {
  const live = new Set();
  for (const chunks of F.snapshotChunkMap(dir).values()) for (const c of chunks) live.add(c);
  const out = [];
  for (const id of F.packIds(dir)) {
    const entries = F.readPackHeader(dir, id);
    const dead = entries.filter((e) => !live.has(e.chunk)).reduce((n, e) => n + e.length, 0);
    out.push([id, dead, fs.statSync(path.join(dir, F.rel.pack(id))).size, entries.length]);
  }
  return out;
}

describe('garbage collection', () => {
  it('deletes pure-garbage packs, repacks mixed ones, frees the space; dry run predicts it and changes nothing', T, async (t) => {
    const { dir, ids, data } = await gcRepo(t);
    const dataDir = path.join(dir, 'packs', 'data');
    const repo = await openRepo(t, dir);
    const packsBefore = F.packIds(dir);
    const packBytesBefore = P.bytesUnder(dataDir, '.pack');
    const dataBytesBefore = P.bytesUnder(dataDir);

    const fpBefore = P.fingerprint(dir);
    const listBefore = await repo.listSnapshots();
    const dry = await repo.prune({ keepLast: 1, groupBy: false }, true);
    P.assertPruneShape(dry, true);
    P.assertSameFingerprint(P.fingerprint(dir), fpBefore, 'after a dry run');
    assert.deepEqual(await repo.listSnapshots(), listBefore, 'a dry run removes no snapshot');
    assert.deepEqual(dry.keptSnapshots, [ids.new]);
    assert.deepEqual([...dry.removedSnapshots].sort(), [ids.lone, ids.old].sort());
    assert.deepEqual(dry.reasons, { [ids.new]: ['last'] });
    assert.ok(dry.repackedPacks >= 1, `packs that mix old and new chunks must be repacked: ${JSON.stringify(dry)}`);
    assert.ok(dry.removedPacks > dry.repackedPacks, `the lone snapshot's packs are pure garbage and deleted: ${JSON.stringify(dry)}`);
    assert.ok(dry.freedBytes > 0);

    // maxUnused: number and percentage string agree; 1 never repacks; 0 repacks at least as much
    const variants = {};
    for (const m of [undefined, 0.1, '10%', 0, 0.5, 1, '100%']) {
      const r = await repo.prune(m === undefined ? { keepLast: 1, groupBy: false } : { keepLast: 1, groupBy: false, maxUnused: m }, true);
      P.assertPruneShape(r, true);
      variants[String(m)] = r;
    }
    assert.deepEqual(variants['10%'], variants['0.1'], "maxUnused '10%' equals 0.1");
    assert.deepEqual(variants.undefined, variants['0.1'], 'maxUnused defaults to 0.1');
    assert.deepEqual(variants['100%'], variants['1'], "maxUnused '100%' equals 1");
    assert.equal(variants['1'].repackedPacks, 0, 'maxUnused 1: no pack is repacked');
    assert.ok(variants['1'].removedPacks >= 1, 'maxUnused 1 still deletes packs that hold only garbage');
    assert.ok(variants['0'].repackedPacks >= variants['0.1'].repackedPacks);
    assert.ok(variants['0.1'].repackedPacks >= variants['0.5'].repackedPacks);
    assert.ok(variants['0.5'].repackedPacks >= variants['1'].repackedPacks);
    assert.ok(variants['0.1'].freedBytes > variants['1'].freedBytes, 'repacking frees more than deleting alone');
    P.assertSameFingerprint(P.fingerprint(dir), fpBefore, 'after all the dry runs');

    const real = await repo.prune({ keepLast: 1, groupBy: false });
    P.assertPruneShape(real, false);
    t.diagnostic(`dry: ${JSON.stringify({ ...dry, reasons: undefined })}; real: ${JSON.stringify({ ...real, reasons: undefined })}`);
    assert.deepEqual(real.keptSnapshots, dry.keptSnapshots, 'dry run and real run keep the same snapshots');
    assert.deepEqual(real.removedSnapshots, dry.removedSnapshots, 'dry run predicts removedSnapshots exactly');
    assert.deepEqual(real.reasons, dry.reasons);
    assert.equal(real.removedPacks, dry.removedPacks, 'dry run predicts removedPacks exactly');
    assert.equal(real.repackedPacks, dry.repackedPacks, 'dry run predicts repackedPacks');
    assert.ok(
      Math.abs(real.freedBytes - dry.freedBytes) <= 0.01 * Math.abs(real.freedBytes),
      `dry run freedBytes ${dry.freedBytes} within 1% of the real ${real.freedBytes}`,
    );

    // on disk
    const packsAfter = F.packIds(dir);
    const packBytesAfter = P.bytesUnder(dataDir, '.pack');
    const dataBytesAfter = P.bytesUnder(dataDir);
    t.diagnostic(`packs ${packsBefore.length} -> ${packsAfter.length}, pack bytes ${packBytesBefore} -> ${packBytesAfter}, packs/data ${dataBytesBefore} -> ${dataBytesAfter}`);
    const gone = packsBefore.filter((p) => !packsAfter.includes(p));
    const added = packsAfter.filter((p) => !packsBefore.includes(p));
    assert.equal(gone.length, real.removedPacks, 'removedPacks pack files are gone from packs/data');
    assert.ok(added.length >= 1, 'repacking wrote at least one new pack');
    assert.equal(packBytesBefore - packBytesAfter, real.freedBytes, 'freedBytes = pack bytes deleted minus pack bytes written');
    assert.ok(dataBytesBefore - dataBytesAfter >= real.freedBytes, 'packs/data shrinks by at least freedBytes (pack + idx files)');
    // 256 KiB of the lone snapshot and 512 KiB of b-data are unreferenced now
    assert.ok(real.freedBytes >= 512 * KiB, `at least 512 KiB of incompressible garbage is freed, got ${real.freedBytes}`);
    assert.deepEqual(F.idxIds(dir), packsAfter, 'every remaining pack has its .idx sidecar, and no orphan sidecar remains');
    assert.deepEqual(F.tmpLeftovers(dir), []);
    assert.deepEqual(F.lockFiles(dir), [], 'prune leaves no lock record');

    // what remains: no pack holds only garbage, and none more than maxUnused
    for (const [id, dead, size, n] of garbageShares(dir)) {
      assert.ok(dead < size && n > 0, `pack ${id} holds only garbage after prune`);
      assert.ok(dead / size <= 0.1, `pack ${id} is ${((100 * dead) / size).toFixed(1)}% garbage after prune (maxUnused 10%)`);
    }
    // parity covers every remaining pack
    const grouped = new Set(F.parityGroups(dir).flatMap((g) => g.packs));
    for (const p of packsAfter) assert.ok(grouped.has(p), `pack ${p} is in a parity group`);

    const v = await F.assertHealthy(repo, 'full', 'after prune');
    assert.equal(v.checked.snapshots, 1);
    assert.equal(v.checked.packs, packsAfter.length, 'verify(full) checked every remaining pack');
    assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), [ids.new]);
    await P.assertRestoresBuffer(repo, ids.new, data.get(ids.new), 'kept snapshot');
    for (const id of [ids.lone, ids.old]) await rejectsWithCode(() => repo.restore(id), 'ERR_SNAPSHOT_NOT_FOUND');

    // ingest after prune: the pruned data again (its chunks are gone, dedup must not point at
    // them), in this instance and in a fresh one
    const again = await repo.ingest(F.streamOf(data.get(ids.old)));
    await P.assertRestoresBuffer(repo, again.id, data.get(ids.old), 'old data re-ingested');
    const fresh = await openRepo(t, dir);
    const again2 = await fresh.ingest(F.streamOf(data.get(ids.lone)));
    await P.assertRestoresBuffer(fresh, again2.id, data.get(ids.lone), 'lone data re-ingested');
    await P.assertRestoresBuffer(fresh, ids.new, data.get(ids.new), 'kept snapshot from a fresh instance');
    await F.assertHealthy(fresh, 'full', 'after ingests following prune');
  });

  it('an encrypted repository: repacked (sealed) blobs stay readable, verify(full) is ok', T, async (t) => {
    const dir = path.join(tmpFor(t), 'repo');
    const passphrase = 'prune test passphrase';
    const { ids, data } = await P.buildGcScenario(ContainerArchive, dir, 7, { passphrase });
    const repo = await openRepo(t, dir, { passphrase });
    const dry = await repo.prune({ keepLast: 1, groupBy: false }, true);
    const before = F.packIds(dir).length;
    const r = await repo.prune({ keepLast: 1, groupBy: false });
    P.assertPruneShape(r, false);
    assert.ok(r.repackedPacks >= 1, `mixed packs are repacked: ${JSON.stringify(r)}`);
    assert.equal(r.removedPacks, dry.removedPacks);
    assert.deepEqual(r.removedSnapshots, dry.removedSnapshots);
    assert.ok(F.packIds(dir).length < before);
    await F.assertHealthy(repo, 'full', 'after prune of an encrypted repository');
    await P.assertRestoresBuffer(repo, ids.new, data.get(ids.new), 'kept snapshot');
    await repo.close();
    const again = await openRepo(t, dir, { passphrase });
    await P.assertRestoresBuffer(again, ids.new, data.get(ids.new), 'kept snapshot, fresh instance');
    const snap = await again.ingest(F.streamOf(data.get(ids.old)));
    await P.assertRestoresBuffer(again, snap.id, data.get(ids.old), 'pruned data re-ingested');
    await F.assertHealthy(again, 'full', 'after a new ingest');
  });

  it('a real prune sends prune:progress events ({ operation: "prune", ... }) before it resolves', T, async (t) => {
    const { dir, ids, data } = await gcRepo(t);
    const repo = await openRepo(t, dir);
    const events = [];
    repo.on('prune:progress', (e) => events.push(e));
    const other = [];
    for (const ev of ['ingest:progress', 'verify:progress']) repo.on(ev, (e) => other.push([ev, e]));
    await repo.prune({ keepLast: 1, groupBy: false }, true);
    const dryEvents = events.length;
    const r = await repo.prune({ keepLast: 1, groupBy: false });
    assert.ok(r.repackedPacks >= 1);
    const got = events.slice(dryEvents);
    assert.ok(got.length >= 1, 'at least one prune:progress event arrives before prune() resolves');
    for (const e of got) {
      assert.equal(e.operation, 'prune');
      assert.ok(e.percentage === null || (typeof e.percentage === 'number' && e.percentage >= 0 && e.percentage <= 100), `percentage: ${e.percentage}`);
      assert.ok(Number.isSafeInteger(e.bytesProcessed) && e.bytesProcessed >= 0, `bytesProcessed: ${e.bytesProcessed}`);
      assert.equal(typeof e.message, 'string');
      assert.ok(e.message.length > 0);
    }
    assert.deepEqual(other, [], 'prune sends no ingest/verify events');
    t.diagnostic(`events: ${got.map((e) => `${e.message}(${e.percentage})`).join(', ')}`);
    await P.assertRestoresBuffer(repo, ids.new, data.get(ids.new));
  });

  it('prune keeps data of out-of-scope snapshots that share chunks with removed ones', T, async (t) => {
    // `old` is out of scope (filter role=lone), so its chunks stay live although `lone` goes.
    const { dir, ids, data } = await gcRepo(t);
    const repo = await openRepo(t, dir);
    // one more in-scope snapshot sharing all of `old`'s data
    const twin = await repo.ingest(F.streamOf(data.get(ids.old)), { createdAt: '2023-12-01T00:00:00Z', tags: { role: 'lone' } });
    const r = await repo.prune({ keepWithin: '1h', filter: { tags: { role: 'lone' } } });
    assert.deepEqual(r.keptSnapshots, [ids.lone]);
    assert.deepEqual(r.removedSnapshots, [twin.id]);
    assert.equal(r.removedPacks, 0, 'every chunk of the removed twin is still used by an out-of-scope snapshot');
    assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), [ids.lone, ids.old, ids.new]);
    for (const id of [ids.lone, ids.old, ids.new]) await P.assertRestoresBuffer(repo, id, data.get(id));
    await F.assertHealthy(repo, 'full', 'after a scoped prune');
  });
});

// ---------------------------------------------------------------------------

// argv: <package dir> <fault-helpers> <repo dir> <JSON job>
// job: { op: 'ingest', seed, size, tags, lockTimeoutMs? } | { op: 'prune', policy }.
// Prints READY, waits for a stdin line (GO), runs the job, prints OK <json> or ERR <code>.
const JOB_CHILD = `
const [pkg, fh, dir, jobJson] = process.argv.slice(1);
const { ContainerArchive } = require(pkg);
const F = require(fh);
const { Readable } = require('node:stream');
const readline = require('node:readline');
(async () => {
  const job = JSON.parse(jobJson);
  const repo = await ContainerArchive.open(dir);
  process.stdout.write('READY\\n');
  await new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin });
    rl.once('line', () => { rl.close(); resolve(); });
  });
  let out;
  try {
    if (job.op === 'ingest') {
      const opts = { tags: job.tags };
      if (job.lockTimeoutMs !== undefined) opts.lockTimeoutMs = job.lockTimeoutMs;
      const parts = job.parts || [[job.seed, job.size]];
      function* all() { for (const [seed, size] of parts) yield* F.genPieces(seed, size, 64 * 1024); }
      const snap = await repo.ingest(Readable.from(all()), opts);
      out = 'OK ' + JSON.stringify({ id: snap.id });
    } else {
      out = 'OK ' + JSON.stringify(await repo.prune(job.policy));
    }
  } catch (e) {
    out = 'ERR ' + e.code + ' ' + String(e.message).replace(/\\n/g, ' ');
  }
  await repo.close();
  process.stdout.write(out + '\\n');
  process.exit(0);
})().catch((e) => {
  process.stderr.write(((e && e.stack) || String(e)) + '\\ncode=' + (e && e.code) + '\\n');
  process.exit(1);
});
`;

function startJob(t, dir, job) {
  const c = F.spawnNode(JOB_CHILD, [F.PKG_DIR, F.FAULT_HELPERS, dir, JSON.stringify(job)]);
  t.after(() => {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  });
  return c;
}

async function jobResult(c) {
  const ex = await c.exit;
  assert.deepEqual(ex, { code: 0, signal: null }, `job child failed; stderr:\n${c.stderr()}`);
  const line = c.lines.find((l) => l.startsWith('OK ') || l.startsWith('ERR '));
  assert.ok(line, `job child printed no result: ${c.lines.join(' | ')}`);
  return line;
}

describe('prune and locks', () => {
  it('a live foreign shared lock makes prune reject ERR_LOCKED (nothing changes); with lockTimeoutMs it waits, then succeeds', T, async (t) => {
    const ctx = await seeded(t, [
      { name: 'a', at: '2024-01-01T00:00:00Z' },
      { name: 'b', at: '2024-01-02T00:00:00Z' },
      { name: 'c', at: '2024-01-03T00:00:00Z' },
    ]);
    const holder = P.liveChild();
    t.after(() => holder.kill());
    const foreign = F.writeLock(ctx.dir, { exclusive: false, pid: holder.pid });
    const foreignName = path.basename(foreign);
    const before = P.fingerprint(ctx.dir);

    const t0 = Date.now();
    const err = await rejectsWithCode(() => ctx.repo.prune({ keepLast: 1 }), 'ERR_LOCKED');
    assert.ok(Date.now() - t0 < 10000, 'without lockTimeoutMs prune fails at once');
    assert.ok(err.message.includes(String(holder.pid)), `ERR_LOCKED names the holder pid ${holder.pid}: ${err.message}`);
    assert.ok(err.message.includes(os.hostname()), `ERR_LOCKED names the holder host: ${err.message}`);
    P.assertSameFingerprint(P.fingerprint(ctx.dir), before, 'after prune was refused');
    assert.equal((await ctx.repo.listSnapshots()).length, 3);

    // Now wait: the foreign record is removed once prune's own attempt record shows up in locks/.
    let settledAtRemoval = null;
    const watch = P.onNewLockRecord(ctx.dir, foreignName, () => {
      settledAtRemoval = state.settled;
      fs.unlinkSync(foreign);
    });
    t.after(() => watch.close());
    const waiting = ctx.repo.prune({ keepLast: 1, lockTimeoutMs: 20000 });
    const state = P.track(waiting);
    const r = await waiting;
    watch.close();
    assert.ok(watch.fired(), 'prune wrote an attempt record while waiting');
    assert.equal(settledAtRemoval, false, 'prune was still waiting when the foreign lock went away');
    P.assertPruneShape(r, false);
    assert.deepEqual(names(ctx, r.keptSnapshots), ['c']);
    assert.deepEqual(names(ctx, r.removedSnapshots).sort(), ['a', 'b']);
    assert.deepEqual(F.lockFiles(ctx.dir), [], 'no lock record is left');
    await expectLeft(ctx, ['c']);
  });

  it('an ingest in another process fails ERR_LOCKED against a live exclusive lock, or waits with lockTimeoutMs and keeps its data', T, async (t) => {
    const { dir, ids, data } = await gcRepo(t);
    const holder = P.liveChild();
    t.after(() => holder.kill());
    const foreign = F.writeLock(dir, { exclusive: true, pid: holder.pid });
    const before = P.fingerprint(dir);

    const c1 = startJob(t, dir, { op: 'ingest', seed: 9001, size: 300 * KiB, tags: { job: 'nowait' } });
    await c1.waitLine(/^READY$/);
    c1.child.stdin.write('GO\n');
    const line1 = await jobResult(c1);
    assert.match(line1, /^ERR ERR_LOCKED /, `the ingest must report ERR_LOCKED: ${line1}`);
    assert.ok(line1.includes(String(holder.pid)), `ERR_LOCKED names the holder: ${line1}`);
    P.assertSameFingerprint(P.fingerprint(dir), before, 'after the refused ingest');

    const c2 = startJob(t, dir, { op: 'ingest', seed: 9002, size: 300 * KiB, tags: { job: 'wait' }, lockTimeoutMs: 20000 });
    await c2.waitLine(/^READY$/);
    const watch = P.onNewLockRecord(dir, path.basename(foreign), () => fs.unlinkSync(foreign));
    t.after(() => watch.close());
    c2.child.stdin.write('GO\n');
    const line2 = await jobResult(c2);
    watch.close();
    assert.ok(watch.fired(), 'the waiting ingest wrote an attempt record');
    assert.match(line2, /^OK /, `the waiting ingest succeeds once the lock is gone: ${line2}`);
    const { id } = JSON.parse(line2.slice(3));

    const repo = await openRepo(t, dir);
    await F.assertRestoresDigest(repo, id, F.genDigest(9002, 300 * KiB, 64 * KiB));
    for (const [sid, buf] of data) await P.assertRestoresBuffer(repo, sid, buf);
    assert.equal((await repo.listSnapshots()).length, 4);
    await F.assertHealthy(repo, 'full');
    assert.ok(ids.new);
  });

  it('prune and an ingest of the pruned data in two processes at once: both succeed, nothing is lost', T, async (t) => {
    const { dir, ids, data, parts } = await gcRepo(t);
    // The ingest re-stores exactly the data the prune throws away (the b-parts of `old`, and
    // `lone`): whichever runs first, the ingest must not end up referencing deleted chunks.
    const jobParts = [];
    for (let i = 0; i < 8; i++) jobParts.push([200 + i, 64 * KiB]);
    jobParts.push([300, 256 * KiB + 12]);
    const expected = Buffer.concat([...parts.b, data.get(ids.lone)]);
    const policy = { keepTags: { role: 'new', job: 'concurrent' }, lockTimeoutMs: 60000 };
    const pruner = startJob(t, dir, { op: 'prune', policy });
    const ingester = startJob(t, dir, { op: 'ingest', parts: jobParts, tags: { job: 'concurrent' }, lockTimeoutMs: 60000 });
    await Promise.all([pruner.waitLine(/^READY$/), ingester.waitLine(/^READY$/)]);
    pruner.child.stdin.write('GO\n');
    ingester.child.stdin.write('GO\n');
    const [pl, il] = await Promise.all([jobResult(pruner), jobResult(ingester)]);
    assert.match(pl, /^OK /, `prune: ${pl}`);
    assert.match(il, /^OK /, `ingest: ${il}`);
    const pr = JSON.parse(pl.slice(3));
    const { id } = JSON.parse(il.slice(3));
    assert.deepEqual([...pr.removedSnapshots].sort(), [ids.lone, ids.old].sort());
    const ingestFirst = pr.keptSnapshots.includes(id);
    t.diagnostic(`the ingest ran ${ingestFirst ? 'before' : 'after'} the prune; prune: ${JSON.stringify({ ...pr, reasons: undefined })}`);
    assert.deepEqual(pr.keptSnapshots, ingestFirst ? [ids.new, id] : [ids.new]);

    const repo = await openRepo(t, dir);
    assert.deepEqual((await repo.listSnapshots()).map((s) => s.id), [ids.new, id]);
    await P.assertRestoresBuffer(repo, id, expected, 'concurrently ingested snapshot');
    await P.assertRestoresBuffer(repo, ids.new, data.get(ids.new), 'kept snapshot');
    await F.assertHealthy(repo, 'full', 'after concurrent prune and ingest');
  });
});
