'use strict';
// Small utilities shared by the test helpers; no node:test, so child processes can load it.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

/** All non-directory entries under `dir`, recursively (absolute paths, sorted). */
function walkFiles(dir) {
  const out = [];
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop();
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) stack.push(p);
      else out.push(p);
    }
  }
  return out.sort();
}

/** Deterministic 32-bit xorshift generator. */
function xorshift32(seed) {
  let x = (seed >>> 0) || 0x9e3779b9;
  return function next() {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

module.exports = { walkFiles, xorshift32, sha256 };
