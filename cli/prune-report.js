'use strict';
// Prints prune's result group by group: each group's header, then its kept
// snapshots (with the rules that kept them) and its removed ones.

function groupTitle(group) {
  const parts = [];
  if (group.host !== undefined) parts.push(`host ${group.host === '' ? '-' : group.host}`);
  const tags = Object.entries(group.tags || {});
  parts.push(`tags ${tags.length === 0 ? '-' : tags.map(([k, v]) => `${k}=${v}`).join(',')}`);
  return parts.join(', ');
}

/** Lines: "group host -, tags service=postgres" then "  keep    <snapshot>  (daily)" / "  remove  <snapshot>". */
function printPruneGroups(out, result, describe) {
  const [keepWord, removeWord] = result.dryRun ? ['keep   ', 'remove '] : ['kept   ', 'removed'];
  for (const group of result.groups) {
    out.write(`group ${groupTitle(group)}\n`);
    for (const id of group.keptSnapshots) out.write(`  ${keepWord} ${describe(id)}  (${(group.reasons[id] || []).join(', ')})\n`);
    for (const id of group.removedSnapshots) out.write(`  ${removeWord} ${describe(id)}\n`);
  }
}

module.exports = { printPruneGroups, groupTitle };
