'use strict';
// The S3 section of `npm run bench` (issue 10): our ingest, re-ingest,
// restore and full verify against a repository in a local Garage bucket, side
// by side with restic on the same server (`restic -r s3:...`: backup --stdin,
// backup again, dump, check --read-data), in one run. Each of our steps runs
// in a fresh process (bench/worker.js) timed whole, spawn to exit (Node
// start-up and open() included), as restic is; the ratios use those times.
// The step alone (after open()) is printed beside them.
// The S3 requests of every step are counted from Garage's own metrics.
//
//   node bench/s3.js <data file>      (bench/bench.js runs it last; BENCH_SKIP_S3=1 skips it)

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { startGarage } = require('../__test__/garage');

const WORKER = path.join(__dirname, 'worker.js');
const log = (msg) => process.stderr.write(`${msg}\n`);
const mb = (bytes) => bytes / 1e6;
const fmt = (n, d = 1) => (n == null || Number.isNaN(n) ? '-' : n.toFixed(d));

/** Total S3 API requests Garage has served (all nodes: one here). */
function requestCount(g) {
  return new Promise((resolve, reject) => {
    http.get(`${g.nodes[0].adminEndpoint}/metrics`, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let total = 0;
        for (const line of text.split('\n')) {
          const m = /^api_s3_request_counter\{[^}]*\}\s+([0-9.e+]+)/.exec(line);
          if (m) total += Number(m[1]);
        }
        resolve(total);
      });
    }).on('error', reject);
  });
}

/** One step in a fresh process; `wall` is the whole process, spawn to exit, as restic is timed. */
function runWorker(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [WORKER, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const line = (r.stdout || '').trim().split('\n').pop();
  try {
    return { ...JSON.parse(line), wall };
  } catch {
    return { ok: false, error: { message: `worker exited ${r.status} without a result` } };
  }
}

async function counted(g, fn) {
  const before = await requestCount(g);
  const res = fn();
  res.requests = (await requestCount(g)) - before;
  return res;
}

/** Steps that change nothing (restore, verify) run this often; the median counts. */
const READ_ROUNDS = 3;

/**
 * The median round of `fn` (by seconds), with the requests of one round. A
 * failed round is the result. On a shared 2-core VM one run of a 1 s step
 * varies by ±20%; the median of three is what the ratios use.
 */
async function medianOf(g, rounds, fn) {
  const runs = [];
  for (let i = 0; i < rounds; i++) {
    const res = await counted(g, fn);
    if (!res.ok) return res;
    runs.push(res);
  }
  const whole = (r) => r.wall ?? r.seconds;
  runs.sort((a, b) => whole(a) - whole(b));
  const mid = runs[Math.floor(runs.length / 2)];
  return rounds > 1 ? { ...mid, rounds: runs.map(whole) } : mid;
}

async function benchS3(dataFile, resticBin) {
  const bytes = fs.statSync(dataFile).size;
  const g = await startGarage();
  const out = { dataBytes: bytes, ours: {}, restic: null };
  try {
    const storage = { endpoint: g.endpoint, region: g.region, accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey };
    const repo = `s3://${g.bucket}/ours`;
    const cacheDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'ca-bench-cache-'));
    const openOptions = { passphrase: 'bench', storage, cacheDir };
    const init = runWorker({ op: 'init', repo, initOptions: { passphrase: 'bench', compression: 'zstd', storage, cacheDir } });
    if (!init.ok) throw new Error(`init failed: ${JSON.stringify(init.error)}`);
    const step = async (key, args, stepBytes, rounds = 1) => {
      const res = await medianOf(g, rounds, () => runWorker({ repo, openOptions, ...args }));
      out.ours[key] = { ok: !!res.ok, seconds: res.wall, stepSeconds: res.seconds, mbps: res.ok ? mb(stepBytes) / res.wall : null, peakRssMiB: res.maxRssKiB / 1024, requests: res.requests, error: res.error };
      log(`[ours s3] ${key}: ${res.ok ? `${fmt(res.wall, 2)} s whole process (${fmt(res.seconds, 2)} s after open()), ${fmt(out.ours[key].mbps)} MB/s, ${res.requests} requests, peak RSS ${fmt(res.maxRssKiB / 1024, 0)} MiB${res.rounds ? ` (median of ${res.rounds.map((x) => fmt(x, 2)).join(', ')})` : ''}` : `FAILED ${JSON.stringify(res.error)}`}`);
      return res;
    };
    // A fresh Garage serves its first gigabyte a quarter slower (1 GiB ingests
    // measured 8.3-8.9 s first, 6.5-6.8 s after): an untimed ingest into
    // another prefix warms it, so neither side's first step pays for that
    // (restic runs after ours and always found it warm).
    const warmRepo = `s3://${g.bucket}/warm-up`;
    const warmCache = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'ca-bench-warm-'));
    runWorker({ op: 'init', repo: warmRepo, initOptions: { passphrase: 'bench', compression: 'zstd', storage, cacheDir: warmCache } });
    runWorker({ op: 'ingest', repo: warmRepo, openOptions: { ...openOptions, cacheDir: warmCache }, file: dataFile, itemName: 'data.tar' });
    fs.rmSync(warmCache, { recursive: true, force: true });
    const first = await step('ingest1', { op: 'ingest', file: dataFile, itemName: 'data.tar' }, bytes);
    await step('ingest2', { op: 'ingest', file: dataFile, itemName: 'data.tar' }, bytes);
    await step('restore', { op: 'restore', snapshotId: first.snapshotId, expectedBytes: bytes }, bytes, READ_ROUNDS);
    await step('check', { op: 'verify', level: 'full' }, bytes, READ_ROUNDS);
    fs.rmSync(cacheDir, { recursive: true, force: true });
    if (resticBin) out.restic = await benchRestic(g, resticBin, dataFile, bytes);
  } finally {
    await g.stop();
  }
  report(out);
  return out;
}

