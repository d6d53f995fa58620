'use strict';
// Directory walking for the test helpers; no node:test, so child processes can load it.
const fs = require('node:fs');
const path = require('node:path');

/** All non-directory entries under `dir`, recursively (absolute paths, sorted). */
function walkFiles(dir) {
  const out = [];
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop();
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) stack.push(p);
      else out.push(p);
    }
  }
  return out.sort();
}

module.exports = { walkFiles };
