'use strict';

// Issue 8, points 2, 8 and 12 through the public API: plain-repository metadata carries
// checksums that verify checks, config.json and its copy are decided by their checksums,
// and values read from plaintext files are range-checked (never ERR_INTERNAL, never a hang).

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { KiB, tmpFor, randomBytes, chunkedStream, assertRestores, loadPackage } = require('./helpers');
const F = require('./fault-helpers');

const { ContainerArchive } = loadPackage();

const T = { timeout: 120000 };
const PASSPHRASE = 'hardening passphrase';

async function smallRepo(t, options = {}) {
  const dir = path.join(tmpFor(t), 'repo');
  const repo = await ContainerArchive.init(dir, { ...F.SMALL_REPO, ...options });
  const data = randomBytes(300 * KiB + 1, 7);
  let snap;
  try {
    snap = await repo.ingest(chunkedStream(data, 1));
  } finally {
    await repo.close();
  }
  return { dir, data, snap };
}

async function withRepo(dir, options, fn) {
  const repo = await ContainerArchive.open(dir, options);
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

describe('metadata checksums and range checks', () => {
  it('a group manifest field edited in a plain repository -> quick verify reports it, repair keeps packs repairable', T, async (t) => {
    const { dir, data, snap } = await smallRepo(t);
    const [name] = F.groupFiles(dir);
    const file = path.join(dir, 'packs', 'parity', name);
    const group = JSON.parse(F.unsealPlain(F.AAD.parity, fs.readFileSync(file)).toString('utf8'));
    group.members[0].sha256 = `${group.members[0].sha256[0] === '0' ? '1' : '0'}${group.members[0].sha256.slice(1)}`;
    fs.writeFileSync(file, F.sealPlain(F.AAD.parity, Buffer.from(JSON.stringify(group))));
    await withRepo(dir, {}, async (repo) => {
      F.assertIssue(await F.verify(repo, 'quick'), { kind: 'parity', mentions: [name] });
      const r = await repo.repair();
      assert.deepEqual(r.unrecoverable, [], 'a healthy pack is never declared lost');
      await F.assertHealthy(repo, 'full');
    });
    // A single pack loss afterwards is still rebuilt byte for byte.
    const victim = path.join(dir, F.rel.pack(F.packIds(dir)[0]));
    const original = fs.readFileSync(victim);
    fs.unlinkSync(victim);
    await withRepo(dir, {}, async (repo) => {
      const r = await repo.repair();
      assert.deepEqual(r.unrecoverable, []);
      assert.ok(fs.readFileSync(victim).equals(original));
      await assertRestores(repo, snap.id, data);
    });
  });

  it('config.json version changed to 0, 3 or 9 -> opens via the copy; repair fixes config.json only', T, async (t) => {
    const { dir, data, snap } = await smallRepo(t);
    const cfgFile = path.join(dir, 'config.json');
    const copyFile = path.join(dir, 'packs', 'parity', 'config.json');
    const original = fs.readFileSync(cfgFile);
    for (const version of [0, 3, 9]) {
      fs.writeFileSync(cfgFile, original.toString('utf8').replace('"version": 2', `"version": ${version}`));
      await withRepo(dir, {}, async (repo) => {
        F.assertIssue(await F.verify(repo, 'quick'), { kind: 'config', mentions: ['config.json'] });
        await repo.repair();
        assert.ok(fs.readFileSync(cfgFile).equals(original), `version ${version}: config.json rewritten`);
        assert.ok(fs.readFileSync(copyFile).equals(original), `version ${version}: the copy untouched`);
        await assertRestores(repo, snap.id, data);
      });
    }
  });

  it('compression level 1000 in config.json -> the intact copy is used, ingest works', T, async (t) => {
    const { dir } = await smallRepo(t);
    const cfgFile = path.join(dir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.compression.level = 1000;
    fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
    await withRepo(dir, {}, async (repo) => {
      const more = randomBytes(100 * KiB, 9);
      const s = await repo.ingest(chunkedStream(more, 1));
      await assertRestores(repo, s.id, more);
      F.assertIssue(await F.verify(repo, 'quick'), { kind: 'config', mentions: ['config.json'] });
    });
  });

  it('a planted key file with heavy Argon2id parameters -> open stays fast, verify reports it', T, async (t) => {
    const { dir } = await smallRepo(t, { passphrase: PASSPHRASE });
    const [keyName] = fs.readdirSync(path.join(dir, 'keys'));
    const key = JSON.parse(fs.readFileSync(path.join(dir, 'keys', keyName), 'utf8'));
    key.id = 'f'.repeat(32);
    key.kdf.memoryKib = 2 * 1024 * 1024;
    key.kdf.iterations = 2;
    const k = key.kdf;
    const w = key.wrappedKey;
    // Key file version 2 (FORMAT.md): the checksum covers the canonical string and the mac
    // (left as it was: it no longer verifies, as for any planted file).
    const canonical = [key.version, key.id, key.createdAt, key.host, k.algorithm, k.version, k.memoryKib, k.iterations, k.parallelism, k.salt, w.algorithm, w.nonce, w.ciphertext].join(':');
    key.checksum = F.sha256(Buffer.from(`${canonical}:${key.mac}`));
    const planted = `keys/${key.id}.json`;
    fs.writeFileSync(path.join(dir, planted), JSON.stringify(key, null, 2));
    const started = Date.now();
    await withRepo(dir, { passphrase: PASSPHRASE }, async (repo) => {
      assert.ok(Date.now() - started < 3000, `open took ${Date.now() - started} ms`);
      F.assertIssue(await F.verify(repo, 'quick'), { kind: 'key', mentions: [planted, 'unknown key file'] });
    });
  });
});
