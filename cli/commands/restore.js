'use strict';
// `restore`: writes one item of a snapshot to a file (atomically) or stdout.

const fs = require('node:fs');
const path = require('node:path');
const { Transform } = require('node:stream');
const { pipeline } = require('node:stream/promises');

const { Progress, formatBytes, formatElapsed } = require('../progress');
const { BIN, CliError, usageError, q, short, selection, withRepo, resolveSnapshot, JSON_OPTION } = require('../common');

/** -o must name a file (new, or existing with --force) in an existing directory. */
function checkOutput(output, force) {
  let stat = null;
  try {
    stat = fs.statSync(output);
  } catch (err) {
    if (err.code !== 'ENOENT') throw new CliError(1, `cannot write ${q(output)}: ${err.code}; check the path and its permissions`);
  }
  if (stat && stat.isDirectory()) {
    throw usageError(`${q(output)} is a directory; give -o a file name, e.g. -o ${q(path.join(output, 'restored.bin'))}`);
  }
  if (stat && !force) throw usageError(`${q(output)} exists; pass --force to overwrite it, or choose another -o`);
  const dir = path.dirname(path.resolve(output));
  if (!fs.existsSync(dir)) {
    throw new CliError(1, `cannot write ${q(output)}: the directory ${q(dir)} does not exist; create it or choose another -o`);
  }
}

/**
 * `--range` in the bytes of an HTTP Range header: `START-END` (END
 * inclusive), `START-` or `-SUFFIX`, optionally after `bytes=`. Returns
 * `[start, end)` within an item of `size` bytes.
 */
function parseRange(text, size) {
  const m = /^(?:bytes=)?(\d*)-(\d*)$/.exec(text);
  const bad = (why) => usageError(`--range ${q(text)} ${why}; use START-END (END inclusive, as in an HTTP Range header), START- or -LAST, e.g. --range 0-1048575`);
  if (!m || (m[1] === '' && m[2] === '')) throw bad('is not a byte range');
  const [first, last] = [m[1] === '' ? null : Number(m[1]), m[2] === '' ? null : Number(m[2])];
  if ((first !== null && !Number.isSafeInteger(first)) || (last !== null && !Number.isSafeInteger(last))) throw bad('is too large');
  if (first === null) return [Math.max(0, size - last), size];
  if (last !== null && last < first) throw bad('ends before it starts');
  return [Math.min(first, size), last === null ? size : Math.min(last + 1, size)];
}

/** What to write: the whole item, a byte range, one tar member, or a tar of some members. */
function chooseSource(repo, snapshot, item, values, signal) {
  const modes = ['range', 'file', 'include'].filter((k) => values[k] !== undefined);
  if (modes.length > 1) throw usageError(`--${modes[0]} and --${modes[1]} cannot be combined; choose one`);
  if (values.range !== undefined) {
    const [start, end] = parseRange(values.range, item.size);
    return { expected: end - start, open: () => repo.restore(snapshot.id, { item: item.name, start, end, signal }) };
  }
  if (values.file !== undefined) return { open: () => repo.restoreFile(snapshot.id, { item: item.name, path: values.file, signal }) };
  if (values.include !== undefined) {
    const open = async () => {
      // Several patterns: one tar per pattern would repeat members, so match any of them in one pass.
      const globs = values.include;
      if (globs.length === 1) return repo.restoreFiles(snapshot.id, { item: item.name, glob: globs[0], signal });
      const { globMatcher, normalise } = require('../../lib/catalog.js');
      const tests = globs.map(globMatcher);
      const paths = [];
      for await (const e of repo.listFiles(snapshot.id, { item: item.name })) {
        const p = normalise(e.path);
        if (tests.some((t) => t(p))) paths.push(e.path);
      }
      return repo.restoreFiles(snapshot.id, { item: item.name, paths, signal });
    };
    return { open };
  }
  return { expected: item.size, open: () => repo.restore(snapshot.id, { item: item.name, signal }) };
}

