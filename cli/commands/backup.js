'use strict';
// `backup`: stores files, stdin or a command's output as one snapshot.

const fs = require('node:fs');
const path = require('node:path');

const { Progress, formatBytes, formatElapsed } = require('../progress');
const { startProducer, ProducerFailed } = require('../producer');
const { BIN, CliError, usageError, oneLine, q, parseKeyValues, parseItem, withRepo, plural, writeJson, JSON_OPTION } = require('../common');

/** Marks the --command input in the backup plan. */
const COMMAND_INPUT = Symbol('command');

async function cmdBackup({ values, positionals: [repoPath, ...files], io }) {
  const tags = parseKeyValues(values.tag, '--tag');
  const specs = (values.item || []).map(parseItem);
  if (values.command !== undefined) {
    if (files.length > 0) throw usageError(`--command replaces the inputs; give either files (or -) or --command, not both`);
    if (values.command.trim() === '') throw usageError("--command needs a command, e.g. --command 'pg_dump mydb'");
  } else if (files.length === 0) {
    throw usageError(`backup: missing <file|->; usage: ${BIN} ${module.exports.usage}`);
  }
  const inputs = values.command !== undefined ? [COMMAND_INPUT] : files;
  if (specs.length > inputs.length) {
    throw usageError(`${plural(specs.length, '--item')} for ${plural(inputs.length, 'input')}; give at most one --item per input, in input order`);
  }
  if (inputs.filter((i) => i === '-').length > 1) throw usageError("'-' (stdin) can be given only once");

  let total = 0;
  const names = new Set();
  const plan = inputs.map((input, k) => {
    let size = null;
    if (input === '-') {
      if (io.stdin.isTTY) {
        throw usageError(`stdin is a terminal; pipe the data in, e.g. ${BIN} backup ${q(repoPath)} --command 'pg_dump mydb'`);
      }
    } else if (input !== COMMAND_INPUT) {
      let stat;
      try {
        stat = fs.statSync(input);
        fs.accessSync(input, fs.constants.R_OK);
      } catch (err) {
        throw usageError(`cannot read ${q(input)}: ${err.code === 'ENOENT' ? 'no such file' : oneLine(err.message)}; check the path`);
      }
      if (stat.isDirectory()) {
        throw usageError(`${q(input)} is a directory; back up a tar of it: tar -C ${q(input)} -cf - . | ${BIN} backup ${q(repoPath)} -`);
      }
      if (stat.isFile()) size = stat.size;
    }
    if (size === null) total = null;
    else if (total !== null) total += size;
    const spec = specs[k] || {};
    const fallback = input === '-' ? 'stdin' : input === COMMAND_INPUT ? 'stdout' : path.basename(input);
    const name = spec.name || fallback;
    if (names.has(name)) {
      throw usageError(`two inputs are named ${q(name)}; name them with --item NAME[:TYPE], one per input in order`);
    }
    names.add(name);
    // Streams (stdin, a command's output) that give no data are suspicious; empty files are not.
    return { input, name, type: spec.type, streamed: typeof input !== 'string' || input === '-' };
  });

  return withRepo(repoPath, io, async (repo) => {
    const progress = new Progress('backup', { stream: io.stderr, total, json: values.json, off: io.noProgress });
    const sub = repo.on('ingest:progress', (e) => progress.update({ bytes: e.bytesProcessed, percentage: e.percentage }));
    // Started only now, so a usage error or a locked repository never runs the producer.
    const producer = values.command !== undefined ? startProducer(values.command, io.stderr) : null;
    const streams = plan.map((p) => {
      if (p.input === COMMAND_INPUT) return producer.stream;
      return p.input === '-' ? io.stdin : fs.createReadStream(p.input, { highWaterMark: 1 << 20 });
    });
    let snapshot;
    try {
      snapshot = await repo.ingestMulti(
        plan.map((p, k) => ({ name: p.name, ...(p.type ? { type: p.type } : {}), stream: streams[k] })),
        { tags, ...(values.host !== undefined ? { host: values.host } : {}), ...(producer ? { until: producer.until } : {}), signal: io.signal },
      );
    } catch (err) {
      if (err instanceof ProducerFailed) {
        throw new CliError(1, `${err.message}; no snapshot was written`);
      }
      throw err;
    } finally {
      progress.finish();
      sub.unsubscribe();
      if (producer) producer.stop();
      for (const s of streams) if (s !== io.stdin) s.destroy();
    }
    const empty = plan.filter((p, k) => p.streamed && snapshot.items[k].size === 0).map((p) => p.name);
    for (const name of empty) {
      io.stderr.write(
        `${BIN}: warning: ${q(name)} read 0 bytes, so the snapshot holds an empty item; if a producer failed, ` +
          `use --command so a failing producer writes no snapshot\n`,
      );
    }
    if (values.json) {
      writeJson(io, snapshot);
    } else {
      if (io.verbose) {
        for (const item of snapshot.items) {
          io.stdout.write(`  item ${item.name}${item.type ? ` (${item.type})` : ''}: ${formatBytes(item.size)}${item.sha256 ? `, sha256 ${item.sha256}` : ''}\n`);
        }
      }
      io.stdout.write(
        `snapshot ${snapshot.id} saved: ${plural(snapshot.items.length, 'item')}, ${formatBytes(snapshot.originalSize)} read, ` +
          `${formatBytes(snapshot.storedSize)} added, ${snapshot.newChunks} new / ${snapshot.reusedChunks} reused chunks, ` +
          `in ${formatElapsed(progress.elapsedMs())}${empty.length > 0 ? `; WARNING: empty input (${empty.join(', ')})` : ''}\n`,
      );
    }
    return 0;
  });
}

module.exports = {
  usage: "backup <repo> (<file|->... | --command 'CMD') [--tag k=v]... [--host H] [--item name[:type]]... [--json]",
  summary: "store files (or stdin as -, or a command's output) as one snapshot",
  options: { tag: { type: 'string', multiple: true }, host: { type: 'string' }, item: { type: 'string', multiple: true }, command: { type: 'string' }, ...JSON_OPTION },
  positionals: [1, Infinity],
  optionHelp: {
    '--tag k=v': 'tag the snapshot (repeatable); prune and restore select by tags',
    '--host H': 'record H as the snapshot\'s host (default: this machine\'s name)',
    '--item name[:type]': 'name (and type) the inputs in order (default: the file name, stdin for -, stdout for --command); type volume-tar or tar catalogs a tar\'s files for ls and restore --file',
    "--command 'CMD'": 'run CMD through the shell and store its stdout; no snapshot unless it exits 0',
    '--json': 'print the snapshot as JSON; JSON progress lines on stderr',
  },
  examples: [
    "containerarchive backup /backups/db --command 'pg_dump mydb' --item database.sql:database-dump --tag service=postgres",
    'tar -C /srv/data -cf - . | containerarchive backup /backups/data - --item data.tar:volume-tar',
  ],
  run: cmdBackup,
};
