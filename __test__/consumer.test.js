'use strict';

// The package as a user gets it: `npm pack` makes the main tarball and this
// platform's prebuilt package (with the freshly built addon inside); both are
// installed OFFLINE into a brand-new project with no Rust toolchain on PATH;
// that project runs the README's Quick Start (as ESM and as CommonJS), the
// installed CLI, and type-checks a TypeScript file against the installed types.
//
// The Quick Start is read from README.md at test time and run unchanged except
// for its absolute path literals ('/backups/my-service', '/tmp/database.sql',
// ...), which are each replaced by a path under a temp directory, so the test
// never touches real files in /tmp or /backups.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { packAll, hostPlatform, npmCommand, platformOf, ROOT } = require('../scripts/pack.js');

const PLATFORM = hostPlatform();
const NATIVE_PKG = `@serve.zone/containerarchive-${PLATFORM}`;
const BINARY = path.join(ROOT, `containerarchive.${PLATFORM}.node`);
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const TYPES_NODE = path.join(ROOT, 'node_modules', '@types', 'node');
const FIXTURES = path.join(__dirname, 'fixtures', 'types');
const IS_WINDOWS = process.platform === 'win32';

// ---------------------------------------------------------------------------
// Environment without a Rust toolchain
// ---------------------------------------------------------------------------

const exe = (name) => (IS_WINDOWS ? [`${name}.exe`, `${name}.cmd`, name] : [name]);

/** Where `cmd` resolves on `envPath` (like `command -v`), or null. */
function which(cmd, envPath) {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    for (const name of exe(cmd)) {
      const p = path.join(dir, name);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        if (fs.statSync(p).isFile()) return p;
      } catch {
        // not here
      }
    }
  }
  return null;
}

function hasRust(dir) {
  if (/[\\/]\.(cargo|rustup)([\\/]|$)/.test(dir)) return true;
  return ['cargo', 'rustc', 'rustup'].some((c) => exe(c).some((n) => fs.existsSync(path.join(dir, n))));
}

/** process.env minus npm's lifecycle variables, the test runner's, and every trace of Rust. */
function consumerEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || /^(INIT_CWD|NODE_PATH|NODE_OPTIONS|NODE_TEST_CONTEXT|CARGO.*|RUSTUP.*|RUSTC.*|ARCHIVE_PASSPHRASE|CONTAINERARCHIVE_PASSPHRASE|NAPI_RS_NATIVE_LIBRARY_PATH)$/i.test(k)) continue;
    env[k] = v;
  }
  const pathKey = Object.keys(env).find((k) => k.toUpperCase() === 'PATH') || 'PATH';
  const dirs = (env[pathKey] || '').split(path.delimiter).filter((d) => d && !hasRust(d));
  const nodeDir = path.dirname(process.execPath);
  if (!dirs.includes(nodeDir) && !hasRust(nodeDir)) dirs.unshift(nodeDir);
  env[pathKey] = dirs.join(path.delimiter);
  return { ...env, ...extra };
}

function pathOf(env) {
  return env[Object.keys(env).find((k) => k.toUpperCase() === 'PATH')] || '';
}

function run(file, args, options) {
  const result = spawnSync(file, args, { encoding: 'utf8', timeout: 60000, ...options });
  if (result.error) throw result.error;
  return result;
}

function explain(result) {
  return `exit ${result.status} (signal ${result.signal})\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

// ---------------------------------------------------------------------------
// The Quick Start, from README.md
// ---------------------------------------------------------------------------

function quickStartSource() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const heading = readme.search(/^## Quick Start\s*$/m);
  assert.ok(heading >= 0, 'README.md has no "## Quick Start" section');
  const fence = /^```js\s*\n([\s\S]*?)^```\s*$/m.exec(readme.slice(heading));
  assert.ok(fence, 'the Quick Start section has no ```js block');
  return fence[1];
}

/**
 * Replaces each absolute path literal ('/...') of the snippet by a path under
 * `root` (mirroring it: '/tmp/database.sql' -> <root>/tmp/database.sql).
 * Returns the new source and the mapping; nothing else of the code changes.
 */
