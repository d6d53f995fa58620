'use strict';

// Issue 9 point 7: `containerarchive key list|add|remove|passwd`. The repository opens with the
// usual passphrase sources; the new passphrase comes from --new-passphrase-file or
// CONTAINERARCHIVE_NEW_PASSPHRASE (no terminal here, so never a prompt).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { PassThrough } = require('node:stream');

const { textishBytes, KiB } = require('./helpers');
const { ENV_VAR, EXIT, baseEnv, cli, expectUsage, expectFailure, ok } = require('./cli-helpers');

const NEW_VAR = 'CONTAINERARCHIVE_NEW_PASSPHRASE';

describe('CLI: key', () => {
  let dir;
  let repo;
  const data = textishBytes(200 * KiB, 3);
  const as = (passphrase, extra = {}) => baseEnv({ [ENV_VAR]: passphrase, ...extra });
  const keyList = (passphrase) => JSON.parse(ok(cli(['key', 'list', repo, '--json'], { env: as(passphrase) }), 'key list --json').out);
  const restores = (passphrase) => ok(cli(['restore', repo, 'latest'], { env: as(passphrase) }), `restore with ${passphrase}`).stdout.equals(data);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ca-key-'));
    repo = path.join(dir, 'repo');
    ok(cli(['init', repo, '--encrypt'], { env: as('first') }), 'init');
    ok(cli(['backup', repo, '-'], { input: data, env: as('first') }), 'backup');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('list: a table with ID, CREATED, HOST, CURRENT, and --json', () => {
    const r = ok(cli(['key', 'list', repo], { env: as('first') }), 'key list');
    const lines = r.out.trim().split('\n');
    assert.match(lines[0], /^ID\s+CREATED\s+HOST\s+CURRENT$/);
    assert.equal(lines.length, 2);
    assert.match(lines[1], new RegExp(`^[0-9a-f]{32}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+${os.hostname()}\\s+\\*$`));
    const keys = keyList('first');
    assert.deepEqual(Object.keys(keys[0]).sort(), ['createdAt', 'current', 'host', 'id']);
    assert.equal(keys[0].current, true);
  });

  it('add with --new-passphrase-file (trailing newline stripped): both passphrases open', () => {
    const file = path.join(dir, 'second.txt');
    fs.writeFileSync(file, 'second\n', { mode: 0o600 });
    const r = ok(cli(['key', 'add', repo, '--new-passphrase-file', file], { env: as('first') }), 'key add');
    assert.match(r.out, /^added key [0-9a-f]{32} /);
    assert.ok(restores('first') && restores('second'));
    const keys = keyList('second');
    assert.equal(keys.length, 2);
    assert.equal(keys.filter((k) => k.current).length, 1);
    ok(cli(['verify', repo], { env: as('second') }), 'verify with the added key');
  });

  it('remove by a unique prefix; that passphrase stops working', () => {
    const second = keyList('second').find((k) => k.current).id;
    const r = ok(cli(['key', 'remove', repo, second.slice(0, 8)], { env: as('first') }), 'key remove');
    assert.equal(r.out, `removed key ${second}\n`);
    expectFailure(cli(['snapshots', repo], { env: as('second') }), EXIT.PASSPHRASE, [/wrong passphrase/], 'the removed passphrase');
    assert.equal(keyList('first').length, 1);
  });

  it('the last key is never removed; unknown ids are named, exit 2, nothing changes', () => {
    const only = keyList('first')[0].id;
    expectUsage(cli(['key', 'remove', repo, only], { env: as('first') }), [/last key/, /containerarchive key add /, /containerarchive key passwd /], 'remove the last key (in CLI words)');
    expectUsage(cli(['key', 'remove', repo, 'deadbeef00'], { env: as('first') }), [/no key/, new RegExp(only)], 'unknown id');
    expectUsage(cli(['key', 'remove', repo], { env: as('first') }), [/missing <id>/], 'no id');
    assert.deepEqual(keyList('first').map((k) => k.id), [only]);
  });

  it(`passwd with ${NEW_VAR}: the old passphrase fails, the new one opens`, () => {
    const r = ok(cli(['key', 'passwd', repo], { env: as('first', { [NEW_VAR]: 'third' }) }), 'key passwd');
    assert.match(r.out, /^passphrase changed/);
    expectFailure(cli(['snapshots', repo], { env: as('first') }), EXIT.PASSPHRASE, [/wrong passphrase/], 'the old passphrase');
    assert.ok(restores('third'));
    const keys = keyList('third');
    assert.equal(keys.length, 1);
    assert.equal(keys[0].current, true);
    ok(cli(['verify', repo, '--level', 'full'], { env: as('third') }), 'verify full after passwd');
  });

  it('no new passphrase, an empty one or a bad action: exit 2 and nothing changes', () => {
    const before = keyList('third');
    expectUsage(cli(['key', 'add', repo], { env: as('third') }), [/--new-passphrase-file/, new RegExp(NEW_VAR)], 'no source for the new passphrase');
    expectUsage(cli(['key', 'passwd', repo], { env: as('third', { [NEW_VAR]: '' }) }), [/empty/], 'an empty variable');
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, '\n');
    expectUsage(cli(['key', 'add', repo, '--new-passphrase-file', empty], { env: as('third') }), [/empty/], 'an empty file');
    expectUsage(cli(['key', 'add', repo, '--new-passphrase-file', path.join(dir, 'missing.txt')], { env: as('third') }), [/cannot read/], 'a missing file');
    expectUsage(cli(['key', 'rotate', repo], { env: as('third') }), [/unknown action/, /list, add, remove, passwd/], 'unknown action');
    expectUsage(cli(['key', 'list', repo, 'extra'], { env: as('third') }), [/unexpected argument/], 'extra argument');
    expectUsage(cli(['key', 'add', repo, '--new-passphrase', 'x'], { env: as('third') }), [/unknown option/], 'a passphrase on the command line');
    assert.deepEqual(keyList('third'), before);
  });

  it('an unencrypted repository has no keys: exit 2', () => {
    const plain = path.join(dir, 'plain');
    ok(cli(['init', plain]), 'init plain');
    expectUsage(cli(['key', 'list', plain]), [/not encrypted/], 'key list on a plain repository');
  });
});

