'use strict';
// The Quick Start section of `npm run bench` (issue 11): every step is one
// fresh process, timed whole (Node start-up, require(), open() and close()
// included), as a cron job runs it, against restic timed the same way.
// Sources are what users write: createReadStream(path) with no options, and
// spawn('cat', [file]).stdout standing in for pg_dump. Medians of
// BENCH_ROUNDS rounds (default 3).
//
// Also here: Node's share (the worker's in-process step time against the
// engine alone, `core/examples/ingest_file.rs`), open() against a synthetic
// 1 TB index, and one worker thread against all cores.

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const WORKER = path.join(__dirname, 'worker.js');
const ENC = { initOptions: { passphrase: 'bench', compression: 'zstd' }, openOptions: { passphrase: 'bench' } };

const TARGETS = [
  { key: 'ingest1', label: 'first ingest', target: 2 },
  { key: 'ingest2', label: 'same data again', target: 3 },
  { key: 'ingestMod', label: 'modified copy', target: 2.5 },
  { key: 'restore', label: 'restore', target: 3 },
  { key: 'check', label: 'full verify', target: 2 },
  { key: 'gzip', label: 'first ingest, default gzip repository', target: 1.2 },
];

const log = (m) => process.stdout.write(m + '\n');
const fmt = (n, d = 2) => (n == null || !Number.isFinite(n) ? '-' : n.toFixed(d));
const median = (xs) => {
  const v = xs.filter((x) => x != null).sort((a, b) => a - b);
  return v.length ? v[Math.floor((v.length - 1) / 2)] : null;
};