async function benchRestic(g, bin, dataFile, bytes) {
  const cacheDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'restic-bench-cache-'));
  const env = {
    ...process.env,
    RESTIC_PASSWORD: 'bench',
    RESTIC_REPOSITORY: `s3:${g.endpoint}/${g.bucket}/restic`,
    AWS_ACCESS_KEY_ID: g.accessKeyId,
    AWS_SECRET_ACCESS_KEY: g.secretAccessKey,
    AWS_DEFAULT_REGION: g.region,
  };
  const run = (args, { stdinFile, stdoutFile } = {}) => {
    const fin = stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore';
    const fout = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'pipe';
    const t0 = process.hrtime.bigint();
    const r = spawnSync(bin, ['--cache-dir', cacheDir, ...args], { env, stdio: [fin, fout, 'pipe'], encoding: 'utf8', maxBuffer: 256 << 20 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (typeof fin === 'number') fs.closeSync(fin);
    if (typeof fout === 'number') fs.closeSync(fout);
    return { ok: r.status === 0, seconds, stdout: r.stdout || '', error: r.status === 0 ? undefined : (r.stderr || '').trim().split('\n').slice(-3).join(' | ') };
  };
  const out = { version: run(['version']).stdout.trim() };
  const init = run(['init']);
  if (!init.ok) {
    log(`[restic s3] init failed: ${init.error}`);
    return { ...out, error: init.error };
  }
  const startups = [0, 1, 2].map(() => run(['cat', 'config']).seconds);
  out.startupSeconds = Math.min(...startups);
  log(`[restic s3] start-up (cat config): ${fmt(out.startupSeconds, 2)} s, included in each of its steps`);
  const step = async (key, args, opts, rounds = 1) => {
    const res = await medianOf(g, rounds, () => run(args, opts));
    out[key] = { ok: res.ok, seconds: res.seconds, mbps: res.ok ? mb(bytes) / res.seconds : null, requests: res.requests, error: res.error };
    log(`[restic s3] ${key}: ${res.ok ? `${fmt(res.seconds, 2)} s, ${fmt(out[key].mbps)} MB/s, ${res.requests} requests${res.rounds ? ` (median of ${res.rounds.map((x) => fmt(x, 2)).join(', ')})` : ''}` : `FAILED ${res.error}`}`);
    return res;
  };
  await step('ingest1', ['backup', '--stdin', '--stdin-filename', 'data.tar', '--json'], { stdinFile: dataFile });
  await step('ingest2', ['backup', '--stdin', '--stdin-filename', 'data.tar', '--json'], { stdinFile: dataFile });
  await step('restore', ['dump', 'latest', 'data.tar'], { stdoutFile: '/dev/null' }, READ_ROUNDS);
  await step('check', ['check', '--read-data'], {}, READ_ROUNDS);
  fs.rmSync(cacheDir, { recursive: true, force: true });
  return out;
}

function report(out) {
  const rows = [['ingest1', 'ingest (new)'], ['ingest2', 'ingest again'], ['restore', 'restore / dump'], ['check', 'verify full / check --read-data']];
  log('');
  log(`S3 (local Garage, one node), ${fmt(mb(out.dataBytes), 0)} MB, zstd+encrypted vs restic, whole processes on both sides:`);
  log(`${'step'.padEnd(34)} ${'ours MB/s'.padStart(10)} ${'requests'.padStart(9)} ${'restic MB/s'.padStart(12)} ${'requests'.padStart(9)} ${'ratio'.padStart(6)}`);
  for (const [key, label] of rows) {
    const o = out.ours[key] || {};
    const r = (out.restic && out.restic[key]) || {};
    const ratio = o.seconds && r.seconds ? r.seconds / o.seconds : null;
    log(`${label.padEnd(34)} ${fmt(o.mbps).padStart(10)} ${String(o.requests ?? '-').padStart(9)} ${fmt(r.mbps).padStart(12)} ${String(r.requests ?? '-').padStart(9)} ${(ratio ? `${fmt(ratio, 2)}x` : '-').padStart(6)}`);
  }
}

module.exports = { benchS3 };

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    log('usage: node bench/s3.js <data file> [restic binary]');
    process.exit(2);
  }
  benchS3(file, process.argv[3]).catch((err) => {
    log(err && err.stack ? err.stack : String(err));
    process.exit(1);
  });
}
