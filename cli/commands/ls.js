'use strict';
// `ls`: lists the files of a tar item from its catalog, without reading the item.

const { usageError, q, short, selection, withRepo, resolveSnapshot, JSON_OPTION } = require('../common');

const TYPE_LETTER = { file: '-', dir: 'd', symlink: 'l', hardlink: 'h', chardev: 'c', blockdev: 'b', fifo: 'p', other: '?' };

/** `-rwxr-xr-x` from a type and mode bits (setuid, setgid and sticky included). */
function modeString(type, mode) {
  const bits = ['r', 'w', 'x', 'r', 'w', 'x', 'r', 'w', 'x'].map((c, i) => (mode & (0o400 >> i) ? c : '-'));
  const special = (i, bit, on, off) => {
    if (mode & bit) bits[i] = bits[i] === 'x' ? on : off;
  };
  special(2, 0o4000, 's', 'S');
  special(5, 0o2000, 's', 'S');
  special(8, 0o1000, 't', 'T');
  return `${TYPE_LETTER[type] ?? '?'}${bits.join('')}`;
}

function formatMtime(seconds) {
  const iso = new Date(seconds * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

function line(e) {
  const owner = `${e.uname || e.uid}/${e.gname || e.gid}`;
  const link = e.type === 'symlink' ? ` -> ${e.link}` : e.type === 'hardlink' ? ` link to ${e.link}` : '';
  return `${modeString(e.type, e.mode)} ${owner.padEnd(17)} ${String(e.size).padStart(12)} ${formatMtime(e.mtime)} ${e.path}${link}\n`;
}

async function cmdLs({ values, positionals: [repoPath, ref, prefix], io }) {
  const filter = selection(values);
  return withRepo(repoPath, io, async (repo) => {
    const snapshot = await resolveSnapshot(repo, ref, repoPath, filter);
    const names = snapshot.items.map((i) => i.name).join(', ');
    const item = values.item !== undefined ? snapshot.items.find((i) => i.name === values.item) : snapshot.items.length === 1 ? snapshot.items[0] : null;
    if (!item) {
      throw usageError(values.item !== undefined
        ? `snapshot ${short(snapshot.id)} has no item ${q(values.item)}; its items: ${names}`
        : `snapshot ${short(snapshot.id)} has ${snapshot.items.length} items (${names}); choose one with --item NAME`);
    }
    let count = 0;
    // `ls ... | head` closes stdout early: stop listing, as ls(1) does, without an error.
    let closed = null;
    const onError = (err) => { closed = err; };
    io.stdout.on('error', onError);
    try {
      for await (const e of repo.listFiles(snapshot.id, { item: item.name, ...(prefix !== undefined ? { prefix } : {}) })) {
        if (closed) break;
        count++;
        const text = values.json ? `${JSON.stringify(e)}\n` : line(e);
        // Millions of lines: wait for stdout to drain rather than buffer them all.
        if (!io.stdout.write(text)) {
          await new Promise((resolve) => {
            io.stdout.once('drain', resolve);
            io.stdout.once('error', resolve);
          });
        }
      }
    } finally {
      io.stdout.off('error', onError);
    }
    if (closed && closed.code !== 'EPIPE') throw closed;
    if (!values.json && !io.quiet && io.verbose) io.stderr.write(`${count} entries in ${item.name} of snapshot ${short(snapshot.id)}\n`);
    return 0;
  });
}

module.exports = {
  usage: 'ls <repo> <snapshot|latest> [path-prefix] [--item name] [--tag k=v]... [--host H] [--json]',
  summary: 'list the files of a tar item (type volume-tar or tar) from its catalog',
  options: {
    item: { type: 'string' },
    tag: { type: 'string', multiple: true },
    host: { type: 'string' },
    ...JSON_OPTION,
  },
  positionals: [2, 3],
  optionHelp: {
    'path-prefix': 'only paths starting with it (dir/ means the directory and what is in it)',
    '--item name': 'the tar item to list (needed when the snapshot has several)',
    '--tag k=v': 'with latest or a prefix: only snapshots with these tags (repeatable)',
    '--host H': 'with latest or a prefix: only snapshots of host H',
    '--json': 'one JSON object per file and line (listFiles\' shape)',
  },
  examples: [
    'containerarchive ls /backups/nextcloud latest --item volume.tar data/alice/',
    'containerarchive ls /backups/nextcloud 3f2a9c1b --json | jq -r .path',
  ],
  run: cmdLs,
};
