'use strict';
// Helpers for the tar catalog tests (issue 13): making tars with real tools, an independent
// reference parser of tar headers (ustar, pax, GNU long names, GNU sparse), chunk boundaries
// of an item of an unencrypted repository, and the last restore:progress event of a read.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { rel, unsealPlain, AAD, readPackHeader, packIds } = require('./fault-helpers');

/** Runs a command (60 s timeout), throws with its stderr unless it exits 0. Returns stdout (Buffer). */
function run(cmd, args, { cwd, input, env, allowFail = false } = {}) {
  const r = spawnSync(cmd, args, { cwd, input, env, timeout: 60000, maxBuffer: 512 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0 && !allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status} ${r.signal || ''}: ${r.stderr.toString()}`);
  }
  return allowFail ? r : r.stdout;
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Normalised member path: leading './' and '/' and a trailing '/' ignored. */
function norm(p) {
  let s = p;
  for (;;) {
    if (s.startsWith('./')) s = s.slice(2);
    else if (s.startsWith('/')) s = s.slice(1);
    else break;
  }
  while (s.length > 1 && s.endsWith('/')) s = s.slice(0, -1);
  return s;
}

function cstr(buf, off, len) {
  const b = buf.subarray(off, off + len);
  const z = b.indexOf(0);
  return (z === -1 ? b : b.subarray(0, z)).toString('utf8');
}

function num(buf, off, len) {
  if (buf[off] & 0x80) {
    // base-256 (GNU): big-endian two's complement, top bit set
    let v = 0n;
    for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(i === 0 ? buf[off] & 0x7f : buf[off + i]);
    return Number(v);
  }
  const s = cstr(buf, off, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function checksumOk(block) {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i];
  return sum === num(block, 148, 8);
}

function parsePax(data) {
  const out = {};
  let p = 0;
  while (p < data.length) {
    const sp = data.indexOf(0x20, p);
    const len = parseInt(data.subarray(p, sp).toString('ascii'), 10);
    const rec = data.subarray(sp + 1, p + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    p += len;
  }
  return out;
}

const TYPES = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'chardev', '4': 'blockdev', '5': 'dir', '6': 'fifo', S: 'file' };

/**
 * Reference parse of a whole tar in memory: the members in archive order, each
 * { path, type, size (stored data bytes), realSize, mode, mtime, uid, gid, uname, gname, link, offset, header, sparse }.
 */
function parseTar(buf) {
  const members = [];
  let p = 0;
  let pending = { header: null };
  let global = {};
  while (p + 512 <= buf.length) {
    const block = buf.subarray(p, p + 512);
    if (block.every((b) => b === 0)) break;
    assert.ok(checksumOk(block), `reference parser: bad header checksum at ${p}`);
    if (pending.header === null) pending.header = p;
    const flag = String.fromCharCode(block[156]);
    const size = num(block, 124, 12);
    const dataOff = p + 512;
    const padded = Math.ceil(size / 512) * 512;
    const data = buf.subarray(dataOff, dataOff + size);
    if (flag === 'x') {
      pending.pax = { ...(pending.pax || {}), ...parsePax(data) };
    } else if (flag === 'g') {
      global = { ...global, ...parsePax(data) };
      pending = { header: null };
    } else if (flag === 'L') {
      pending.longName = cstr(data, 0, data.length);
    } else if (flag === 'K') {
      pending.longLink = cstr(data, 0, data.length);
    } else {
      const magic = block.subarray(257, 263).toString('latin1');
      const prefix = magic === 'ustar\u0000' ? cstr(block, 345, 155) : ''; // POSIX ustar; GNU's 'ustar  ' has no prefix field
      let name = cstr(block, 0, 100);
      if (prefix) name = `${prefix}/${name}`;
      const pax = { ...global, ...(pending.pax || {}) };
      const m = {
        path: pax.path ?? pending.longName ?? name,
        type: TYPES[flag] || 'other',
        size: pax.size !== undefined && flag !== 'S' ? Number(pax.size) : size,
        mode: num(block, 100, 8),
        mtime: pax.mtime !== undefined ? Number(pax.mtime) : num(block, 136, 12),
        uid: pax.uid !== undefined ? Number(pax.uid) : num(block, 108, 8),
        gid: pax.gid !== undefined ? Number(pax.gid) : num(block, 116, 8),
        uname: pax.uname ?? cstr(block, 265, 32),
        gname: pax.gname ?? cstr(block, 297, 32),
        link: pax.linkpath ?? pending.longLink ?? cstr(block, 157, 100),
        offset: dataOff,
        header: pending.header,
        sparse: flag === 'S',
      };
      if (pax['GNU.sparse.major'] !== undefined || pax['GNU.sparse.name'] !== undefined) {
        // GNU sparse in pax form (1.0): the real name and size are in the pax records
        m.path = pax['GNU.sparse.name'] ?? m.path;
        m.size = size;
        m.realSize = Number(pax['GNU.sparse.realsize']);
        m.sparse = true;
      } else if (flag === 'S') {
        m.realSize = num(block, 483, 12);
        assert.equal(block[482], 0, 'reference parser: extended GNU sparse headers are not used by these tests');
      } else {
        m.realSize = m.size;
      }
      // hardlinks and directories carry no data (a header size is data that follows, though)
      if (m.type !== 'file' && m.type !== 'hardlink') m.size = size;
      members.push(m);
      pending = { header: null };
    }
    p = dataOff + padded;
  }
  return members;
}

/** The bytes a subset tar holds for `m`: its header blocks and its padded data. */
function memberBytes(buf, m, storedSize) {
  return buf.subarray(m.header, m.offset + Math.ceil(storedSize / 512) * 512);
}

/** Stored data bytes of a member (the header's size field) from the reference parse. */
function storedSize(buf, m) {
  return num(buf.subarray(m.offset - 512, m.offset), 124, 12);
}

/** Writes a tree of files under `root`; returns nothing. spec: { 'a/b.txt': Buffer | { data, mode } | { symlink } | { hardlink } | { dir, mode } } */
function writeTree(root, spec) {
  fs.mkdirSync(root, { recursive: true });
  for (const [p, v] of Object.entries(spec)) {
    const full = path.join(root, p);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    if (Buffer.isBuffer(v)) fs.writeFileSync(full, v, { mode: 0o644 });
    else if (v.symlink !== undefined) fs.symlinkSync(v.symlink, full);
    else if (v.hardlink !== undefined) fs.linkSync(path.join(root, v.hardlink), full);
    else if (v.dir) fs.mkdirSync(full, { recursive: true });
    else fs.writeFileSync(full, v.data);
    if (v.mode !== undefined && v.symlink === undefined) fs.chmodSync(full, v.mode);
  }
}

/** Every path under dir (relative), with its kind: 'dir' | 'file' | 'symlink'. */
function listTree(dir) {
  const out = new Map();
  const stack = [''];
  while (stack.length) {
    const d = stack.pop();
    for (const ent of fs.readdirSync(path.join(dir, d), { withFileTypes: true })) {
      const r = d ? `${d}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        out.set(r, 'dir');
        stack.push(r);
      } else if (ent.isSymbolicLink()) out.set(r, 'symlink');
      else out.set(r, 'file');
    }
  }
  return out;
}

