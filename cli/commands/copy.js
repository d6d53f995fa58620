'use strict';
// `copy`: copies snapshots from one repository into another (e.g. off-site),
// skipping those the target already has.

const { Progress, formatBytes, formatElapsed } = require('../progress');
const { BIN, CliError, q, short, selection, openRepo, plural, writeJson, parseDateFlag, JSON_OPTION } = require('../common');

/** Opens <to>: --to-passphrase-file, else the same sources as <from>. */
async function openTarget(toPath, values, io, ctx) {
  const file = values['to-passphrase-file'];
  if (file === '') throw new CliError(2, '--to-passphrase-file needs a file name');
  // Errors while opening <to> name <to>.
  ctx.repo = toPath;
  try {
    return await openRepo(toPath, { ...io, passphraseFile: file ?? io.passphraseFile });
  } catch (err) {
    if (err instanceof CliError && err.exitCode === 12 && file === undefined) {
      throw new CliError(12, `${err.message} (for ${q(toPath)}, pass --to-passphrase-file FILE when its passphrase differs)`);
    }
    throw err;
  }
}

async function cmdCopy({ values, positionals: [fromPath, toPath], io, ctx }) {
  const filter = selection(values);
  const after = parseDateFlag(values.after, '--after');
  const before = parseDateFlag(values.before, '--before');
  const from = await openRepo(fromPath, io);
  try {
    const to = await openTarget(toPath, values, io, ctx);
    ctx.repo = fromPath;
    try {
      const progress = new Progress('copy', { stream: io.stderr, json: values.json, off: io.noProgress });
      const sub = from.on('copy:progress', (e) => progress.update({ bytes: e.bytesProcessed, percentage: e.percentage }));
      let result;
      try {
        result = await from.copySnapshots(to, { ...filter, ...(after ? { after } : {}), ...(before ? { before } : {}), signal: io.signal });
      } finally {
        progress.finish();
        sub.unsubscribe();
      }
      if (values.json) {
        writeJson(io, result);
        return 0;
      }
      if (io.verbose) {
        for (const id of result.copied) io.stdout.write(`  copied  ${id}\n`);
        for (const id of result.skipped) io.stdout.write(`  skipped ${id} (${q(toPath)} has it)\n`);
      } else if (result.copied.length > 0 && result.copied.length <= 5) {
        io.stdout.write(`  copied ${result.copied.map(short).join(', ')}\n`);
      }
      io.stdout.write(
        `copy: ${plural(result.copied.length, 'snapshot')} copied, ${result.skipped.length} already in ${q(toPath)}; ` +
          `${formatBytes(result.bytesCopied)} read, ${formatBytes(result.storedSize)} stored (${plural(result.newChunks, 'new chunk')}) ` +
          `in ${formatElapsed(progress.elapsedMs())}\n`,
      );
      return 0;
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

module.exports = {
  usage: 'copy <from> <to> [--tag k=v]... [--host H] [--after DATE] [--before DATE] [--to-passphrase-file FILE] [--json]',
  summary: 'copy snapshots into another repository (e.g. off-site), skipping those it has',
  options: {
    tag: { type: 'string', multiple: true },
    host: { type: 'string' },
    after: { type: 'string' },
    before: { type: 'string' },
    'to-passphrase-file': { type: 'string' },
    ...JSON_OPTION,
  },
  positionals: [2, 2],
  optionHelp: {
    '--tag k=v': 'only snapshots with this tag (repeatable: all must match)',
    '--host H': 'only snapshots made on host H',
    '--after DATE': 'only snapshots taken after DATE (e.g. 2026-01-31)',
    '--before DATE': 'only snapshots taken before DATE',
    '--to-passphrase-file FILE': "the passphrase of <to> when it differs from <from>'s (which comes from the usual sources)",
    '--json': 'print the result as JSON: { copied, skipped, newChunks, reusedChunks, storedSize, bytesCopied }',
  },
  examples: [
    `${BIN} copy /backups/my-service /mnt/offsite/my-service`,
    `${BIN} copy /backups/my-service /mnt/offsite/my-service --tag service=postgres --after 2026-01-01`,
  ],
  run: cmdCopy,
};
