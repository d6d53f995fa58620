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

require('../cli/main.js')
  .run(process.argv.slice(2))
  .then((code) => {
    finished = true;
    process.exitCode = code;
  });
