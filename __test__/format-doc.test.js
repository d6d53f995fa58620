'use strict';

// docs/FORMAT.md derives the FastCDC gear table from MD5 (so that a reader can
// recompute it); check that derivation against the appendix. The appendix itself
// is checked against the crate by core/tests/format_vectors.rs.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { it } = require('node:test');

it('GEAR[i] is the first 8 bytes (big-endian) of MD5 of 64 bytes of value i', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'FORMAT.md'), 'utf8');
  const start = doc.indexOf('## Appendix: GEAR table');
  assert.ok(start >= 0, 'FORMAT.md has the GEAR appendix');
  const next = doc.indexOf('\n## ', start + 3);
  const appendix = doc.slice(start, next < 0 ? undefined : next);
  const documented = appendix.match(/\b0x[0-9a-f]{16}\b/g).map((h) => BigInt(h));
  assert.equal(documented.length, 256);
  for (let i = 0; i < 256; i++) {
    const digest = crypto.createHash('md5').update(Buffer.alloc(64, i)).digest();
    assert.equal(documented[i], digest.readBigUInt64BE(0), `GEAR[${i}]`);
  }
});
