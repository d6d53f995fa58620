'use strict';

// ingest and ingestMulti take web ReadableStreams and (async) iterables of
// Buffers, Uint8Arrays or strings as well as Node Readables; restore's Node
// Readable works with Readable.toWeb.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Readable } = require('node:stream');

const { tmpFor, randomBytes, sha256, collect, KiB, rejectsWithCode, assertRestores, loadPackage } = require('./helpers');

const { ContainerArchive } = loadPackage();

async function fresh(t) {
  const repo = await ContainerArchive.init(path.join(tmpFor(t), 'repo'));
  t.after(() => repo.close());
  return repo;
}

/** A web ReadableStream of `data` in pieces of `piece` bytes (Uint8Arrays, as fetch() bodies give). */
function webStream(data, piece = 64 * KiB) {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.length) return controller.close();
      controller.enqueue(new Uint8Array(data.subarray(offset, offset + piece)));
      offset += piece;
    },
  });
}

describe('stream kinds', () => {
  it('a web ReadableStream, an async generator and an array of strings are stored byte-exact', async (t) => {
    const repo = await fresh(t);
    const data = randomBytes(700 * KiB, 5);
    const web = await repo.ingest(webStream(data));
    await assertRestores(repo, web.id, data);

    async function* pieces() {
      for (let i = 0; i < data.length; i += 100 * KiB) yield data.subarray(i, i + 100 * KiB);
    }
    const gen = await repo.ingest(pieces());
    await assertRestores(repo, gen.id, data);
    assert.equal(gen.newChunks, 0, 'the same bytes deduplicate whatever the source kind');

    const multi = await repo.ingestMulti([
      { name: 'text', stream: ['hello ', 'world'] },
      { name: 'web', stream: webStream(Buffer.from('from the web')) },
      { name: 'node', stream: Readable.from([Buffer.from('node')]) },
    ]);
    assert.deepEqual(multi.items.map((i) => i.size), [11, 12, 4]);
    const text = await collect(await repo.restore(multi.id, { item: 'text' }));
    assert.equal(text.toString(), 'hello world');
  });

  it('a failing web stream or generator rejects with its own error and writes no snapshot', async (t) => {
    const repo = await fresh(t);
    const failure = new Error('pg_dump died');
    const web = new ReadableStream({
      start(controller) {
        controller.enqueue(new Uint8Array(randomBytes(200 * KiB, 1)));
        controller.error(failure);
      },
    });
    await assert.rejects(repo.ingest(web), (err) => err === failure);
    async function* dying() {
      yield randomBytes(300 * KiB, 2);
      throw failure;
    }
    await assert.rejects(repo.ingest(dying()), (err) => err === failure);
    async function* numbers() {
      yield 42;
    }
    await rejectsWithCode(() => repo.ingest(numbers()), 'ERR_INVALID_ARGUMENT');
    assert.deepEqual(await repo.listSnapshots(), []);
  });

  it('bad input changes nothing: a web stream stays unlocked, and a failed ingest returns the iterator', async (t) => {
    const repo = await fresh(t);
    const web = webStream(Buffer.from('kept for later'));
    await rejectsWithCode(() => repo.ingestMulti([{ name: 'a', stream: web }, { name: 'b', stream: Buffer.from('x') }]), 'ERR_INVALID_ARGUMENT');
    assert.equal(web.locked, false, 'the web stream was not touched');
    const reader = webStream(Buffer.from('x'));
    reader.getReader();
    await rejectsWithCode(() => repo.ingest(reader), 'ERR_INVALID_ARGUMENT');
    for (const bad of [Buffer.from('x'), 'text', 42, null, {}]) {
      await rejectsWithCode(() => repo.ingest(bad), 'ERR_INVALID_ARGUMENT');
    }

    // The ingest fails (its `until` rejects): the generator is returned, so its finally block runs.
    let returned = false;
    async function* endless() {
      try {
        for (;;) yield randomBytes(64 * KiB, 3);
      } finally {
        returned = true;
      }
    }
    await assert.rejects(repo.ingest(endless(), { until: Promise.reject(new Error('producer failed')) }), /producer failed/);
    assert.equal(returned, true, 'the iterator was returned');
    assert.deepEqual(await repo.listSnapshots(), []);
  });

  it('restore works as a web stream through Readable.toWeb', async (t) => {
    const repo = await fresh(t);
    const data = randomBytes(300 * KiB, 9);
    const snap = await repo.ingest(Readable.from([data]));
    const web = Readable.toWeb(await repo.restore(snap.id));
    const parts = [];
    for await (const part of web) parts.push(Buffer.from(part));
    assert.equal(sha256(Buffer.concat(parts)), sha256(data));
  });
});
