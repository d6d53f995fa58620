'use strict';

// The two places a repository can live, behind one shape, so a suite can run
// the same scenario on a local directory and on a bucket of a real Garage
// server (issue 10's backend matrix). A backend gives fresh repository
// locations with the options and CLI environment that reach them, and raw
// access to the repository's files (keys are the layout's relative paths)
// for tests that inspect or damage them behind the engine's back.

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');

const { makeTmp, removeTmp } = require('./helpers');
const { startGarage } = require('./garage');
const { s3Client } = require('./s3-client');

/** Raw files of a local repository at `root`. */
function localFiles(root) {
  return {
    async list(dir) {
      const full = path.join(root, dir);
      if (!fs.existsSync(full)) return [];
      return fs.readdirSync(full, { withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.tmp-')).map((e) => e.name).sort();
    },
    async read(key) {
      const full = path.join(root, key);
      return fs.existsSync(full) ? fs.readFileSync(full) : null;
    },
    async write(key, bytes) {
      fs.writeFileSync(path.join(root, key), bytes);
    },
    async del(key) {
      fs.rmSync(path.join(root, key), { force: true });
    },
    /** Every file, as relative keys. */
    async all() {
      const out = [];
      const walk = (dir) => {
        for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
          const key = dir ? `${dir}/${e.name}` : e.name;
          if (e.isDirectory()) walk(key);
          else out.push(key);
        }
      };
      walk('');
      return out.sort();
    },
  };
}

/** Raw objects of a repository under `prefix` in the Garage `g`'s bucket. */
function bucketFiles(g, prefix) {
  const client = s3Client(g);
  const full = (key) => `${prefix}/${key}`;
  return {
    async list(dir) {
      const keys = await client.list(`${full(dir)}/`);
      return keys.map((k) => k.slice(full(dir).length + 1)).filter((k) => !k.includes('/')).sort();
    },
    read: (key) => client.get(full(key)),
    write: (key, bytes) => client.put(full(key), bytes),
    del: (key) => client.del(full(key)),
    async all() {
      return (await client.list(`${prefix}/`)).map((k) => k.slice(prefix.length + 1)).sort();
    },
  };
}

const local = {
  name: 'local',
  async start() {},
  async stop() {},
  /** A fresh (not yet created) repository location, removed after the test. */
  fresh(t) {
    const tmp = makeTmp();
    t.after(() => removeTmp(tmp));
    const location = path.join(tmp, 'repo');
    return { location, options: {}, env: {}, files: localFiles(location) };
  },
};

/** The S3 backend on a Garage node started by `start()`; null when S3 tests are skipped. */
function s3Backend({ nodes = 1 } = {}) {
  const backend = {
    name: 's3',
    garage: null,
    async start() {
      backend.garage = await startGarage({ nodes });
      return backend.garage;
    },
    async stop() {
      if (backend.garage) await backend.garage.stop();
    },
    fresh(t) {
      const g = backend.garage;
      const cacheDir = makeTmp();
      t.after(() => removeTmp(cacheDir));
      const prefix = `repo-${crypto.randomBytes(6).toString('hex')}`;
      const storage = { endpoint: g.endpoint, region: g.region, accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey };
      return {
        location: `s3://${g.bucket}/${prefix}`,
        // Each test its own metadata cache: the suites run through it, as users do.
        options: { storage, cacheDir },
        // The CLI's default cache directory is under XDG_CACHE_HOME: this test's own.
        env: { ...s3Env(g), XDG_CACHE_HOME: cacheDir },
        files: bucketFiles(g, prefix),
      };
    },
  };
  return backend;
}

/** The AWS_* variables that point the CLI (or an SDK) at the Garage `g`. */
function s3Env(g) {
  return { AWS_ACCESS_KEY_ID: g.accessKeyId, AWS_SECRET_ACCESS_KEY: g.secretAccessKey, AWS_REGION: g.region, AWS_ENDPOINT_URL: g.endpoint };
}

module.exports = { local, s3Backend, s3Env, localFiles, bucketFiles };
