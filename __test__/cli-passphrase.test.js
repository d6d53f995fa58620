'use strict';

// Issue 9 point 7: where the CLI takes an encrypted repository's passphrase from.
// --passphrase-file, CONTAINERARCHIVE_PASSPHRASE_FILE and
// CONTAINERARCHIVE_PASSPHRASE_COMMAND (stdout is the passphrase, like restic's
// --password-command), besides CONTAINERARCHIVE_PASSPHRASE and a TTY prompt.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { textishBytes, KiB } = require('./helpers');
const { ENV_VAR, EXIT, baseEnv, cli, expectFailure, ok, snapshotsJson } = require('./cli-helpers');

const FILE_VAR = `${ENV_VAR}_FILE`;
const COMMAND_VAR = `${ENV_VAR}_COMMAND`;
const PASSPHRASE = 'tr0ub4dor & 3';

describe('CLI: passphrase sources', () => {
  let dir;
  let repo;
  let pwFile;
  const data = textishBytes(300 * KiB, 7);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ca-pw-'));
    repo = path.join(dir, 'repo');
    pwFile = path.join(dir, 'pw.txt');
    // As `echo ... > file` writes it: one trailing newline, which is not part of the passphrase.
    fs.writeFileSync(pwFile, `${PASSPHRASE}\n`, { mode: 0o600 });
    ok(cli(['init', repo, '--encrypt', '--passphrase-file', pwFile]), 'init --encrypt --passphrase-file');
    ok(cli(['backup', repo, '-'], { input: data, env: baseEnv({ [ENV_VAR]: PASSPHRASE }) }), 'backup');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('--passphrase-file: init used the file without its trailing newline, and every command takes it', () => {
    const list = JSON.parse(ok(cli(['snapshots', repo, '--json', '--passphrase-file', pwFile]), 'snapshots').out);
    assert.equal(list.length, 1);
    const restored = ok(cli(['restore', repo, 'latest', '--passphrase-file', pwFile]), 'restore').stdout;
    assert.ok(restored.equals(data), 'restored bytes match');
    // It wins over the environment, even a wrong one.
    ok(cli(['verify', repo, '--passphrase-file', pwFile], { env: baseEnv({ [ENV_VAR]: 'wrong' }) }), 'the flag wins over the variable');
  });

  it(`${FILE_VAR} names a file holding the passphrase`, () => {
    const env = baseEnv({ [FILE_VAR]: pwFile });
    assert.equal(snapshotsJson(repo, env).length, 1);
    const crlf = path.join(dir, 'crlf.txt');
    fs.writeFileSync(crlf, `${PASSPHRASE}\r\n`);
    assert.equal(snapshotsJson(repo, baseEnv({ [FILE_VAR]: crlf })).length, 1, 'a CRLF line end is stripped too');
  });

  it(`${COMMAND_VAR}: the command's stdout is the passphrase, and it never reads the data on stdin`, () => {
    const env = baseEnv({ [COMMAND_VAR]: `printf '%s\\n' '${PASSPHRASE}'` });
    assert.equal(snapshotsJson(repo, env).length, 1);
    // backup - reads stdin; a passphrase command that read stdin would eat the data.
    const more = textishBytes(200 * KiB, 8);
    const greedy = baseEnv({ [COMMAND_VAR]: `cat > /dev/null; printf '%s' '${PASSPHRASE}'` });
    const saved = JSON.parse(ok(cli(['backup', repo, '-', '--json'], { input: more, env: greedy }), 'backup with a command source').out);
    assert.equal(saved.items[0].size, more.length, 'all of stdin reached the snapshot');
    const back = ok(cli(['restore', repo, saved.id], { env }), 'restore it').stdout;
    assert.ok(back.equals(more));
  });

  it('a source that is set but unusable exits 12 (no passphrase) with one line naming it, and changes nothing', () => {
    const before = snapshotsJson(repo, baseEnv({ [ENV_VAR]: PASSPHRASE })).length;
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, '\n');
    const cases = [
      [['--passphrase-file', path.join(dir, 'missing.txt')], {}, [/cannot read the passphrase file/, /missing\.txt/]],
      [['--passphrase-file', empty], {}, [/is empty/]],
      [[], { [FILE_VAR]: path.join(dir, 'nope') }, [new RegExp(FILE_VAR), /cannot read/]],
      [[], { [COMMAND_VAR]: 'exit 3' }, [new RegExp(COMMAND_VAR), /exit code 3/]],
      [[], { [COMMAND_VAR]: 'true' }, [new RegExp(COMMAND_VAR), /printed nothing/]],
      [[], { [ENV_VAR]: PASSPHRASE, [FILE_VAR]: pwFile }, [/set only one/]],
      [[], { [FILE_VAR]: path.join(dir, 'wrong.txt') }, [/cannot read/]],
    ];
    for (const [flags, vars, patterns] of cases) {
      const what = `${flags.join(' ')} ${JSON.stringify(vars)}`;
      expectFailure(cli(['backup', repo, '-', ...flags], { input: 'data', env: baseEnv(vars) }), EXIT.PASSPHRASE, patterns, what);
    }
    const wrong = path.join(dir, 'wrong.txt');
    fs.writeFileSync(wrong, 'not it\n');
    expectFailure(cli(['backup', repo, '-', '--passphrase-file', wrong], { input: 'data' }), EXIT.PASSPHRASE, [/wrong passphrase/, /wrong\.txt/], 'a wrong passphrase names its source');
    expectFailure(cli(['backup', repo, '-'], { input: 'data', env: baseEnv({ [COMMAND_VAR]: 'echo nope' }) }), EXIT.PASSPHRASE, [/wrong passphrase/, new RegExp(COMMAND_VAR)], 'wrong from a command');
    assert.equal(snapshotsJson(repo, baseEnv({ [ENV_VAR]: PASSPHRASE })).length, before, 'no snapshot was written');
  });

  it('init --encrypt with an unusable source creates nothing', () => {
    const target = path.join(dir, 'never');
    expectFailure(cli(['init', target, '--encrypt'], { env: baseEnv({ [COMMAND_VAR]: 'exit 1' }) }), EXIT.PASSPHRASE, [new RegExp(COMMAND_VAR)], 'failing command');
    assert.ok(!fs.existsSync(path.join(target, 'config.json')));
  });
});
