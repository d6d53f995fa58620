'use strict';
// A cheap, endless-looking byte stream for memory tests: a random 1 MiB block,
// re-stamped with a counter every 64 KiB so no chunk repeats (nothing dedups).
const crypto = require('node:crypto');
const { Readable } = require('node:stream');

const BLOCK = 1024 * 1024;

function syntheticStream(totalBytes, seed = 1) {
  const base = crypto.createHash('sha256').update(String(seed)).digest();
  const block = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += 32) base.copy(block, i, 0, Math.min(32, BLOCK - i));
  crypto.randomFillSync(block);
  let sent = 0;
  let counter = 0;
  return new Readable({
    highWaterMark: BLOCK,
    read() {
      if (sent >= totalBytes) return this.push(null);
      const n = Math.min(BLOCK, totalBytes - sent);
      const out = Buffer.from(block.subarray(0, n));
      for (let at = 0; at + 8 <= n; at += 64 * 1024) out.writeBigUInt64LE(BigInt(counter++), at);
      sent += n;
      this.push(out);
    },
  });
}

module.exports = { syntheticStream };