async function cmdRestore({ values, positionals: [repoPath, ref], io }) {
  const filter = selection(values);
  const output = values.output === undefined || values.output === '-' ? null : values.output;
  if (output === null && io.stdout.isTTY) {
    throw usageError(`stdout is a terminal; restore to a file with -o FILE, or redirect: ${BIN} restore ${q(repoPath)} ${q(ref)} > FILE`);
  }
  if (output !== null) checkOutput(output, values.force);
  return withRepo(repoPath, io, async (repo) => {
    const snapshot = await resolveSnapshot(repo, ref, repoPath, filter);
    const itemNames = snapshot.items.map((i) => i.name).join(', ');
    let item;
    if (values.item !== undefined) {
      item = snapshot.items.find((i) => i.name === values.item);
      if (!item) throw usageError(`snapshot ${short(snapshot.id)} has no item ${q(values.item)}; its items: ${itemNames}`);
    } else if (snapshot.items.length === 1) {
      item = snapshot.items[0];
    } else {
      throw usageError(`snapshot ${short(snapshot.id)} has ${snapshot.items.length} items (${itemNames}); choose one with --item NAME`);
    }

    const chosen = chooseSource(repo, snapshot, item, values, io.signal);
    const progress = new Progress('restore', { stream: io.stderr, total: chosen.expected ?? null, json: values.json, off: io.noProgress });
    let bytes = 0;
    const counter = new Transform({
      transform(chunk, _encoding, callback) {
        bytes += chunk.length;
        progress.update({ bytes });
        callback(null, chunk);
      },
    });
    const source = await chosen.open();
    try {
      if (output === null) {
        await pipeline(source, counter, io.stdout, { end: false });
      } else {
        // Written next to the target and renamed into place, so a failed restore leaves no partial file.
        const tmp = path.join(path.dirname(output), `.${path.basename(output)}.${process.pid}.containerarchive-tmp`);
        try {
          await pipeline(source, counter, fs.createWriteStream(tmp, { flags: 'wx' }));
          fs.renameSync(tmp, output);
        } catch (err) {
          fs.rmSync(tmp, { force: true });
          // The engine's errors explain themselves; a filesystem error names the user's path, not the temp file.
          if (err && err.name !== 'ArchiveError' && /^E[A-Z]+$/.test(err.code ?? '')) {
            throw new CliError(1, `cannot write ${q(output)}: ${err.code}${err.code === 'ENOSPC' ? ' (the disk is full)' : ''}; check the directory, its permissions and free space`);
          }
          throw err;
        }
      }
    } finally {
      progress.finish();
    }
    if (chosen.expected !== undefined && bytes !== chosen.expected) {
      throw new CliError(1, `restored ${bytes} bytes of ${q(item.name)}, but snapshot ${short(snapshot.id)} records ${chosen.expected}; run: ${BIN} verify ${q(repoPath)} --level full`);
    }
    // stdout may carry the data, so the summary goes to stderr: a JSON line with --json, nothing with --quiet.
    if (values.json) {
      const summary = { type: 'summary', snapshot: snapshot.id, item: item.name, bytes, sha256: item.sha256 ?? null, output: output ?? '-', elapsedMs: Math.round(progress.elapsedMs()) };
      io.stderr.write(`${JSON.stringify(summary)}\n`);
    } else if (!io.quiet) {
      if (io.verbose) {
        io.stderr.write(`  item ${item.name}${item.type ? ` (${item.type})` : ''}: ${formatBytes(item.size)}${item.sha256 ? `, sha256 ${item.sha256} verified` : ''}\n`);
      }
      io.stderr.write(
        `restored ${item.name} from snapshot ${short(snapshot.id)}: ${formatBytes(bytes)} to ${output === null ? 'stdout' : output} in ${formatElapsed(progress.elapsedMs())}\n`,
      );
    }
    return 0;
  });
}

module.exports = {
  usage: 'restore <repo> <snapshot|latest> [--tag k=v]... [--host H] [--item name] [--range A-B | --file PATH | --include GLOB...] [-o file|-] [--force] [--json]',
  summary: 'write one item of a snapshot (or a byte range, or files of a tar item) to a file or stdout',
  options: {
    item: { type: 'string' },
    range: { type: 'string' },
    file: { type: 'string' },
    include: { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
    force: { type: 'boolean' },
    tag: { type: 'string', multiple: true },
    host: { type: 'string' },
    ...JSON_OPTION,
  },
  positionals: [2, 2],
  optionHelp: {
    '--item name': 'the item to restore (needed when the snapshot has several)',
    '--range A-B': 'only bytes A to B of the item, B inclusive as in an HTTP Range header (also A- and -LAST)',
    '--file PATH': 'only the member PATH of a tar item (see ls)',
    '--include GLOB': 'a tar of the members of a tar item matching GLOB (* within a directory, ** across; repeatable)',
    '-o, --output FILE': 'write to FILE, atomically (default: stdout; - is stdout)',
    '--force': 'replace an existing FILE',
    '--tag k=v': 'with latest or a prefix: only snapshots with these tags (repeatable)',
    '--host H': 'with latest or a prefix: only snapshots of host H',
    '--json': 'JSON progress lines and a summary line on stderr',
  },
  examples: [
    'containerarchive restore /backups/my-service latest --tag service=postgres --item database.sql | psql mydb',
    'containerarchive restore /backups/my-service 3f2a9c1b --item volumes.tar -o /tmp/volumes.tar',
    'containerarchive restore /backups/my-service latest --item volumes.tar --file data/config.php -o config.php',
    "containerarchive restore /backups/my-service latest --item volumes.tar --include 'data/alice/**' > alice.tar",
    'containerarchive restore /backups/my-service latest --range 0-1048575 > first-mib.bin',
  ],
  run: cmdRestore,
};