function relocatePaths(source, root) {
  const mapping = new Map();
  const out = source.replace(/'(\/[^'\n]*)'/g, (_, literal) => {
    const target = path.join(root, ...literal.split('/').filter(Boolean));
    mapping.set(literal, target);
    return JSON.stringify(target);
  });
  assert.ok(mapping.size > 0, 'the Quick Start uses no absolute path; update relocatePaths()');
  assert.doesNotMatch(out, /'\/[^']*'/, 'an absolute path literal was left in place');
  return { source: out, mapping };
}

/** The literal passed to `call('...')` in the snippet (asserted to be there exactly once). */
function literalArgument(source, call) {
  const matches = [...source.matchAll(new RegExp(`${call.replace('.', '\\.')}\\('([^']+)'`, 'g'))];
  assert.equal(matches.length, 1, `expected exactly one ${call}('...') in the Quick Start`);
  return matches[0][1];
}

/**
 * ESM -> CommonJS, mechanically: `import { a, b as c } from 'x'` becomes
 * `const { a, b: c } = require('x')`, and the rest (which uses top-level
 * await) is wrapped, unchanged, in an async IIFE.
 */
function toCommonJs(source) {
  const lines = source.split('\n');
  const head = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') {
      head.push(line);
      continue;
    }
    const named = /^import\s*\{([^}]*)\}\s*from\s*(['"][^'"]+['"]);?\s*$/.exec(line);
    const dflt = /^import\s+([\w$]+)\s+from\s*(['"][^'"]+['"]);?\s*$/.exec(line);
    if (named) head.push(`const {${named[1].replace(/\s+as\s+/g, ': ')}} = require(${named[2]});`);
    else if (dflt) head.push(`const ${dflt[1]} = require(${dflt[2]});`);
    else break;
  }
  const body = lines.slice(i).join('\n');
  assert.doesNotMatch(body, /^\s*(import|export)\s/m, 'the Quick Start has an import/export after its code starts');
  return {
    code: `'use strict';\n${head.join('\n')}\n(async () => {\n${body}\n})().catch((err) => {\n  console.error(err);\n  process.exitCode = 1;\n});\n`,
    body,
  };
}

/** Something that looks like a real dump, a few MiB, deterministic. */
function sqlDump(rows) {
  const lines = ['BEGIN;', 'CREATE TABLE users (id integer primary key, name text, email text);'];
  let x = 12345;
  for (let i = 0; i < rows; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    lines.push(`INSERT INTO users VALUES (${i}, 'user_${x.toString(36)}', 'u${i}@example.org');`);
  }
  lines.push('COMMIT;', '');
  return Buffer.from(lines.join('\n'));
}

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// ---------------------------------------------------------------------------

