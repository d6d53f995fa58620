'use strict';

// Beyond one machine (issue 10): a 3-node Garage cluster with replication
// factor 3 on loopback. One node is killed while an ingest runs: the ingest
// completes and its snapshot restores byte-identical. Then a second node
// stops: operations fail with a clear ERR_IO, and once the nodes are back
// nothing is lost.

const { it } = require('node:test');
const assert = require('node:assert/strict');
const { Readable } = require('node:stream');

const { MiB, assertRestores, rejectsWithCode, loadPackage } = require('./helpers');
const F = require('./fault-helpers');
const { startGarage, s3Skipped, SKIP_VAR } = require('./garage');

const { ContainerArchive } = loadPackage();
const T = { timeout: 600000 };
const SIZE = 8 * MiB;

it('a 3-node cluster loses a node during an ingest: the ingest completes; with two down, operations fail and nothing is lost', T, async (t) => {
  if (s3Skipped()) return t.skip(`${SKIP_VAR}=1`);
  const g = await startGarage({ nodes: 3 });
  t.after(() => g.stop());
  // Requests go to node 0; nodes 1 and 2 are the ones that fail.
  const open = { cache: false, storage: { endpoint: g.endpoint, region: g.region, accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey, timeoutMs: 5000, retries: 3 } };
  const location = `s3://${g.bucket}/cluster`;
  const repo = await ContainerArchive.init(location, { ...open, ...F.SMALL_REPO, passphrase: 'cluster' });
  t.after(() => repo.close());

  // The source kills node 2 once a third of it has been read.
  let killed = false;
  const source = Readable.from(F.genPieces(5, SIZE, 256 * 1024, {
    onPiece: (i, offset) => {
      if (!killed && offset >= SIZE / 3) {
        killed = true;
        g.nodes[2].kill();
      }
    },
  }));
  const snap = await repo.ingest(source);
  assert.equal(killed, true);
  assert.equal(g.nodes[2].running(), false, 'node 2 is down');
  const expected = Buffer.concat([...F.genPieces(5, SIZE)]);
  await assertRestores(repo, snap.id, expected);

  // Two of three down: no quorum. Every operation fails with ERR_IO.
  await g.nodes[1].killAndWait();
  const err = await rejectsWithCode(() => repo.ingest(Readable.from(F.genPieces(6, 2 * MiB))), 'ERR_IO');
  assert.match(err.message, /s3:\/\/ca-test\/cluster\//, err.message);
  await rejectsWithCode(() => repo.listSnapshots(), 'ERR_IO');

  // Back up: the snapshot is intact, and the failed ingest left nothing behind.
  g.nodes[1].restart();
  g.nodes[2].restart();
  await g.waitForQuorum();
  const after = await ContainerArchive.open(location, { ...open, passphrase: 'cluster', lockTimeoutMs: 60000 });
  t.after(() => after.close());
  assert.deepEqual((await after.listSnapshots()).map((s) => s.id), [snap.id]);
  await after.repair();
  await F.assertHealthy(after, 'full', 'after the nodes came back');
  await assertRestores(after, snap.id, expected);
});