/** Chunk byte ranges [{ start, end }] of item `name` of snapshot `id` in the UNENCRYPTED repository at `dir`. */
function chunkRanges(dir, id, name) {
  const manifest = JSON.parse(unsealPlain(AAD.snapshot, fs.readFileSync(path.join(dir, rel.snapshot(id)))).toString('utf8'));
  const item = manifest.items.find((i) => i.name === name && !i.catalogOf);
  assert.ok(item, `manifest has item ${name}`);
  const raw = new Map();
  for (const pack of packIds(dir)) for (const e of readPackHeader(dir, pack)) raw.set(e.chunk, e.rawLength);
  const ranges = [];
  let off = 0;
  for (const c of item.chunks) {
    const len = raw.get(c);
    assert.ok(len > 0, `chunk ${c} is in a pack`);
    ranges.push({ start: off, end: off + len });
    off += len;
  }
  assert.equal(off, item.size, 'chunk lengths add up to the item size');
  return ranges;
}

function overlapping(ranges, start, end) {
  return ranges.filter((r) => r.start < end && r.end > start).length;
}

/**
 * Runs `fn` (which resolves a Readable) and collects its bytes, with the restore:progress
 * events emitted meanwhile. Returns { data, last } where last is the final event.
 */
async function readWithProgress(repo, fn) {
  const events = [];
  const sub = repo.on('restore:progress', (e) => events.push(e));
  try {
    const stream = await fn();
    const parts = [];
    for await (const c of stream) parts.push(c);
    return { data: Buffer.concat(parts), events, last: events.at(-1) };
  } finally {
    sub.unsubscribe();
  }
}

async function listAll(iterable) {
  const out = [];
  for await (const e of iterable) out.push(e);
  return out;
}

/** glob -> RegExp per the contract: '*' not across '/', '**' across, '?' one char; 'x/**' also matches 'x'. */
function globRegExp(glob) {
  let src = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      src += '.*';
      i++;
    } else if (c === '*') src += '[^/]*';
    else if (c === '?') src += '[^/]';
    else src += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  if (glob.endsWith('/**')) src = `${src.slice(0, -3)}(/.*)?`;
  return new RegExp(`^${src}$`);
}

module.exports = { run, which, norm, parseTar, memberBytes, storedSize, writeTree, listTree, chunkRanges, overlapping, readWithProgress, listAll, globRegExp };
