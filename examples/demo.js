'use strict';
// The main job, end to end: back up a real file into a fresh repository,
// back it up again (deduplicated), restore it and check every byte.
// Usage: npm run demo [-- <file>]   (default: the node binary itself)

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { pipeline } = require('node:stream/promises');
const { ContainerArchive } = require('..');

const file = path.resolve(process.argv[2] || process.execPath);
const repoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'containerarchive-demo-'));
const restoredFile = path.join(repoDir, 'restored.bin');
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
const rate = (bytes, ms) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;

function sha256File(p) {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    fs.createReadStream(p).on('data', (d) => hash.update(d)).on('end', () => resolve(hash.digest('hex'))).on('error', reject);
  });
}

async function main() {
  const size = fs.statSync(file).size;
  console.log(`source     ${file} (${mb(size)})`);
  console.log(`repository ${path.join(repoDir, 'repo')} (encrypted, gzip)`);
  const repo = await ContainerArchive.init(path.join(repoDir, 'repo'), { passphrase: 'demo passphrase' });

  let start = Date.now();
  const first = await repo.ingest(fs.createReadStream(file, { highWaterMark: 1 << 20 }), {
    tags: { source: 'demo' },
    items: [{ name: path.basename(file), type: 'file' }],
  });
  let ms = Date.now() - start;
  console.log(`backup     ${first.id.slice(0, 12)}  ${first.newChunks} new chunks, ${mb(first.storedSize)} stored, ${rate(size, ms)}`);

  start = Date.now();
  const second = await repo.ingest(fs.createReadStream(file, { highWaterMark: 1 << 20 }), {
    tags: { source: 'demo' },
    items: [{ name: path.basename(file), type: 'file' }],
  });
  ms = Date.now() - start;
  console.log(`again      ${second.id.slice(0, 12)}  ${second.newChunks} new, ${second.reusedChunks} reused chunks, ${rate(size, ms)}`);

  start = Date.now();
  await pipeline(await repo.restore(first.id), fs.createWriteStream(restoredFile));
  ms = Date.now() - start;
  console.log(`restore    ${mb(fs.statSync(restoredFile).size)} ${rate(size, ms)}`);

  start = Date.now();
  const check = await repo.verify({ level: 'full' });
  ms = Date.now() - start;
  console.log(`verify     ${check.ok ? 'ok' : 'FAILED'}: ${check.checked.chunks} chunks, ${check.checked.packs} packs re-read and re-hashed (full) in ${ms} ms`);
  const [want, got] = await Promise.all([sha256File(file), sha256File(restoredFile)]);
  await repo.close();
  if (!check.ok) {
    console.error(JSON.stringify(check.errors, null, 2));
    process.exitCode = 1;
    return;
  }
  if (want !== got) {
    console.error(`compare    FAILED: sha256 ${got} != ${want}`);
    process.exitCode = 1;
    return;
  }
  console.log(`compare    ok, sha256 ${got.slice(0, 16)}… matches the source`);
  fs.rmSync(repoDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(`demo failed: ${err.code || ''} ${err.message}`);
  process.exitCode = 1;
});