/** Runs one worker step; `wall` is the whole process, spawn to exit. */
function worker(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [WORKER, JSON.stringify(args)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const line = (r.stdout || '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  const res = line ? JSON.parse(line) : { ok: false, error: { message: `worker exited ${r.status}` } };
  if (!res.ok) throw new Error(`${args.op} failed: ${JSON.stringify(res.error)}`);
  return { ...res, wall, rssMiB: res.maxRssKiB / 1024 };
}

function restic(bin, repo, args, stdinFile, stdoutFile) {
  const env = { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo };
  const fin = stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore';
  const fout = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'pipe';
  const t0 = process.hrtime.bigint();
  const r = spawnSync(bin, ['--cache-dir', `${repo}-cache`, ...args], { env, stdio: [fin, fout, 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const fd of [fin, fout]) if (typeof fd === 'number') fs.closeSync(fd);
  if (r.status !== 0) throw new Error(`restic ${args[0]} exited ${r.status}: ${(r.stderr || '').trim().split('\n').pop()}`);
  return { wall, stdout: r.stdout || '' };
}

/** One round of ours: a fresh repository, every step its own process. */
function oursRound(dir, files, source, extra = {}) {
  const repo = path.join(dir, `qs-${source}`);
  fs.rmSync(repo, { recursive: true, force: true });
  worker({ op: 'init', repo, initOptions: ENC.initOptions });
  const base = { repo, openOptions: ENC.openOptions, source, ...extra };
  const steps = {};
  steps.ingest1 = worker({ ...base, op: 'ingest', file: files.data, itemName: 'data.tar' });
  steps.ingest2 = worker({ ...base, op: 'ingest', file: files.data, itemName: 'data.tar' });
  steps.ingestMod = worker({ ...base, op: 'ingest', file: files.modified, itemName: 'data.tar' });
  steps.restore = worker({ ...base, op: 'restore', snapshotId: steps.ingest1.snapshotId, expectedBytes: files.size });
  steps.check = worker({ ...base, op: 'verify', level: 'full' });
  steps.ingestMod.newBytes = steps.ingestMod.storedSize;
  fs.rmSync(repo, { recursive: true, force: true });
  return steps;
}

function gzipRound(dir, files) {
  const repo = path.join(dir, 'qs-gzip');
  fs.rmSync(repo, { recursive: true, force: true });
  worker({ op: 'init', repo, initOptions: {} });
  const step = worker({ op: 'ingest', repo, file: files.data, itemName: 'data.tar' });
  fs.rmSync(repo, { recursive: true, force: true });
  return step;
}

function resticRound(bin, dir, files) {
  const repo = path.join(dir, 'qs-restic');
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(`${repo}-cache`, { recursive: true, force: true });
  restic(bin, repo, ['init']);
  const backup = (file) => {
    const r = restic(bin, repo, ['backup', '--json', '--stdin', '--stdin-filename', 'data.tar'], file);
    const summary = r.stdout.split('\n').filter((l) => l.includes('"summary"')).map((l) => JSON.parse(l)).pop() || {};
    return { wall: r.wall, snapshotId: summary.snapshot_id, dataAddedPacked: summary.data_added_packed ?? summary.data_added };
  };
  const steps = { ingest1: backup(files.data), ingest2: backup(files.data), ingestMod: backup(files.modified) };
  steps.restore = { wall: restic(bin, repo, ['dump', steps.ingest1.snapshotId, '/data.tar'], null, '/dev/null').wall };
  steps.check = { wall: restic(bin, repo, ['check', '--read-data']).wall };
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(`${repo}-cache`, { recursive: true, force: true });
  return steps;
}

/** The engine alone on the same data (zstd + encryption), in-process times. */
function engineAlone(file) {
  const exe = path.join(ROOT, 'target', 'release', 'examples', 'ingest_file');
  if (!fs.existsSync(exe)) {
    const b = spawnSync('cargo', ['build', '--release', '-p', 'containerarchive-core', '--example', 'ingest_file', '--example', 'synthetic_index'], { cwd: ROOT, stdio: 'inherit' });
    if (b.status !== 0) return null;
  }
  const r = spawnSync(exe, [file, 'zstd', '-', 'encrypt'], { encoding: 'utf8' });
  // The re-ingest again, the engine reading a pipe fed by cat (what the spawn source costs without Node).
  const q = spawnSync('sh', ['-c', `cat '${file}' | '${exe}' '${file}' zstd - encrypt /dev/stdin`], { encoding: 'utf8' });
  if (r.status !== 0 || q.status !== 0) return null;
  const secs = (out, label) => Number((out.match(new RegExp(`^${label}\\s+([0-9.]+)s`, 'm')) || [])[1]);
  return { ingest1: secs(r.stdout, 'ingest'), ingest2: secs(r.stdout, 're-ingest'), ingest2Pipe: secs(q.stdout, 're-ingest'), restore: secs(r.stdout, 'restore') };
}

function syntheticOpen(dir) {
  const exe = path.join(ROOT, 'target', 'release', 'examples', 'synthetic_index');
  const repo = path.join(dir, 'qs-1tb-index');
  fs.rmSync(repo, { recursive: true, force: true });
  const r = spawnSync(exe, [repo, '1'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const made = JSON.parse(r.stdout.trim().split('\n').pop());
  const opens = [0, 1, 2].map(() => worker({ op: 'open', repo, openOptions: ENC.openOptions }));
  fs.rmSync(repo, { recursive: true, force: true });
  return { ...made, openSeconds: median(opens.map((o) => o.openSeconds)), wall: median(opens.map((o) => o.wall)), rssMiB: median(opens.map((o) => o.rssMiB)) };
}

function runQuickStartSection({ dataFile, modFile, size, dir, resticBin }) {
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const files = { data: dataFile, modified: modFile, size };
  const runs = { file: [], spawn: [], gzip: [], restic: [] };
  for (let i = 0; i < rounds; i++) {
    log(`[quick start] round ${i + 1} of ${rounds}`);
    runs.file.push(oursRound(dir, files, 'file'));
    runs.spawn.push(oursRound(dir, files, 'spawn'));
    runs.gzip.push(gzipRound(dir, files));
    if (resticBin) runs.restic.push(resticRound(resticBin, dir, files));
  }
  const med = (list, key, field = 'wall') => median(list.map((r) => (key ? r[key] : r)[field]));
  const out = { rounds, steps: {}, node: {}, memory: {} };
  for (const t of TARGETS) {
    const ours = (src) => (t.key === 'gzip' ? med(runs.gzip, null) : med(runs[src], t.key));
    const theirs = resticBin ? med(runs.restic, t.key === 'gzip' ? 'ingest1' : t.key) : null;
    out.steps[t.key] = { file: ours('file'), spawn: t.key === 'gzip' ? null : ours('spawn'), restic: theirs, target: t.target };
  }
  out.modifiedNewBytes = { ours: med(runs.file, 'ingestMod', 'storedSize'), restic: resticBin ? med(runs.restic, 'ingestMod', 'dataAddedPacked') : null };
  out.openSeconds = med(runs.file, 'ingest2', 'openSeconds');
  out.memory.ingestPeakMiB = Math.max(...runs.file.concat(runs.spawn).flatMap((r) => [r.ingest1.rssMiB, r.ingest2.rssMiB, r.ingestMod.rssMiB]));

  const engine = engineAlone(dataFile);
  for (const key of ['ingest1', 'ingest2', 'restore']) {
    out.node[key] = { engine: engine ? engine[key] : null, file: med(runs.file, key, 'seconds'), spawn: med(runs.spawn, key, 'seconds') };
  }
  out.node.ingest2.enginePipe = engine ? engine.ingest2Pipe : null;

  const threads = {};
  for (const [label, extra] of [['1 thread', { threads: 1 }], ['all cores', {}]]) {
    const r = oursRound(dir, files, 'file', extra);
    threads[label] = { ingest1: r.ingest1.wall, restore: r.restore.wall, check: r.check.wall };
  }
  out.threads = threads;
  out.syntheticIndex = syntheticOpen(dir);
  report(out);
  return out;
}

function report(out) {
  log('');
  log(`Quick Start, whole processes (zstd + encryption; medians of ${out.rounds}; seconds):`);
  log('  step                                     createReadStream   spawn stdout   restic   ratio file   ratio spawn   target   met');
  for (const t of TARGETS) {
    const s = out.steps[t.key];
    const ratio = (x) => (x && s.restic ? s.restic / x : null);
    const rs = [ratio(s.file), ratio(s.spawn)].filter((x) => x != null);
    const met = rs.length && s.restic ? (Math.min(...rs) >= t.target ? 'yes' : 'NO') : '-';
    log(
      `  ${t.label.padEnd(40)} ${fmt(s.file).padStart(16)}   ${fmt(s.spawn).padStart(12)}   ${fmt(s.restic).padStart(6)}   ` +
        `${(fmt(ratio(s.file)) + 'x').padStart(10)}   ${(fmt(ratio(s.spawn)) + 'x').padStart(11)}   ${(t.target + 'x').padStart(6)}   ${met}`,
    );
  }
  const m = out.modifiedNewBytes;
  log(`  modified copy stores ${fmt((m.ours || 0) / 1e6, 2)} MB new (restic ${fmt((m.restic || 0) / 1e6, 2)} MB packed)`);
  log(`  open() of that repository: ${fmt(out.openSeconds, 3)} s; peak RSS of an ingest process: ${fmt(out.memory.ingestPeakMiB, 0)} MiB`);
  log('');
  log('Node\'s share (in-process step time against the engine alone, seconds):');
  for (const [key, n] of Object.entries(out.node)) {
    const pct = (x) => (x && n.engine ? `${x > n.engine ? '+' : ''}${fmt((100 * (x - n.engine)) / n.engine, 0)}%` : '-');
    log(`  ${key.padEnd(10)} engine ${fmt(n.engine)}   createReadStream ${fmt(n.file)} (${pct(n.file)})   spawn stdout ${fmt(n.spawn)} (${pct(n.spawn)})`);
  }
  const p = out.node.ingest2;
  if (p.enginePipe) log(`  ingest2 with the engine itself reading a pipe fed by cat: ${fmt(p.enginePipe)} s; spawn stdout is ${fmt((100 * (p.spawn - p.enginePipe)) / p.enginePipe, 0)}% over it`);
  log('');
  log('threads (whole processes, seconds): ' + Object.entries(out.threads).map(([k, v]) => `${k}: ingest ${fmt(v.ingest1)}, restore ${fmt(v.restore)}, verify full ${fmt(v.check)}`).join('; '));
  const si = out.syntheticIndex;
  if (si) {
    log(`open() with a synthetic 1 TB index (${si.chunks} chunks in ${si.packs} packs): ${fmt(si.openSeconds, 3)} s (whole process ${fmt(si.wall, 3)} s, ${fmt(si.rssMiB, 0)} MiB; ` +
        `engine alone ${fmt(si.engineOpenSeconds, 3)} s, of which loading the index ${fmt(si.indexLoadSeconds, 3)} s)`);
  } else log('open() with a synthetic 1 TB index: the synthetic_index example could not run');
}

module.exports = { runQuickStartSection };
