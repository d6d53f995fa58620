'use strict';
// Benchmark for @serve.zone/containerarchive, with restic as the reference.
//
//   npm run bench                      # ~1 GiB tar of /usr
//   BENCH_QUICK=1 npm run bench        # 64 MiB smoke test
//
// Environment:
//   BENCH_SIZE_MB      data size in MiB (default 1024, or 64 with BENCH_QUICK=1)
//   BENCH_QUICK=1      small data (64 MiB) for a smoke test
//   BENCH_DIR          cache/work directory (default <os.tmpdir()>/containerarchive-bench)
//   BENCH_CONFIGS      comma list subset of gzip,zstd,encrypted (default all)
//   BENCH_SKIP_RESTIC=1  do not run (or install) restic
//   BENCH_SKIP_S3=1    no S3 section (it starts a local Garage server: scripts/ensure-garage.sh)
//   BENCH_SKIP_QUICKSTART=1  no Quick Start section (bench/quickstart.js: whole processes against restic, issue 11's targets)
//   BENCH_ROUNDS       rounds of the Quick Start section, medians reported (default 3)
//   BENCH_SKIP_CATALOG=1  no tar-catalog section (bench/catalog.js; runnable alone: node bench/catalog.js [tarfile])
//
// Every containerarchive step runs in a fresh child process (bench/worker.js)
// so the peak RSS reported is that of the step alone. The worker times only
// the operation itself (not process start-up, require() or the Argon2 open).
// restic is timed as a whole process (wall clock, start-up included); its own
// start-up/repo-open cost is measured separately (`restic cat config`) and
// reported so the figures can be read fairly.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const WORKER = path.join(__dirname, 'worker.js');
const RESULTS_FILE = path.join(__dirname, 'results.json');

const QUICK = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
const SIZE_MB = process.env.BENCH_SIZE_MB ? parseInt(process.env.BENCH_SIZE_MB, 10) : QUICK ? 64 : 1024;
if (!Number.isInteger(SIZE_MB) || SIZE_MB <= 0) {
  console.error(`invalid BENCH_SIZE_MB=${process.env.BENCH_SIZE_MB}`);
  process.exit(2);
}
const SIZE = SIZE_MB * 1024 * 1024;
const CACHE = process.env.BENCH_DIR || path.join(os.tmpdir(), 'containerarchive-bench');
const DATA_FILE = path.join(CACHE, `data-${SIZE_MB}M.tar`);
const MOD_FILE = path.join(CACHE, `modified-${SIZE_MB}M.tar`);

const N_INSERTS = 20;
const INSERT_LEN = 100;
const N_OVERWRITES = 20;
const OVERWRITE_LEN = 4096;
const MOD_SIZE = SIZE + N_INSERTS * INSERT_LEN;

const ALL_CONFIGS = [
  { key: 'gzip', label: 'gzip', initOptions: {}, openOptions: {} },
  { key: 'zstd', label: 'zstd', initOptions: { compression: 'zstd' }, openOptions: {} },
  {
    key: 'encrypted',
    label: 'zstd+enc',
    initOptions: { passphrase: 'bench', compression: 'zstd' },
    openOptions: { passphrase: 'bench' },
  },
];
const CONFIGS = process.env.BENCH_CONFIGS
  ? ALL_CONFIGS.filter((c) => process.env.BENCH_CONFIGS.split(',').map((s) => s.trim()).includes(c.key))
  : ALL_CONFIGS;

const STEPS = [
  { key: 'ingest1', label: 'ingest data.tar (new)' },
  { key: 'ingest2', label: 'ingest data.tar again' },
  { key: 'ingestMod', label: 'ingest modified.tar' },
  { key: 'restore', label: 'restore #1 -> /dev/null' },
  { key: 'check', label: 'verify full / check --read-data' },
];

// ---------------------------------------------------------------- helpers

function log(msg) {
  process.stdout.write(msg + '\n');
}

function mb(bytes) {
  return bytes / 1e6;
}

function fmt(n, digits = 1) {
  return n == null || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

function fileSize(p) {
  try {
    return fs.statSync(p).size;
  } catch (_) {
    return -1;
  }
}

function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

/** Like `du`: allocated bytes (st.blocks * 512) and apparent bytes of a tree. */
function dirUsage(dir) {
  let disk = 0;
  let apparent = 0;
  let files = 0;
  const walk = (p) => {
    let st;
    try {
      st = fs.lstatSync(p);
    } catch (_) {
      return;
    }
    disk += st.blocks * 512;
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p)) walk(path.join(p, name));
    } else {
      apparent += st.size;
      files += 1;
    }
  };
  walk(dir);
  return { diskBytes: disk, apparentBytes: apparent, files };
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const out = (r.stdout || '').trim();
  return r.status === 0 && out ? out : null;
}