describe(`consumer: packed tarballs installed offline (${PLATFORM})`, () => {
  let work;
  let tarballs;
  let project;
  let env;

  before(() => {
    assert.ok(fs.existsSync(BINARY), `${path.relative(ROOT, BINARY)} is missing; run \`npm run build\` first`);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ca-consumer-'));
    env = consumerEnv();
  });

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('npm/<platform>/ is a correct package for every napi target', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    assert.equal(pkg.napi.binaryName, 'containerarchive');
    const platforms = pkg.napi.targets.map(platformOf);
    assert.deepEqual(platforms, ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl', 'darwin-x64', 'darwin-arm64', 'win32-x64-msvc']);
    assert.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), [...platforms].sort(), 'one npm/ directory per target, no others');
    for (const platform of platforms) {
      const dir = path.join(ROOT, 'npm', platform);
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
      const [os, cpu, abi] = platform.split('-');
      assert.equal(manifest.name, `${pkg.name}-${platform}`);
      assert.equal(manifest.version, pkg.version, `${platform}: same version as the main package`);
      assert.deepEqual(manifest.os, [os], `${platform}: os`);
      assert.deepEqual(manifest.cpu, [cpu], `${platform}: cpu`);
      if (os === 'linux') assert.deepEqual(manifest.libc, [abi === 'gnu' ? 'glibc' : 'musl'], `${platform}: libc`);
      else assert.equal(manifest.libc, undefined, `${platform}: no libc outside Linux`);
      assert.equal(manifest.main, `containerarchive.${platform}.node`);
      assert.deepEqual(manifest.files, [`containerarchive.${platform}.node`]);
      assert.equal(manifest.license, pkg.license);
      assert.match(fs.readFileSync(path.join(dir, 'README.md'), 'utf8'), new RegExp(`containerarchive-${platform}`));
      assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith('.node')), `npm/${platform}/ must not hold a built addon`);
    }
  });

  it('npm pack makes the main and the platform tarball, holding only what users need', (t) => {
    tarballs = packAll({ platform: PLATFORM, binary: BINARY, outDir: path.join(work, 'dist') });
    const { main, native } = tarballs;
    for (const tarball of [main, native]) {
      t.diagnostic(`${tarball.filename}: ${tarball.size} bytes packed, ${tarball.unpackedSize} unpacked`);
      for (const f of tarball.files) t.diagnostic(`  ${String(f.size).padStart(9)}  ${f.path}`);
      assert.ok(fs.statSync(tarball.path).size === tarball.size, `${tarball.filename} is not where npm said`);
    }

    const mainFiles = main.files.map((f) => f.path).sort();
    const allowed = /^(package\.json|README\.md|LICENSE(\.md)?|index\.m?js|index\.d\.ts|binding\.js|binding\.d\.ts|bin\/[\w.-]+\.js|cli\/(commands\/)?[\w.-]+\.js|lib\/[\w.-]+\.js|docs\/[\w.-]+\.md)$/;
    for (const f of mainFiles) assert.match(f, allowed, `the main tarball must not contain ${f}`);
    for (const needed of ['package.json', 'README.md', 'index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'binding.d.ts', 'bin/containerarchive.js', 'lib/location.js', 'docs/FORMAT.md']) {
      assert.ok(mainFiles.includes(needed), `the main tarball lacks ${needed}`);
    }
    assert.ok(!mainFiles.some((f) => /\.rs$|Cargo\.|\.node$|(^|\/)(src|core|__test__|npm|scripts|bench|examples|target)\//.test(f)), 'Rust sources, tests or binaries leaked into the main tarball');
    assert.ok(main.size < 256 * 1024, `the main tarball is ${main.size} bytes; something big slipped in`);

    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const expectedOptional = Object.fromEntries(pkg.napi.targets.map((target) => [`${pkg.name}-${platformOf(target)}`, pkg.version]));
    assert.deepEqual(main.manifest.optionalDependencies, expectedOptional, 'the main package lists every platform package as an optional dependency at its own version');
    assert.equal(main.manifest.bin.containerarchive, 'bin/containerarchive.js');

    const nativeFiles = native.files.map((f) => f.path).sort();
    assert.deepEqual(nativeFiles, ['README.md', `containerarchive.${PLATFORM}.node`, 'package.json']);
    const node = native.files.find((f) => f.path.endsWith('.node'));
    assert.equal(node.size, fs.statSync(BINARY).size, 'the platform tarball must carry the freshly built addon');
  });

  it('both tarballs install offline into a new project with no Rust toolchain on PATH', (t) => {
    assert.ok(tarballs, 'packing failed');
    assert.equal(which('cargo', pathOf(env)), null, 'cargo must not be resolvable in the consumer environment');
    assert.equal(which('rustc', pathOf(env)), null, 'rustc must not be resolvable in the consumer environment');
    if (!IS_WINDOWS) {
      const probe = run('sh', ['-c', 'command -v cargo || command -v rustc || echo none'], { env });
      assert.equal(probe.stdout.trim(), 'none', `the shell still finds a Rust tool: ${probe.stdout}`);
    }

    project = path.join(work, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2)}\n`);
    const npm = npmCommand();
    const started = Date.now();
    // A private, empty cache: nothing can come from anywhere but the two tarballs. The other
    // platforms' optional packages cannot be fetched offline; npm must skip them, not fail.
    const install = run(
      npm.file,
      [...npm.args, 'install', '--offline', '--no-audit', '--no-fund', '--cache', path.join(work, 'npm-cache'), tarballs.main.path, tarballs.native.path],
      { cwd: project, env, shell: npm.shell },
    );
    t.diagnostic(`npm install --offline took ${Date.now() - started} ms`);
    assert.equal(install.status, 0, `npm install --offline failed: ${explain(install)}`);

    const installed = fs.readdirSync(path.join(project, 'node_modules', '@serve.zone')).sort();
    assert.deepEqual(installed, ['containerarchive', `containerarchive-${PLATFORM}`], 'exactly the two packages are installed');
    const mainDir = path.join(project, 'node_modules', '@serve.zone', 'containerarchive');
    const mainPkg = JSON.parse(fs.readFileSync(path.join(mainDir, 'package.json'), 'utf8'));
    for (const hook of ['preinstall', 'install', 'postinstall']) {
      assert.equal(mainPkg.scripts && mainPkg.scripts[hook], undefined, `the package must not run a ${hook} script (no build on install)`);
    }
    assert.equal(mainPkg.optionalDependencies[NATIVE_PKG], mainPkg.version, 'the platform package is an optional dependency at the same version');
    assert.ok(!fs.readdirSync(mainDir).some((f) => f.endsWith('.node')), 'the main package must not carry an addon of its own');
    const nativeDir = path.join(project, 'node_modules', '@serve.zone', `containerarchive-${PLATFORM}`);
    assert.equal(sha256(fs.readFileSync(path.join(nativeDir, `containerarchive.${PLATFORM}.node`))), sha256(fs.readFileSync(BINARY)));
  });

  for (const flavour of ['esm', 'cjs']) {
    it(`runs the README Quick Start unchanged as ${flavour === 'esm' ? 'ESM (.mjs)' : 'CommonJS (.cjs)'}, loading the platform package`, (t) => {
      assert.ok(project, 'install failed');
      const original = quickStartSource();
      const root = path.join(work, `root-${flavour}`);
      const { source, mapping } = relocatePaths(original, root);
      const input = mapping.get(literalArgument(original, 'createReadStream'));
      const output = mapping.get(literalArgument(original, 'createWriteStream'));
      const repoDir = mapping.get(literalArgument(original, 'ContainerArchive.init'));
      assert.ok(input && output && repoDir, 'the Quick Start paths were not all relocated');
      t.diagnostic(`paths relocated: ${[...mapping].map(([from, to]) => `${from} -> ${to}`).join(', ')}`);

      const dump = sqlDump(60000);
      fs.mkdirSync(path.dirname(input), { recursive: true });
      fs.mkdirSync(path.dirname(output), { recursive: true });
      fs.writeFileSync(input, dump);

      let file;
      if (flavour === 'esm') {
        file = path.join(project, 'quickstart.mjs');
        fs.writeFileSync(file, source);
      } else {
        const { code, body } = toCommonJs(source);
        assert.ok(source.endsWith(body), 'the CommonJS body must be the Quick Start code unchanged');
        file = path.join(project, 'quickstart.cjs');
        fs.writeFileSync(file, code);
      }

      // Records which addon the process really loaded (the ESM entry loads the CJS package too).
      const probeOut = path.join(work, `loaded-${flavour}.json`);
      const probe = path.join(work, 'probe.cjs');
      fs.writeFileSync(
        probe,
        "process.on('exit', () => require('fs').writeFileSync(process.env.PROBE_OUT, JSON.stringify(Object.keys(require.cache).filter((f) => f.endsWith('.node')))));\n",
      );
      const result = run(process.execPath, ['--require', probe, file], {
        cwd: project,
        env: { ...env, ARCHIVE_PASSPHRASE: `consumer-${flavour}-${process.pid}`, PROBE_OUT: probeOut },
      });
      assert.equal(result.status, 0, `the Quick Start failed: ${explain(result)}`);
      assert.match(result.stdout.trim(), /^[0-9a-f]{64} [1-9]\d* 0$/, 'it logs the snapshot id, new and reused chunks');
      assert.ok(fs.existsSync(path.join(repoDir, 'config.json')), 'the repository was created at the relocated path');
      const restored = fs.readFileSync(output);
      assert.equal(restored.length, dump.length, 'restored file length');
      assert.ok(restored.equals(dump), 'the restored file must equal the source bytes');

      const loaded = JSON.parse(fs.readFileSync(probeOut, 'utf8')).map((f) => fs.realpathSync(f));
      const expectedDir = fs.realpathSync(path.join(project, 'node_modules', '@serve.zone', `containerarchive-${PLATFORM}`));
      assert.deepEqual(loaded, [path.join(expectedDir, `containerarchive.${PLATFORM}.node`)], `the addon must come from ${NATIVE_PKG}`);
    });
  }

  it('the installed CLI works from node_modules/.bin', () => {
    assert.ok(project, 'install failed');
    const repoDir = path.join(work, 'cli-repo');
    const bin = path.join(project, 'node_modules', '@serve.zone', 'containerarchive', 'bin', 'containerarchive.js');
    const init = run(process.execPath, [bin, 'init', repoDir], { cwd: project, env });
    assert.equal(init.status, 0, explain(init));
    const backup = run(process.execPath, [bin, 'backup', repoDir, '-', '--tag', 'from=consumer'], { cwd: project, env, input: 'hello from a consumer\n' });
    assert.equal(backup.status, 0, explain(backup));
    // The bin link npm made, as a user's shell would run it (POSIX: through its #! line).
    const link = path.join(project, 'node_modules', '.bin', IS_WINDOWS ? 'containerarchive.cmd' : 'containerarchive');
    assert.ok(fs.existsSync(link), 'npm linked the containerarchive bin');
    const list = IS_WINDOWS
      ? run(link, ['snapshots', repoDir, '--json'], { cwd: project, env, shell: true })
      : run(link, ['snapshots', repoDir, '--json'], { cwd: project, env });
    assert.equal(list.status, 0, explain(list));
    const snapshots = JSON.parse(list.stdout);
    assert.equal(snapshots.length, 1);
    assert.deepEqual(snapshots[0].tags, { from: 'consumer' });
  });

  it('a TypeScript file using every API and event compiles with tsc --strict against the installed types; a misuse does not', (t) => {
    assert.ok(project, 'install failed');
    assert.ok(fs.existsSync(TSC), 'typescript is a devDependency; run npm ci');
    // A TypeScript consumer has @types/node; link the repository's pinned copy.
    fs.mkdirSync(path.join(project, 'node_modules', '@types'), { recursive: true });
    fs.symlinkSync(TYPES_NODE, path.join(project, 'node_modules', '@types', 'node'), IS_WINDOWS ? 'junction' : 'dir');
    for (const f of fs.readdirSync(FIXTURES)) fs.copyFileSync(path.join(FIXTURES, f), path.join(project, f));
    const flags = ['--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node'];

    const good = run(process.execPath, [TSC, ...flags, '--listFiles', 'usage.ts', 'esm.mts'], { cwd: project, env });
    assert.equal(good.status, 0, `tsc rejected usage.ts / esm.mts: ${explain(good)}`);
    const typesFile = fs.realpathSync(path.join(project, 'node_modules', '@serve.zone', 'containerarchive', 'index.d.ts'));
    const listed = good.stdout.split(/\r?\n/).filter(Boolean).map((f) => path.resolve(project, f));
    assert.ok(listed.includes(typesFile), `the types must resolve through the installed package.json ("types"): ${typesFile} not in tsc --listFiles`);
    t.diagnostic(`tsc --strict --noEmit: usage.ts and esm.mts compile against ${path.relative(project, typesFile)}`);

    const misuseLine = fs.readFileSync(path.join(project, 'misuse.ts'), 'utf8').split('\n').findIndex((l) => l.includes('// MISUSE:')) + 1;
    assert.ok(misuseLine > 0, 'misuse.ts marks its wrong line with // MISUSE:');
    const bad = run(process.execPath, [TSC, ...flags, 'misuse.ts'], { cwd: project, env });
    assert.notEqual(bad.status, 0, 'tsc must reject misuse.ts');
    const errors = bad.stdout.split(/\r?\n/).filter((l) => /error TS\d+/.test(l));
    assert.ok(errors.length > 0, `tsc printed no error: ${explain(bad)}`);
    for (const e of errors) assert.match(e, new RegExp(`^misuse\\.ts\\(${misuseLine},\\d+\\): error TS2322: .*'"?lz4"?'`), `unexpected tsc error: ${e}`);
    t.diagnostic(`tsc rejects misuse.ts: ${errors[0]}`);
  });

  it('the exports map: one engine for require and import, package.json exported, internals not', () => {
    assert.ok(project, 'install failed');
    const script = path.join(project, 'exports.mjs');
    fs.writeFileSync(
      script,
      [
        "import { createRequire } from 'node:module';",
        "import * as ns from '@serve.zone/containerarchive';",
        "import api, { ContainerArchive, ArchiveError, AbortError } from '@serve.zone/containerarchive';",
        'const require = createRequire(import.meta.url);',
        "const cjs = require('@serve.zone/containerarchive');",
        "const pkg = require('@serve.zone/containerarchive/package.json');",
        'let internal = null;',
        "try { require('@serve.zone/containerarchive/cli/main.js'); } catch (err) { internal = err.code; }",
        'let internalEsm = null;',
        "try { await import('@serve.zone/containerarchive/index.js'); } catch (err) { internalEsm = err.code; }",
        'console.log(JSON.stringify({',
        '  same: ContainerArchive === cjs.ContainerArchive && ArchiveError === cjs.ArchiveError && AbortError === cjs.AbortError && api === cjs,',
        '  named: Object.keys(ns).sort(),',
        '  version: pkg.version,',
        '  internal,',
        '  internalEsm,',
        '}));',
      ].join('\n'),
    );
    const r = run(process.execPath, [script], { cwd: project, env });
    assert.equal(r.status, 0, explain(r));
    const out = JSON.parse(r.stdout);
    const expectedVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
    assert.deepEqual(out, {
      same: true,
      named: ['AbortError', 'ArchiveError', 'ContainerArchive', 'default'],
      version: expectedVersion,
      internal: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
      internalEsm: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
    });
  });

  it('without the platform package, require() and import fail with our message: platform, package, install command', (t) => {
    assert.ok(tarballs, 'packing failed');
    const bare = path.join(work, 'bare');
    fs.mkdirSync(bare);
    fs.writeFileSync(path.join(bare, 'package.json'), `${JSON.stringify({ name: 'bare', version: '1.0.0', private: true }, null, 2)}\n`);
    const npm = npmCommand();
    // As after `npm install --omit=optional`: only the main package.
    const install = run(
      npm.file,
      [...npm.args, 'install', '--offline', '--omit=optional', '--no-audit', '--no-fund', '--cache', path.join(work, 'npm-cache-bare'), tarballs.main.path],
      { cwd: bare, env, shell: npm.shell },
    );
    assert.equal(install.status, 0, `npm install --offline --omit=optional failed: ${explain(install)}`);
    const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
    for (const [file, code] of [
      ['probe.cjs', "try { require('@serve.zone/containerarchive'); } catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }"],
      ['probe.mjs', "try { await import('@serve.zone/containerarchive'); } catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }"],
    ]) {
      fs.writeFileSync(path.join(bare, file), code);
      const r = run(process.execPath, [file], { cwd: bare, env });
      assert.equal(r.status, 0, explain(r));
      const err = JSON.parse(r.stdout);
      assert.equal(err.code, 'ERR_NATIVE_MISSING', `${file}: ${r.stdout}`);
      assert.match(err.message, new RegExp(PLATFORM), `${file}: names the platform`);
      assert.match(err.message, new RegExp(`npm install ${NATIVE_PKG.replace('.', '\\.')}@${version.replace(/\./g, '\\.')}`), `${file}: names the install command`);
      assert.doesNotMatch(err.message, /npm has a bug|wasm32-wasi/, `${file}: not napi-rs's generic text`);
      t.diagnostic(`${file}: ${err.message}`);
    }
  });
});
