'use strict';

// Tar catalogs on the JS side (issue 13): matching paths, reading the
// catalog's JSON lines as they stream, and planning the byte ranges of a
// member or of a subset tar. The engine stores and seals the catalog; this
// module never trusts a line it reads without checking its fields.

const TYPES = new Set(['file', 'dir', 'symlink', 'hardlink', 'chardev', 'blockdev', 'fifo', 'other']);
const BLOCK = 512;

/** Paths compare without a leading './' or '/' and without a trailing '/'. */
function normalise(path) {
  let p = path;
  for (;;) {
    if (p.startsWith('./')) p = p.slice(2);
    else if (p.startsWith('/')) p = p.slice(1);
    else break;
  }
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p === '.' ? '' : p;
}

/**
 * A glob as a RegExp over normalised paths: `*` and `?` stay within one
 * path segment, `**` crosses segments; `dir/**` also matches `dir` itself.
 */
function globMatcher(glob) {
  const pattern = normalise(glob);
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      // 'a/**' matches 'a' too; '**/' matches zero or more directories.
      if (pattern[i + 2] === '/') { source += '(?:.*/)?'; i += 2; } else { source += '.*'; i += 1; }
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  source = source.replace(/\/\.\*$/, '(?:/.*)?');
  const re = new RegExp(`^${source}$`, 's');
  return (path) => re.test(path);
}

/** Which entries a listFiles / restoreFiles call wants: by prefix, glob or exact paths. */
function entryFilter({ prefix, glob, paths }) {
  const tests = [];
  if (prefix !== undefined) {
    // 'etc/' means the directory and what is in it; 'etc/ng' is a plain string prefix.
    const p = normalise(prefix);
    const directory = prefix.endsWith('/') && p !== '';
    tests.push((path) => (directory ? path === p || path.startsWith(`${p}/`) : path.startsWith(p)));
  }
  if (glob !== undefined) tests.push(globMatcher(glob));
  if (paths !== undefined) {
    const wanted = new Set(paths.map(normalise));
    tests.push((path) => wanted.has(path));
  }
  return (entry) => tests.every((t) => t(normalise(entry.path)));
}

function isCount(v) {
  return Number.isSafeInteger(v) && v >= 0;
}

/** Parses one catalog line; a line that fails its checks is damage, not data. */
function parseEntry(line, itemSize) {
  let e;
  try {
    e = JSON.parse(line);
  } catch {
    return null;
  }
  if (!e || typeof e !== 'object' || typeof e.path !== 'string' || !TYPES.has(e.type)) return null;
  for (const k of ['size', 'mode', 'uid', 'gid', 'offset', 'header', 'end']) if (!isCount(e[k])) return null;
  if (!Number.isSafeInteger(e.mtime) || e.header > e.offset || e.offset > e.end || e.end > itemSize) return null;
  if (e.type === 'file' && !e.sparse && e.offset + e.size > e.end) return null;
  return e;
}

/** Splits a stream of catalog bytes into parsed entries, in order. */
async function* catalogEntries(stream, itemSize, damaged) {
  let rest = '';
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    const lines = rest.split('\n');
    rest = lines.pop();
    for (const line of lines) {
      if (line === '') continue;
      const entry = parseEntry(line, itemSize);
      if (!entry) throw damaged();
      yield entry;
    }
  }
  rest += decoder.decode();
  if (rest !== '') throw damaged();
}

/** The byte range a member occupies in the tar, its headers and padding included. */
function memberRange(entry) {
  return [entry.header, entry.end];
}

/** Adds a range to a list, merging it into the last one when they touch. */
function addRange(ranges, [start, end]) {
  const last = ranges[ranges.length - 1];
  if (last && last[1] === start) last[1] = end;
  else ranges.push([start, end]);
}

/** Two zero blocks end a tar. */
const TAR_END = Buffer.alloc(2 * BLOCK);

module.exports = { normalise, globMatcher, entryFilter, parseEntry, catalogEntries, memberRange, addRange, TAR_END };