// Small deterministic PRNG so the modified file is the same on every machine/run.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(rand, n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

// ---------------------------------------------------------------- data

function ensureData() {
  fs.mkdirSync(CACHE, { recursive: true });
  let regenerated = false;
  if (fileSize(DATA_FILE) === SIZE) {
    log(`data: reusing ${DATA_FILE} (${SIZE_MB} MiB)`);
  } else {
    log(`data: generating ${DATA_FILE} (${SIZE_MB} MiB tar of /usr) ...`);
    const tmp = DATA_FILE + '.tmp';
    rmrf(tmp);
    const t0 = process.hrtime.bigint();
    // /usr is repeated if it is smaller than the requested size.
    const cmd =
      `i=0; while [ $i -lt 64 ]; do tar -cf - --ignore-failed-read -C / usr 2>/dev/null; i=$((i+1)); done ` +
      `| head -c ${SIZE} > '${tmp}'`;
    const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
    const got = fileSize(tmp);
    if (got !== SIZE) {
      throw new Error(`data generation failed: got ${got} bytes, wanted ${SIZE} (sh exit ${r.status})`);
    }
    fs.renameSync(tmp, DATA_FILE);
    log(`data: generated in ${fmt(Number(process.hrtime.bigint() - t0) / 1e9, 1)} s`);
    regenerated = true;
  }

  const modOk =
    !regenerated &&
    fileSize(MOD_FILE) === MOD_SIZE &&
    fs.statSync(MOD_FILE).mtimeMs >= fs.statSync(DATA_FILE).mtimeMs;
  if (modOk) {
    log(`data: reusing ${MOD_FILE}`);
  } else {
    log(`data: writing ${MOD_FILE} (${N_INSERTS} inserts of ${INSERT_LEN} B, ${N_OVERWRITES} overwrites of ${OVERWRITE_LEN} B)`);
    writeModified(DATA_FILE, MOD_FILE, SIZE);
  }
}

/**
 * Streams `src` to `dst` applying N_INSERTS inserts of INSERT_LEN random bytes
 * and N_OVERWRITES overwrites of OVERWRITE_LEN random bytes, spread evenly over
 * the file (positions are in source coordinates, deterministic).
 */
function writeModified(src, dst, size, bufSize = 8 * 1024 * 1024, plan = null) {
  const rand = mulberry32(0xc0ffee);
  // The i-th modification lands somewhere in the middle 80% of the i-th 1/N of the file.
  const spread = (i, n) => Math.floor(((i + 0.1 + 0.8 * rand()) * size) / n);
  const inserts = [];
  const overwrites = [];
  for (let i = 0; i < N_INSERTS; i++) {
    const pos = Math.min(size - 1, spread(i, N_INSERTS));
    inserts.push({ pos, data: randomBytes(rand, INSERT_LEN) });
  }
  for (let i = 0; i < N_OVERWRITES; i++) {
    const pos = Math.max(0, Math.min(size - OVERWRITE_LEN, spread(i, N_OVERWRITES)));
    overwrites.push({ pos, data: randomBytes(rand, OVERWRITE_LEN) });
  }
  inserts.sort((a, b) => a.pos - b.pos);
  if (plan) Object.assign(plan, { inserts, overwrites });

  const tmp = dst + '.tmp';
  const fin = fs.openSync(src, 'r');
  const fout = fs.openSync(tmp, 'w');
  const BUF = bufSize;
  const buf = Buffer.alloc(BUF);
  let off = 0;
  let ins = 0;
  try {
    for (;;) {
      const n = fs.readSync(fin, buf, 0, BUF, off);
      if (n === 0) break;
      const end = off + n;
      for (const ow of overwrites) {
        const s = Math.max(off, ow.pos);
        const e = Math.min(end, ow.pos + ow.data.length);
        if (s < e) ow.data.copy(buf, s - off, s - ow.pos, e - ow.pos);
      }
      let cur = 0;
      while (ins < inserts.length && inserts[ins].pos < end) {
        const at = inserts[ins].pos - off;
        if (at > cur) writeAll(fout, buf, cur, at - cur);
        writeAll(fout, inserts[ins].data, 0, inserts[ins].data.length);
        cur = at;
        ins++;
      }
      if (n > cur) writeAll(fout, buf, cur, n - cur);
      off = end;
    }
  } finally {
    fs.closeSync(fin);
    fs.closeSync(fout);
  }
  const got = fileSize(tmp);
  const want = size + inserts.length * INSERT_LEN;
  if (got !== want) throw new Error(`modified file has ${got} bytes, expected ${want}`);
  fs.renameSync(tmp, dst);
}

