#!/usr/bin/env node
'use strict';
// Packs the publishable tarballs exactly as they go to npm:
//
// - the platform package: a staged copy of npm/<platform>/ with the built addon inside;
// - the main package: the files `npm pack` selects from the repository (package.json
//   "files"), with package.json gaining `optionalDependencies` on every platform package
//   of package.json "napi.targets", at the main package's version.
//
// The optional dependencies are added here, at pack time, and not committed in
// package.json: until a version's platform packages are on the registry, npm cannot
// resolve them, leaves them out of package-lock.json, and `npm ci` then refuses to run
// (the same reason `napi pre-publish` adds them at publish time).
//
//   node scripts/pack.js [--platform linux-x64-gnu] [--binary <file.node>] [--out <dir>] [--main-only]
//
// Prints a JSON summary { platform, main, native } where each tarball is
// { path, filename, size, unpackedSize, files: [{ path, size }], manifest }.
// Nothing under the repository is modified.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const ROOT = path.resolve(__dirname, '..');

function rootPackage() {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
}

const ARCH = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' };

/** napi-rs platform name of a Rust target triple, e.g. aarch64-unknown-linux-musl -> linux-arm64-musl. */
function platformOf(triple) {
  const [cpu, , sys, abi] = triple.split('-');
  const arch = ARCH[cpu];
  if (arch && sys === 'linux' && (abi === 'gnu' || abi === 'musl')) return `linux-${arch}-${abi}`;
  if (arch && sys === 'darwin') return `darwin-${arch}`;
  if (arch && sys === 'windows' && abi === 'msvc') return `win32-${arch}-msvc`;
  throw new Error(`no napi-rs platform name known for target ${triple}; extend platformOf() in scripts/pack.js`);
}

/** { '@serve.zone/containerarchive-<platform>': version } for every napi target. */
function optionalDependencies(pkg = rootPackage()) {
  return Object.fromEntries(pkg.napi.targets.map((t) => [`${pkg.name}-${platformOf(t)}`, pkg.version]));
}

/** The napi-rs platform name of this machine, e.g. linux-x64-gnu, darwin-arm64, win32-x64-msvc. */
function hostPlatform() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const report = process.report && typeof process.report.getReport === 'function' ? process.report.getReport() : null;
    const glibc = report && report.header && report.header.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** How to run npm: its own CLI script under this node when it can be found, else the npm on PATH. */
function npmCommand() {
  const candidates = [
    process.env.npm_execpath,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'bin', 'npm-cli.js'),
  ];
  for (const c of candidates) {
    if (c && /npm-cli\.js$/.test(c) && fs.existsSync(c)) return { file: process.execPath, args: [c] };
  }
  return { file: process.platform === 'win32' ? 'npm.cmd' : 'npm', args: [], shell: process.platform === 'win32' };
}

function npm(args, options = {}) {
  const cmd = npmCommand();
  return execFileSync(cmd.file, [...cmd.args, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    shell: cmd.shell,
    ...options,
  });
}

/** `npm pack --json` (optionally --dry-run) of `dir`; the JSON entry of the package. */
function npmPackJson(dir, extra) {
  const out = npm(['pack', '--json', '--loglevel=error', ...extra], { cwd: dir });
  // Lifecycle output may precede the JSON array; it is the last thing on stdout.
  return JSON.parse(out.slice(out.indexOf('[')))[0];
}

function npmPack(dir, outDir) {
  const info = npmPackJson(dir, ['--pack-destination', outDir]);
  return {
    path: path.join(outDir, info.filename),
    filename: info.filename,
    size: info.size,
    unpackedSize: info.unpackedSize,
    files: info.files.map((f) => ({ path: f.path, size: f.size })),
    manifest: JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')),
  };
}

function withStage(prefix, fn) {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    return fn(stage);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** The main package: npm's own file selection from the repository, package.json with the optional dependencies. */
function packMain(outDir) {
  const pkg = rootPackage();
  const selected = npmPackJson(ROOT, ['--dry-run']).files.map((f) => f.path);
  return withStage('containerarchive-main-', (stage) => {
    for (const rel of selected) {
      if (rel === 'package.json') continue;
      fs.mkdirSync(path.dirname(path.join(stage, rel)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, rel), path.join(stage, rel));
    }
    const manifest = { ...pkg, optionalDependencies: { ...(pkg.optionalDependencies || {}), ...optionalDependencies(pkg) } };
    fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return npmPack(stage, outDir);
  });
}

/** The platform package: npm/<platform>/ plus the addon. */
function packPlatform(platform, binary, outDir) {
  const pkg = rootPackage();
  const nodeFile = `${pkg.napi.binaryName}.${platform}.node`;
  const npmDir = path.join(ROOT, 'npm', platform);
  if (!fs.existsSync(path.join(npmDir, 'package.json'))) {
    throw new Error(`npm/${platform}/package.json does not exist; known platforms: ${fs.readdirSync(path.join(ROOT, 'npm')).join(', ')}`);
  }
  const source = path.resolve(binary || path.join(ROOT, nodeFile));
  if (!fs.existsSync(source)) throw new Error(`${source} does not exist; run \`npm run build\` first`);
  return withStage(`containerarchive-${platform}-`, (stage) => {
    fs.cpSync(npmDir, stage, { recursive: true });
    fs.copyFileSync(source, path.join(stage, nodeFile));
    const manifest = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'));
    if (manifest.version !== pkg.version) {
      throw new Error(`npm/${platform}/package.json has version ${manifest.version}, the main package ${pkg.version}; run \`npx napi version\``);
    }
    return npmPack(stage, outDir);
  });
}

/**
 * Packs the platform package (unless mainOnly) and the main package into `outDir`.
 * @param {{ platform?: string, binary?: string, outDir: string, mainOnly?: boolean }} options
 */
function packAll({ platform = hostPlatform(), binary, outDir, mainOnly = false }) {
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.resolve(outDir);
  const native = mainOnly ? null : packPlatform(platform, binary, out);
  const main = packMain(out);
  return { platform: mainOnly ? null : platform, main, native };
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      platform: { type: 'string' },
      binary: { type: 'string' },
      out: { type: 'string' },
      'main-only': { type: 'boolean' },
    },
    strict: true,
  });
  const result = packAll({
    platform: values.platform,
    binary: values.binary,
    outDir: values.out || path.join(ROOT, 'dist'),
    mainOnly: Boolean(values['main-only']),
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

module.exports = { packAll, packMain, packPlatform, platformOf, optionalDependencies, hostPlatform, npmCommand, npm, ROOT };
