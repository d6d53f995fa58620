'use strict';
// `backup --command`: runs the producer (e.g. pg_dump) and ingests its
// stdout. The snapshot depends on its exit status through ingest's `until`:
// a producer that fails never becomes a snapshot.

const { spawn } = require('node:child_process');

class ProducerFailed extends Error {
  constructor(command, code, signal) {
    super(
      signal
        ? `the command ${JSON.stringify(command)} was killed by ${signal}`
        : `the command ${JSON.stringify(command)} exited with status ${code}`,
    );
    this.exitStatus = code;
    this.signal = signal;
  }
}

/**
 * Starts `command` through the shell. Returns its stdout as `stream`, and
 * `until`, which resolves when it exits 0 and rejects with a ProducerFailed
 * otherwise (or with the spawn error). Its stderr goes to `stderr`.
 */
function startProducer(command, stderr) {
  const child = spawn(command, { shell: true, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
  child.stderr.on('data', (chunk) => stderr.write(chunk));
  const until = new Promise((resolve, reject) => {
    child.once('error', reject);
    // 'close' comes after stdout and stderr are drained, so all of stderr is passed through.
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new ProducerFailed(command, code, signal));
    });
  });
  // Handled by the ingest through `until`; this only silences the unhandled-rejection warning.
  until.catch(() => {});
  return {
    stream: child.stdout,
    until,
    /** Stops the producer when the backup fails for another reason. */
    stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill();
    },
  };
}

module.exports = { startProducer, ProducerFailed };