function writeAll(fd, b, start, len) {
  let done = 0;
  while (done < len) done += fs.writeSync(fd, b, start + done, len - done);
}

// ---------------------------------------------------------------- containerarchive

function runWorker(args) {
  const r = spawnSync(process.execPath, [WORKER, JSON.stringify(args)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const lines = (r.stdout || '').split('\n').map((l) => l.trim()).filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i].startsWith('{')) continue;
    try {
      const res = JSON.parse(lines[i]);
      if (res.ok === false && !res.error) res.error = { message: 'worker reported failure' };
      return res;
    } catch (_) { /* keep looking */ }
  }
  return {
    ok: false,
    error: { message: `worker exited with status ${r.status}${r.signal ? ' signal ' + r.signal : ''} and no result` },
  };
}

function stepResult(res, bytes) {
  const out = {
    ok: !!res.ok,
    seconds: res.seconds ?? null,
    bytes,
    mbps: res.ok && res.seconds > 0 ? mb(bytes) / res.seconds : null,
    peakRssMiB: res.maxRssKiB != null ? res.maxRssKiB / 1024 : null,
  };
  if (res.newChunks != null) out.newChunks = res.newChunks;
  if (res.reusedChunks != null) out.reusedChunks = res.reusedChunks;
  if (res.storedSize != null) out.storedSize = res.storedSize;
  if (res.originalSize != null) out.originalSize = res.originalSize;
  if (res.snapshotId != null) out.snapshotId = res.snapshotId;
  if (!res.ok) out.error = res.error;
  return out;
}

function benchConfig(cfg, failures) {
  const repo = path.join(CACHE, `repo-${cfg.key}`);
  rmrf(repo);
  const r = { config: cfg.key, label: cfg.label, initOptions: cfg.initOptions, repo, steps: {} };
  const fail = (step, res) => {
    const msg = `[${cfg.label}] ${step} FAILED: ${res.error && (res.error.code ? res.error.code + ': ' : '') + res.error.message}`;
    log(msg);
    failures.push(msg);
  };

  const init = runWorker({ op: 'init', repo, initOptions: cfg.initOptions });
  r.init = { ok: !!init.ok, seconds: init.seconds ?? null, peakRssMiB: init.maxRssKiB != null ? init.maxRssKiB / 1024 : null };
  if (!init.ok) {
    r.init.error = init.error;
    fail('init', init);
    return r;
  }
  log(`[${cfg.label}] init ${fmt(init.seconds, 3)} s`);

  const ingest = (key, file, bytes) => {
    const res = runWorker({ op: 'ingest', repo, openOptions: cfg.openOptions, file, itemName: path.basename(file).replace(/-\d+M\.tar$/, '.tar') });
    const s = stepResult(res, bytes);
    r.steps[key] = s;
    if (!res.ok) fail(key, res);
    else {
      if (res.originalSize != null && res.originalSize !== bytes) {
        const msg = `[${cfg.label}] ${key}: snapshot originalSize ${res.originalSize} != file size ${bytes}`;
        log(msg);
        failures.push(msg);
      }
      log(
        `[${cfg.label}] ${key}: ${fmt(s.seconds, 2)} s, ${fmt(s.mbps)} MB/s, peak RSS ${fmt(s.peakRssMiB, 0)} MiB, ` +
          `chunks new ${res.newChunks} / reused ${res.reusedChunks}`,
      );
    }
    return res;
  };

  const a = ingest('ingest1', DATA_FILE, SIZE);
  r.repoAfterIngest1 = dirUsage(repo);
  ingest('ingest2', DATA_FILE, SIZE);
  ingest('ingestMod', MOD_FILE, MOD_SIZE);
  r.repoAfterIngestMod = dirUsage(repo);
  log(
    `[${cfg.label}] repo on disk: ${fmt(mb(r.repoAfterIngest1.diskBytes))} MB after #1, ` +
      `${fmt(mb(r.repoAfterIngestMod.diskBytes))} MB after modified`,
  );

  if (a.ok) {
    const res = runWorker({ op: 'restore', repo, openOptions: cfg.openOptions, snapshotId: a.snapshotId, expectedBytes: SIZE });
    const s = stepResult(res, SIZE);
    s.restoredBytes = res.bytes ?? null;
    r.steps.restore = s;
    if (!res.ok) fail('restore', res);
    else log(`[${cfg.label}] restore: ${fmt(s.seconds, 2)} s, ${fmt(s.mbps)} MB/s, peak RSS ${fmt(s.peakRssMiB, 0)} MiB, ${res.bytes} bytes (verified)`);
  } else {
    r.steps.restore = { ok: false, skipped: true, error: { message: 'ingest #1 failed' } };
  }

  // verify({ level: 'full' }) over the whole repository, against restic check --read-data.
  const v = runWorker({ op: 'verify', repo, openOptions: cfg.openOptions, level: 'full' });
  r.steps.check = stepResult(v, 2 * SIZE + MOD_SIZE);
  if (!v.ok) fail('verify', v);
  else log(`[${cfg.label}] verify full: ${fmt(v.seconds, 2)} s, ${fmt(mb(v.bytes))} MB read, peak RSS ${fmt(r.steps.check.peakRssMiB, 0)} MiB`);
  return r;
}

