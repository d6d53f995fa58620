'use strict';
// Tar catalog bench (issue 13): what cataloguing costs at ingest, how big the catalog is, and
// how one ~10 KiB member restores against the whole item.
//
//   node bench/catalog.js [tarfile]     # alone; default: a complete ~BENCH_SIZE_MB tar of /usr
//   npm run bench                       # as a section of the full bench (BENCH_SKIP_CATALOG=1 skips)
//
// The same tar is ingested three times as type 'database-dump' (no catalog) and three times as
// 'volume-tar' (catalogued), alternating, each into a fresh repository (default gzip), each in a
// fresh process (bench/worker.js, timing the ingest call only). The slowdown is of the medians.
// Then: restoreFile of the regular member closest to 10 KiB (median of 3, each in a fresh
// process, catalog lookup included) against a full restore of the item (median of 3).
//
// Why not bench.js's data-<N>M.tar: that is `tar -c /usr` repeated and cut with `head -c`, so it
// ends inside a member (a truncated tar). This bench builds a complete tar of the first
// BENCH_SIZE_MB of /usr instead, and reports what the engine makes of the truncated one.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const WORKER = path.join(__dirname, 'worker.js');
const ROOT = path.join(__dirname, '..');
const QUICK = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
const SIZE_MB = process.env.BENCH_SIZE_MB ? parseInt(process.env.BENCH_SIZE_MB, 10) : QUICK ? 64 : 1024;
const CACHE = process.env.BENCH_DIR || path.join(os.tmpdir(), 'containerarchive-bench');

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

