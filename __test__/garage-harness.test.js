'use strict';

// The Node Garage harness (__test__/garage.js) that the S3 suites build on:
// it starts a real node with a bucket and a key, and stop() leaves nothing behind.

const { it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');

const { startGarage, s3Skipped, SKIP_VAR } = require('./garage');

const T = { timeout: 120000 };

function get(url) {
  return new Promise((resolve, reject) => {
    // A fresh connection each time: a kept-alive socket would see a reset, not a refusal.
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
  });
}

it('starts a Garage node with a bucket and a key, and stop() kills it and removes its files', T, async (t) => {
  if (s3Skipped()) return t.skip(`${SKIP_VAR}=1`);
  const g = await startGarage();
  t.after(() => g.stop());
  assert.equal(g.region, 'garage');
  assert.match(g.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(g.accessKeyId, /^GK[0-9a-f]+$/);
  assert.match(g.secretAccessKey, /^[0-9a-f]{64}$/);

  const { stdout } = await g.cli(0, ['bucket', 'info', g.bucket]);
  assert.match(stdout, /ca-test/, 'the key is allowed on the bucket');
  // The S3 API answers: an unsigned request is refused with an S3 error document.
  const anonymous = await get(`${g.endpoint}/${g.bucket}/`);
  assert.equal(anonymous.status, 403, anonymous.body);
  assert.match(anonymous.body, /<Error>/);

  await g.stop();
  assert.equal(g.nodes[0].running(), false);
  assert.equal(fs.existsSync(g.dir), false);
  await assert.rejects(get(`${g.endpoint}/`), { code: 'ECONNREFUSED' });
});

it('fails with a clear message when garage is missing, unless the S3 tests are skipped', T, async (t) => {
  const saved = { bin: process.env.GARAGE_BIN, skip: process.env[SKIP_VAR] };
  t.after(() => {
    for (const [name, value] of [['GARAGE_BIN', saved.bin], [SKIP_VAR, saved.skip]]) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  process.env.GARAGE_BIN = '/nonexistent/garage';
  delete process.env[SKIP_VAR];
  await assert.rejects(startGarage(), (err) => {
    assert.match(err.message, /garage is not installed/);
    assert.match(err.message, /scripts\/ensure-garage\.sh/);
    assert.match(err.message, new RegExp(SKIP_VAR));
    return true;
  });
  process.env[SKIP_VAR] = '1';
  assert.equal(await startGarage(), null);
});