// ---------------------------------------------------------------- restic

function ensureRestic() {
  let bin = which('restic');
  if (bin) return bin;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    log('restic: not on PATH and not root, cannot apt-get install it');
    return null;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', 'restic'], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  log('restic: not on PATH, trying apt-get install -y restic ...');
  let r = install();
  if (r.status !== 0) {
    log('restic: apt-get install failed, running apt-get update and retrying once ...');
    spawnSync('apt-get', ['update'], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    r = install();
  }
  if (r.status !== 0) {
    log(`restic: apt-get install failed: ${((r.stderr || '') + (r.stdout || '')).trim().split('\n').slice(-3).join(' | ')}`);
  }
  bin = which('restic');
  return bin;
}

function gnuTimeAvailable() {
  if (!fs.existsSync('/usr/bin/time')) return false;
  const tmp = path.join(CACHE, 'time-probe.txt');
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', tmp, 'true'], { stdio: 'ignore' });
  const ok = r.status === 0 && /^\d+\s*$/m.test(fs.existsSync(tmp) ? fs.readFileSync(tmp, 'utf8') : '');
  rmrf(tmp);
  return ok;
}

function benchRestic() {
  const out = { available: false };
  const bin = ensureRestic();
  if (!bin) {
    log('restic: UNAVAILABLE (not on PATH and could not be installed) -- skipping the restic comparison');
    return out;
  }
  out.available = true;
  out.binary = bin;
  const ver = spawnSync(bin, ['version'], { encoding: 'utf8' });
  out.version = (ver.stdout || '').trim();
  log(`restic: ${out.version}`);

  const repo = path.join(CACHE, 'restic-repo');
  const cacheDir = path.join(CACHE, 'restic-cache');
  rmrf(repo);
  rmrf(cacheDir);
  out.repo = repo;
  const useTime = gnuTimeAvailable();
  if (!useTime) log('restic: /usr/bin/time -f %M not usable, peak RSS of restic is not reported');
  const env = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo };
  const rssFile = path.join(CACHE, 'restic-rss.txt');

  // Runs restic; stdin from a file (or nothing), stdout to a file (e.g. /dev/null) or captured.
  const run = (args, { stdinFile, stdoutFile } = {}) => {
    const full = ['--cache-dir', cacheDir, ...args];
    const cmd = useTime ? '/usr/bin/time' : bin;
    const argv = useTime ? ['-f', '%M', '-o', rssFile, bin, ...full] : full;
    rmrf(rssFile);
    const fin = stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore';
    const fout = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'pipe';
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, argv, { env, stdio: [fin, fout, 'pipe'], encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (typeof fin === 'number') fs.closeSync(fin);
    if (typeof fout === 'number') fs.closeSync(fout);
    let peakRssMiB = null;
    if (useTime && fs.existsSync(rssFile)) {
      const m = fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop().match(/^(\d+)$/);
      if (m) peakRssMiB = Number(m[1]) / 1024;
    }
    const res = { ok: r.status === 0, seconds, peakRssMiB, stdout: r.stdout || '', stderr: r.stderr || '' };
    if (!res.ok) res.error = { message: `restic ${args[0]} exited ${r.status}: ${res.stderr.trim().split('\n').slice(-3).join(' | ')}` };
    return res;
  };
  const brief = (res, bytes) => {
    const b = {
      ok: res.ok,
      seconds: res.seconds,
      bytes,
      mbps: res.ok && bytes ? mb(bytes) / res.seconds : null,
      peakRssMiB: res.peakRssMiB,
    };
    // Net of restic's fixed process start-up + scrypt key open (our worker times exclude the open).
    if (res.ok && bytes && out.startupOverheadSeconds != null && res.seconds > out.startupOverheadSeconds) {
      b.netSeconds = res.seconds - out.startupOverheadSeconds;
      b.netMbps = mb(bytes) / b.netSeconds;
    }
    if (!res.ok) b.error = res.error;
    return b;
  };

  const init = run(['init']);
  if (!init.ok) {
    log(`restic: init failed: ${init.error.message}`);
    out.init = brief(init);
    return out;
  }
  out.init = brief(init);
  // restic pays process start-up + scrypt key open in every timed command: take the
  // fastest of three `restic cat config` runs as that fixed overhead.
  let cfg = null;
  for (let i = 0; i < 3; i++) {
    const c = run(['cat', 'config']);
    if (!cfg || (c.ok && c.seconds < cfg.seconds)) cfg = c;
  }
  try {
    out.repoConfig = JSON.parse(cfg.stdout);
    delete out.repoConfig.chunker_polynomial;
  } catch (_) { /* ignore */ }
  out.startupOverheadSeconds = cfg.ok ? cfg.seconds : null;
  log(`restic: repo version ${out.repoConfig ? out.repoConfig.version : '?'}, start-up/open overhead (cat config) ${fmt(out.startupOverheadSeconds, 3)} s`);

  out.steps = {};
  const backup = (key, file, bytes, stdinName) => {
    const res = run(['backup', '--json', '--stdin', '--stdin-filename', stdinName], { stdinFile: file });
    const s = brief(res, bytes);
    for (const line of res.stdout.split('\n')) {
      if (!line.includes('"summary"')) continue;
      try {
        const j = JSON.parse(line);
        if (j.message_type !== 'summary') continue;
        s.snapshotId = j.snapshot_id;
        s.newChunks = j.data_blobs;
        s.dataAdded = j.data_added;
        s.resticReportedSeconds = j.total_duration;
      } catch (_) { /* ignore */ }
    }
    out.steps[key] = s;
    if (res.ok) {
      log(
        `[restic] ${key}: ${fmt(s.seconds, 2)} s, ${fmt(s.mbps)} MB/s (net of start-up ${fmt(s.netMbps)}), peak RSS ${fmt(s.peakRssMiB, 0)} MiB, ` +
          `new blobs ${s.newChunks ?? '?'}, data added ${fmt(mb(s.dataAdded || 0))} MB`,
      );
    } else log(`[restic] ${key} FAILED: ${s.error.message}`);
    return s;
  };

  backup('ingest1', DATA_FILE, SIZE, 'data.tar');
  out.repoAfterIngest1 = dirUsage(repo);
  backup('ingest2', DATA_FILE, SIZE, 'data.tar');
  backup('ingestMod', MOD_FILE, MOD_SIZE, 'modified.tar');
  out.repoAfterIngestMod = dirUsage(repo);
  log(
    `[restic] repo on disk: ${fmt(mb(out.repoAfterIngest1.diskBytes))} MB after #1, ` +
      `${fmt(mb(out.repoAfterIngestMod.diskBytes))} MB after modified`,
  );

  // Dump the FIRST snapshot (the one of ingest #1) -- not `latest`, which is modified.tar.
  let firstId = null;
  const snaps = run(['snapshots', '--json']);
  try {
    const list = JSON.parse(snaps.stdout);
    list.sort((x, y) => Date.parse(x.time) - Date.parse(y.time));
    if (list.length) firstId = list[0].id;
    out.snapshotCount = list.length;
  } catch (_) { /* ignore */ }
  if (!firstId && out.steps.ingest1 && out.steps.ingest1.snapshotId) firstId = out.steps.ingest1.snapshotId;
  if (firstId) {
    const res = run(['dump', firstId, '/data.tar'], { stdoutFile: '/dev/null' });
    out.steps.restore = brief(res, SIZE);
    out.steps.restore.snapshotId = firstId;
    if (res.ok) log(`[restic] restore (dump ${firstId.slice(0, 8)}): ${fmt(res.seconds, 2)} s, ${fmt(out.steps.restore.mbps)} MB/s, peak RSS ${fmt(res.peakRssMiB, 0)} MiB`);
    else log(`[restic] dump FAILED: ${res.error.message}`);
  } else {
    out.steps.restore = { ok: false, error: { message: 'could not determine first snapshot id' } };
    log('[restic] dump skipped: could not determine first snapshot id');
  }

  // Full verification, reading all pack data back. MB/s is per original byte of the
  // three ingested streams (what the repository represents), not per stored byte.
  const chk = run(['check', '--read-data']);
  const logical = 2 * SIZE + MOD_SIZE;
  out.steps.check = brief(chk, logical);
  out.steps.check.storedBytesRead = out.repoAfterIngestMod.apparentBytes;
  if (chk.ok) log(`[restic] check --read-data: ${fmt(chk.seconds, 2)} s, peak RSS ${fmt(chk.peakRssMiB, 0)} MiB`);
  else log(`[restic] check --read-data FAILED: ${chk.error.message}`);
  rmrf(rssFile);
  return out;
}

// ---------------------------------------------------------------- report

function pad(s, w, right = false) {
  s = String(s);
  return right ? s.padStart(w) : s.padEnd(w);
}

function printTable(title, header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  log('');
  log(title);
  log(header.map((h, i) => pad(h, widths[i], i > 0)).join('   '));
  log(widths.map((w) => '-'.repeat(w)).join('   '));
  for (const r of rows) log(r.map((c, i) => pad(c, widths[i], i > 0)).join('   '));
}

function report(results) {
  const cols = results.containerarchive.map((c) => ({ label: c.label, data: c }));
  const restic = results.restic;
  if (restic.available) cols.push({ label: 'restic', data: restic });
  if (!cols.length) {
    log('');
    log('no results to report');
    return;
  }
  const header = ['step', ...cols.map((c) => c.label)];
  const get = (c, step) => (c.data.steps || {})[step];

  const cell = (s) => {
    if (!s) return '-';
    if (!s.ok) return s.skipped ? 'skipped' : 'FAILED';
    return `${fmt(s.mbps).padStart(7)} MB/s ${fmt(s.peakRssMiB, 0).padStart(5)} MiB`;
  };
  log('');
  log(
    `Data: ${SIZE_MB} MiB tar of /usr (${fmt(mb(SIZE))} MB); modified copy ${fmt(mb(MOD_SIZE))} MB ` +
      `(${N_INSERTS} x ${INSERT_LEN} B inserts, ${N_OVERWRITES} x ${OVERWRITE_LEN} B overwrites). MB = 1e6 bytes.`,
  );
  log(`Machine: ${os.cpus().length} x ${os.cpus()[0] ? os.cpus()[0].model : '?'}, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB RAM, node ${process.version}`);
  if (restic.available) log(`restic: ${restic.version}; its times include process start-up + key open (~${fmt(restic.startupOverheadSeconds, 2)} s); ours exclude open.`);
  else log('restic: unavailable, comparison skipped');

  printTable(
    'Throughput (original bytes / s) and peak RSS per step',
    header,
    STEPS.filter((st) => st.key !== 'check' || restic.available).map((st) => [
      st.label,
      ...cols.map((c) => cell(get(c, st.key))),
    ]),
  );

  printTable(
    'Seconds per step',
    header,
    STEPS.filter((st) => st.key !== 'check' || restic.available).map((st) => [
      st.label,
      ...cols.map((c) => {
        const s = get(c, st.key);
        return s && s.ok ? fmt(s.seconds, 2) : '-';
      }),
    ]),
  );

  const chunkRows = ['ingest1', 'ingest2', 'ingestMod'].map((k) => [
    STEPS.find((s) => s.key === k).label,
    ...cols.map((c) => {
      const s = get(c, k);
      if (!s || !s.ok) return '-';
      if (c.label === 'restic') return `${s.newChunks ?? '?'} new, +${fmt(mb(s.dataAdded || 0))} MB raw`;
      return `${s.newChunks} new / ${s.reusedChunks} reused`;
    }),
  ]);
  const sizeRow = (label, key) => [
    label,
    ...cols.map((c) => {
      const u = c.data[key];
      return u ? `${fmt(mb(u.diskBytes))} MB (${fmt((100 * u.diskBytes) / (key === 'repoAfterIngest1' ? SIZE : 2 * SIZE + MOD_SIZE), 1)}%)` : '-';
    }),
  ];
  printTable('Chunks (restic: new data blobs, data added before compression) and repository size on disk (du; % of ingested bytes)', header, [
    ...chunkRows,
    sizeRow('repo size after #1', 'repoAfterIngest1'),
    sizeRow('repo size after modified', 'repoAfterIngestMod'),
  ]);

  if (restic.available && results.containerarchive.length) {
    log('');
    log('Ratio vs restic (our MB/s / restic MB/s; >1 = faster than restic; in brackets: vs restic net of its start-up/open time):');
    const byKey = Object.fromEntries(results.containerarchive.map((c) => [c.config, c]));
    const order = [['encrypted', 'zstd+enc (apples-to-apples)'], ['gzip', 'gzip (default)'], ['zstd', 'zstd']];
    for (const st of STEPS) {
      const rs = restic.steps && restic.steps[st.key];
      const parts = [];
      for (const [k, name] of order) {
        const c = byKey[k];
        if (!c) continue;
        const s = c.steps[st.key];
        const ratio = s && s.ok && rs && rs.ok && rs.mbps ? s.mbps / rs.mbps : null;
        const ratioNet = s && s.ok && rs && rs.ok && rs.netMbps ? s.mbps / rs.netMbps : null;
        parts.push(`${name} ${ratio == null ? '-' : fmt(ratio, 2) + 'x'} (${ratioNet == null ? '-' : fmt(ratioNet, 2) + 'x'})`);
        if (!results.ratios[st.key]) results.ratios[st.key] = {};
        results.ratios[st.key][k] = ratio;
        if (!results.ratiosVsResticNet[st.key]) results.ratiosVsResticNet[st.key] = {};
        results.ratiosVsResticNet[st.key][k] = ratioNet;
      }
      log(`  ${pad(st.label, 26)} ${parts.join('   ')}`);
    }
    const chk = restic.steps && restic.steps.check;
    if (chk && chk.ok) {
      log(
        `  restic check --read-data: ${fmt(chk.seconds, 2)} s over ${fmt(mb(chk.storedBytesRead))} MB stored ` +
          `(${fmt(mb(chk.storedBytesRead) / chk.seconds)} MB/s stored) -- reference for our full verify`,
      );
    }
  }
}

// ---------------------------------------------------------------- memory

/**
 * Peak RSS of ingesting and restoring a generated stream of 100 MiB and of
 * BENCH_MEMORY_GB GiB (default 10; 0 skips): memory must not grow with length.
 */
function benchMemory(failures) {
  const largeGiB = Number(process.env.BENCH_MEMORY_GB ?? (QUICK ? 1 : 10));
  if (!(largeGiB > 0)) {
    log('memory: skipped (BENCH_MEMORY_GB=0)');
    return null;
  }
  const out = {};
  for (const bytes of [100 * 2 ** 20, largeGiB * 2 ** 30]) {
    const repo = path.join(CACHE, 'repo-memory');
    rmrf(repo);
    const ingest = runWorker({ op: 'synthetic-ingest', repo, bytes });
    const restore = ingest.ok ? runWorker({ op: 'restore', repo, snapshotId: ingest.snapshotId, expectedBytes: bytes }) : ingest;
    rmrf(repo);
    if (!ingest.ok || !restore.ok) {
      failures.push(`memory ${bytes}: ${(restore.error || ingest.error || {}).message}`);
      continue;
    }
    const label = bytes >= 2 ** 30 ? `${bytes / 2 ** 30} GiB` : `${bytes / 2 ** 20} MiB`;
    out[label] = {
      ingestPeakRssMiB: ingest.maxRssKiB / 1024,
      restorePeakRssMiB: restore.maxRssKiB / 1024,
      ingestMBps: mb(bytes) / ingest.seconds,
      restoreMBps: mb(bytes) / restore.seconds,
    };
    log(
      `[memory] ${label}: ingest peak RSS ${fmt(out[label].ingestPeakRssMiB, 0)} MiB (${fmt(out[label].ingestMBps)} MB/s), ` +
        `restore peak RSS ${fmt(out[label].restorePeakRssMiB, 0)} MiB (${fmt(out[label].restoreMBps)} MB/s)`,
    );
  }
  return out;
}

function warmPageCache(file) {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  try {
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------- main

async function main() {
  log(`containerarchive bench: ${SIZE_MB} MiB${QUICK ? ' (BENCH_QUICK)' : ''}, work dir ${CACHE}`);
  ensureData();
  if (fileSize(DATA_FILE) !== SIZE || fileSize(MOD_FILE) !== MOD_SIZE) throw new Error('data files have unexpected sizes');
  // Every tool reads the inputs from the page cache, so the first one measured does not pay for disk reads.
  for (const file of [DATA_FILE, MOD_FILE]) warmPageCache(file);

  const results = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0] ? os.cpus()[0].model : null,
      totalMemGiB: os.totalmem() / 2 ** 30,
      quick: QUICK,
      sizeMiB: SIZE_MB,
      dataFile: DATA_FILE,
      dataBytes: SIZE,
      modifiedFile: MOD_FILE,
      modifiedBytes: MOD_SIZE,
      modifications: { inserts: N_INSERTS, insertBytes: INSERT_LEN, overwrites: N_OVERWRITES, overwriteBytes: OVERWRITE_LEN },
      units: { mbps: '1e6 bytes/s of original data', peakRssMiB: 'maxRSS of the step process, MiB', repoBytes: 'du (allocated) and apparent bytes' },
    },
    containerarchive: [],
    restic: { available: false },
    ratios: {},
    ratiosVsResticNet: {},
    failures: [],
  };

  const probe = runWorker({ op: 'probe' });
  results.meta.packageAvailable = !!probe.ok;
  if (!probe.ok) {
    const msg = `containerarchive: package cannot be loaded (${probe.error && probe.error.message}); is the addon built? (npm run build)`;
    log(msg);
    results.failures.push(msg);
  } else {
    results.meta.packageVersion = probe.version;
    for (const cfg of CONFIGS) results.containerarchive.push(benchConfig(cfg, results.failures));
  }

  if (process.env.BENCH_SKIP_RESTIC === '1') log('restic: skipped (BENCH_SKIP_RESTIC=1)');
  else results.restic = benchRestic();

  // Issue 11's table: whole processes, the Quick Start's sources, targets against restic.
  if (process.env.BENCH_SKIP_QUICKSTART === '1') log('quick start: skipped (BENCH_SKIP_QUICKSTART=1)');
  else if (probe.ok) {
    try {
      results.quickStart = require('./quickstart').runQuickStartSection({
        dataFile: DATA_FILE, modFile: MOD_FILE, size: SIZE, dir: CACHE, resticBin: results.restic.available ? results.restic.binary : null,
      });
    } catch (err) {
      results.failures.push(`[quick start] ${err.message}`);
    }
  }

  if (probe.ok) results.memory = benchMemory(results.failures);

  // Tar catalogs (issue 13): ingest cost of cataloguing, catalog size, one member against the whole item.
  if (process.env.BENCH_SKIP_CATALOG === '1') log('catalog: skipped (BENCH_SKIP_CATALOG=1)');
  else if (probe.ok) {
    try {
      results.catalog = require('./catalog').runCatalogSection({ dataFile: DATA_FILE });
    } catch (err) {
      results.failures.push(`[catalog] ${err.message}`);
    }
  }

  // The same data into a bucket of a local Garage server, against restic on it (bench/s3.js).
  if (process.env.BENCH_SKIP_S3 === '1') log('S3: skipped (BENCH_SKIP_S3=1)');
  else if (probe.ok) {
    try {
      results.s3 = await require('./s3').benchS3(DATA_FILE, results.restic.available ? results.restic.binary : null);
      for (const [key, step] of Object.entries(results.s3.ours)) if (!step.ok) results.failures.push(`[s3] ${key} FAILED: ${JSON.stringify(step.error)}`);
    } catch (err) {
      results.failures.push(`[s3] ${err.message}`);
    }
  }

  report(results);
  fs.writeFileSync(RESULTS_FILE, JSON.stringify(results, null, 2) + '\n');
  log('');
  log(`raw results written to ${path.relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE}`);
  if (results.failures.length) {
    log(`${results.failures.length} failure(s):`);
    for (const f of results.failures) log(`  ${f}`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  });
} else {
  module.exports = { writeModified, dirUsage };
}