describe('CLI: key add/passwd ask a terminal twice for the new passphrase', () => {
  const { run } = require('../cli/main');

  /** A fake terminal that types each answer once its prompt was written (no timing involved). */
  function terminal(answers) {
    const stdin = new PassThrough();
    stdin.isTTY = true;
    stdin.isRaw = false;
    stdin.setRawMode = (on) => { stdin.isRaw = on; return stdin; };
    const prompts = [];
    const stderr = {
      isTTY: false,
      text: '',
      write(chunk) {
        this.text += chunk;
        if (/passphrase: $/.test(String(chunk))) {
          prompts.push(String(chunk));
          const answer = answers.shift();
          if (answer !== undefined) setImmediate(() => stdin.write(`${answer}\r`));
        }
        return true;
      },
    };
    const stdout = { isTTY: false, text: '', write(chunk) { this.text += chunk; return true; } };
    return { stdin, stdout, stderr, prompts };
  }

  it('two equal answers add the key; two different ones change nothing (exit 2)', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ca-key-tty-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const repo = path.join(dir, 'repo');
    ok(cli(['init', repo, '--encrypt'], { env: baseEnv({ [ENV_VAR]: 'first' }) }), 'init');
    const env = baseEnv({ [ENV_VAR]: 'first' });

    const same = terminal(['typed twice', 'typed twice']);
    assert.equal(await run(['key', 'add', repo], { ...same, env }), 0, same.stderr.text);
    assert.deepEqual(same.prompts, ['New passphrase: ', 'Repeat the new passphrase: ']);
    assert.match(same.stdout.text, /^added key /);
    ok(cli(['snapshots', repo], { env: baseEnv({ [ENV_VAR]: 'typed twice' }) }), 'the typed passphrase opens');

    const differ = terminal(['one thing', 'another']);
    assert.equal(await run(['key', 'passwd', repo], { ...differ, env }), EXIT.USAGE);
    assert.match(differ.stderr.text, /differ; nothing was changed/);
    const keys = JSON.parse(ok(cli(['key', 'list', repo, '--json'], { env }), 'key list').out);
    assert.equal(keys.length, 2, 'nothing was changed');

    const empty = terminal(['']);
    assert.equal(await run(['key', 'add', repo], { ...empty, env }), EXIT.USAGE);
    assert.match(empty.stderr.text, /cannot be empty/);
  });
});
