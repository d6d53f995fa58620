#!/usr/bin/env node
'use strict';
// The `containerarchive` command (package.json "bin"); see README "Command line".

let finished = false;

// If the event loop ever empties while an operation is still pending (a native
// promise nobody keeps alive), Node would exit 0 with nothing printed. An
// operator must never mistake that for success.
process.on('exit', (code) => {
  if (!finished && code === 0) {
    process.stderr.write('containerarchive: internal error: the engine stopped before the operation finished; this is a bug, please report it\n');
    process.exitCode = 1;
  }
});

// Ctrl-C (SIGINT) or a service manager's SIGTERM cancels the running
// operation: it stops at its next safe point, removes its lock and exits
// 130 / 143. A second signal exits at once, as a user pressing Ctrl-C twice
// expects; repair() then clears what the process left.
const controller = new AbortController();
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(signal, () => {
    if (controller.signal.aborted) {
      process.stderr.write(`containerarchive: ${signal} again: exiting now; its lock may be left behind (clear it with: containerarchive unlock <repo>)\n`);
      process.exit(code);
    }
    controller.abort(signal);
  });
}

const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal };
require('../cli/main.js')
  .run(process.argv.slice(2), io)
  .then((code) => {
    finished = true;
    // Interrupted: exit now, not once a stalled reader drains what stdout still holds.
    if (controller.signal.aborted) process.exit(code);
    process.exitCode = code;
  });