function worker(args) {
  const r = spawnSync(process.execPath, [WORKER, JSON.stringify(args)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 << 20, timeout: 30 * 60 * 1000 });
  const line = (r.stdout || '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) return { ok: false, error: { message: `worker exited ${r.status} ${r.signal || ''} with no result` } };
  return JSON.parse(line);
}

function must(res, what) {
  if (!res.ok) throw new Error(`${what} failed: ${res.error && (res.error.code ? `${res.error.code}: ` : '') + res.error.message}`);
  return res;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rmrf = (p) => fs.rmSync(p, { recursive: true, force: true });

/** A complete tar (end blocks included) of /usr's first `bytes` of members, in find order. */
function ensureUsrTar(bytes) {
  fs.mkdirSync(CACHE, { recursive: true });
  const file = path.join(CACHE, `usr-complete-${Math.round(bytes / 2 ** 20)}M.tar`);
  if (fs.existsSync(file) && fs.statSync(file).size >= bytes * 0.95) return file;
  log(`catalog: building ${file} (a complete tar of the first ${Math.round(bytes / 2 ** 20)} MiB of /usr) ...`);
  const find = spawnSync('find', ['usr', '-xdev', '-printf', '%y %s %p\\0'], { cwd: '/', maxBuffer: 1 << 30 });
  const list = [];
  let total = 0;
  for (const rec of find.stdout.toString('utf8').split('\0')) {
    if (!rec) continue;
    const [kind, size] = rec.split(' ', 2);
    const p = rec.slice(kind.length + size.length + 2);
    list.push(p);
    total += 512 + (kind === 'f' ? Math.ceil(Number(size) / 512) * 512 : 0) + (p.length >= 100 ? 1024 : 0);
    if (total >= bytes) break;
  }
  const listFile = `${file}.list`;
  fs.writeFileSync(listFile, list.join('\0') + '\0');
  const tmp = `${file}.tmp`;
  const r = spawnSync('tar', ['-cf', tmp, '--no-recursion', '--ignore-failed-read', '-C', '/', '--null', '-T', listFile], { stdio: ['ignore', 'ignore', 'ignore'] });
  fs.rmSync(listFile, { force: true });
  if (!fs.existsSync(tmp)) throw new Error(`tar exited ${r.status} without writing ${tmp}`);
  fs.renameSync(tmp, file);
  return file;
}

function benchCatalog(tarFile) {
  const size = fs.statSync(tarFile).size;
  const mb = size / 1e6;
  log(`catalog: ${tarFile} (${mb.toFixed(1)} MB)`);
  const repo = (n) => path.join(CACHE, `repo-catalog-${n}`);
  const ingest = (type, n) => {
    rmrf(repo(n));
    must(worker({ op: 'init', repo: repo(n), initOptions: {} }), 'init');
    return must(worker({ op: 'ingest', repo: repo(n), file: tarFile, itemName: 'usr.tar', itemType: type }), `ingest as ${type}`);
  };
  const dump = [];
  const tar = [];
  let catalogued = null;
  for (let i = 0; i < 3; i++) {
    const d = ingest('database-dump', 'dump');
    if (d.items[0].catalog) throw new Error('a database-dump item got a catalog');
    dump.push(d.seconds);
    const t = ingest('volume-tar', 'tar');
    tar.push(t.seconds);
    catalogued = t;
    log(`catalog: run ${i + 1}: database-dump ${d.seconds.toFixed(2)} s, volume-tar ${t.seconds.toFixed(2)} s`);
  }
  rmrf(repo('dump'));
  const item = catalogued.items[0];
  const out = {
    tarFile,
    bytes: size,
    ingestDumpSeconds: dump,
    ingestTarSeconds: tar,
    medianDumpSeconds: median(dump),
    medianTarSeconds: median(tar),
    slowdownPercent: ((median(tar) - median(dump)) / median(dump)) * 100,
    catalog: item.catalog,
    catalogError: item.catalogError ?? null,
  };
  log(
    `catalog: ingest median ${out.medianDumpSeconds.toFixed(2)} s without, ${out.medianTarSeconds.toFixed(2)} s with a catalog: ` +
      `${out.slowdownPercent >= 0 ? '+' : ''}${out.slowdownPercent.toFixed(1)}% (${(mb / out.medianDumpSeconds).toFixed(0)} vs ${(mb / out.medianTarSeconds).toFixed(0)} MB/s)`,
  );
  if (!item.catalog) {
    log(`catalog: NO catalog: ${item.catalogError}`);
    rmrf(repo('tar'));
    return out;
  }
  log(`catalog: ${item.catalog.entries} entries, ${item.catalog.size} bytes (${(item.catalog.size / item.catalog.entries).toFixed(0)} B/entry, ${((item.catalog.size / size) * 100).toFixed(3)}% of the tar)`);

  const member = must(worker({ op: 'pick-member', repo: repo('tar'), snapshotId: catalogued.snapshotId, targetSize: 10240 }), 'pick-member').member;
  const files = [];
  const fulls = [];
  let chunksRead = null;
  for (let i = 0; i < 3; i++) {
    const f = must(worker({ op: 'restore-file', repo: repo('tar'), snapshotId: catalogued.snapshotId, path: member.path }), 'restoreFile');
    if (f.bytes !== member.size) throw new Error(`restoreFile gave ${f.bytes} bytes, the catalog says ${member.size}`);
    files.push(f.seconds);
    chunksRead = f.chunksRead;
    fulls.push(must(worker({ op: 'restore', repo: repo('tar'), snapshotId: catalogued.snapshotId, expectedBytes: size }), 'full restore').seconds);
  }
  rmrf(repo('tar'));
  Object.assign(out, {
    member: { path: member.path, size: member.size },
    restoreFileSeconds: files,
    fullRestoreSeconds: fulls,
    medianRestoreFileSeconds: median(files),
    medianFullRestoreSeconds: median(fulls),
    restoreFileChunksRead: chunksRead,
  });
  log(
    `catalog: restoreFile ${member.path} (${member.size} B): ${(out.medianRestoreFileSeconds * 1000).toFixed(1)} ms, ${chunksRead} chunks read; ` +
      `full restore ${out.medianFullRestoreSeconds.toFixed(2)} s (${(out.medianFullRestoreSeconds / out.medianRestoreFileSeconds).toFixed(0)}x)`,
  );
  return out;
}

/** What the engine makes of bench.js's cut tar (a catalog of the members before the cut, or why none). */
function probeTruncated(dataFile) {
  if (!fs.existsSync(dataFile)) return null;
  const r = path.join(CACHE, 'repo-catalog-cut');
  rmrf(r);
  must(worker({ op: 'init', repo: r, initOptions: {} }), 'init');
  const res = must(worker({ op: 'ingest', repo: r, file: dataFile, itemName: 'data.tar', itemType: 'volume-tar' }), 'ingest cut tar');
  rmrf(r);
  const item = res.items[0];
  log(`catalog: bench.js's ${path.basename(dataFile)} (cut by head -c) as volume-tar: ${item.catalog ? `catalog of ${item.catalog.entries} entries` : `no catalog: ${item.catalogError}`}`);
  return { file: dataFile, catalog: item.catalog, catalogError: item.catalogError ?? null, seconds: res.seconds };
}

function runCatalogSection({ tarFile, dataFile } = {}) {
  const file = tarFile || ensureUsrTar(SIZE_MB * 2 ** 20);
  const out = benchCatalog(file);
  if (!tarFile && dataFile) out.truncatedDataTar = probeTruncated(dataFile);
  return out;
}

module.exports = { runCatalogSection, benchCatalog, ensureUsrTar };

if (require.main === module) {
  try {
    const tarFile = process.argv[2] ? path.resolve(process.argv[2]) : undefined;
    const result = runCatalogSection({ tarFile, dataFile: tarFile ? undefined : path.join(CACHE, `data-${SIZE_MB}M.tar`) });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } catch (err) {
    log(err.stack || String(err));
    process.exit(1);
  }
}
