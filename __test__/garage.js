'use strict';

// A real Garage (S3-compatible object store) for the Node tests, the twin of
// core/tests/common/garage.rs: free loopback ports, a temp dir, layout, bucket
// and key. `stop()` kills the nodes and removes the dir; a process exit does
// too, so a failed test leaves nothing running.
//
// Garage 2.5.0 comes from scripts/ensure-garage.sh (npm pretest). Without it,
// startGarage() rejects, unless CONTAINERARCHIVE_SKIP_S3=1: then it resolves
// to null and the caller skips (`if (!g) return t.skip(...)`).

const { spawn, execFile } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');

const execFileAsync = promisify(execFile);

const SKIP_VAR = 'CONTAINERARCHIVE_SKIP_S3';
const REGION = 'garage';
const READY_DEADLINE_MS = 60000;

/** The garage binary: $GARAGE_BIN, then PATH, then cargo's bin dir; null when absent. */
function garageBinary() {
  if (process.env.GARAGE_BIN) return fs.existsSync(process.env.GARAGE_BIN) ? process.env.GARAGE_BIN : null;
  const cargoHome = process.env.CARGO_HOME || path.join(os.homedir(), '.cargo');
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  dirs.push(path.join(cargoHome, 'bin'));
  for (const dir of dirs) {
    const candidate = path.join(dir, 'garage');
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
  }
  return null;
}

function s3Skipped() {
  return process.env[SKIP_VAR] === '1';
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const running = new Set();
process.on('exit', () => {
  for (const g of running) g.stopSync();
});

/**
 * Starts Garage: `nodes` nodes (each in its own zone, replication factor `nodes`).
 * Resolves to { endpoint, region, bucket, accessKeyId, secretAccessKey, nodes, cli, stop }
 * or to null when the S3 tests are skipped.
 */
async function startGarage({ nodes = 1 } = {}) {
  if (s3Skipped()) return null;
  const bin = garageBinary();
  if (!bin) {
    throw new Error(
      `garage is not installed: run scripts/ensure-garage.sh (npm test runs it), or set ${SKIP_VAR}=1 to skip the S3 tests`,
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ca-garage-'));
  const secret = crypto.randomBytes(32).toString('hex');
  const g = {
    dir,
    region: REGION,
    bucket: 'ca-test',
    accessKeyId: '',
    secretAccessKey: '',
    nodes: [],
    endpoint: '',
    cli: (node, args) => execFileAsync(bin, ['-c', g.nodes[node].config, ...args], { encoding: 'utf8' }),
    /** Waits (bounded) until the bucket answers a listing, e.g. after restarting nodes. */
    async waitForQuorum() {
      const { s3Client } = require('./s3-client');
      const client = s3Client(g);
      // Nodes back off from reconnecting to a peer that was down; introduce them again.
      for (const id of g.nodeIds.slice(1)) await until(g, 'node reconnect', () => g.cli(0, ['node', 'connect', id]));
      await until(g, 'a quorum of nodes', () => client.list('').then(() => true));
    },
    stopSync() {
      for (const node of g.nodes) node.kill();
      fs.rmSync(dir, { recursive: true, force: true });
      running.delete(g);
    },
    async stop() {
      await Promise.all(g.nodes.map((node) => node.killAndWait()));
      g.stopSync();
    },
  };
  running.add(g);
  try {
    for (let i = 0; i < nodes; i++) g.nodes.push(await startNode(bin, path.join(dir, `node${i}`), secret, nodes));
    g.endpoint = g.nodes[0].endpoint;
    await configure(g);
    return g;
  } catch (err) {
    await g.stop();
    throw err;
  }
}

async function startNode(bin, dir, secret, replication) {
  const [s3Port, rpcPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  fs.mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'garage.toml');
  fs.writeFileSync(
    config,
    `metadata_dir = "${dir}/meta"
data_dir = "${dir}/data"
db_engine = "sqlite"
replication_factor = ${replication}
rpc_bind_addr = "127.0.0.1:${rpcPort}"
rpc_public_addr = "127.0.0.1:${rpcPort}"
rpc_secret = "${secret}"
[s3_api]
s3_region = "${REGION}"
api_bind_addr = "127.0.0.1:${s3Port}"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:${adminPort}"
`,
  );
  // Each launch appends to the log, so a restarted node keeps its history.
  const launch = () => {
    const log = fs.openSync(path.join(dir, 'server.log'), 'a');
    const child = spawn(bin, ['-c', config, 'server'], {
      stdio: ['ignore', log, log],
      env: { ...process.env, RUST_LOG: 'garage=warn' },
    });
    fs.closeSync(log);
    child.unref();
    return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
  };
  let { child, exited } = launch();
  const node = {
    dir,
    config,
    endpoint: `http://127.0.0.1:${s3Port}`,
    /** The admin API (Prometheus metrics at /metrics: no token is set). */
    adminEndpoint: `http://127.0.0.1:${adminPort}`,
    get child() {
      return child;
    },
    get exited() {
      return exited;
    },
    running: () => child.exitCode === null && child.signalCode === null,
    /** Starts the (killed) node again on its ports, with its data. */
    restart() {
      if (node.running()) return;
      ({ child, exited } = launch());
    },
    log: () => {
      try {
        return fs.readFileSync(path.join(dir, 'server.log'), 'utf8').slice(-2000);
      } catch {
        return '';
      }
    },
    kill() {
      if (node.running()) child.kill('SIGKILL');
    },
    async killAndWait() {
      if (node.running()) {
        child.ref(); // unref'd while it runs; waiting for its exit must keep the loop alive
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  return node;
}

/** Polls `probe` (resolving truthy when ready) until the deadline; fails with the nodes' logs. */
async function until(g, what, probe) {
  const deadline = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    const dead = g.nodes.find((n) => !n.running());
    if (dead) throw new Error(`garage exited while waiting for ${what}:\n${dead.log()}`);
    if (Date.now() > deadline) {
      throw new Error(`garage: no ${what} within ${READY_DEADLINE_MS} ms:\n${g.nodes.map((n) => n.log()).join('\n---\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function configure(g) {
  const ids = [];
  for (let i = 0; i < g.nodes.length; i++) {
    ids.push(
      await until(g, 'node id', async () => {
        const { stdout } = await g.cli(i, ['node', 'id', '-q']);
        await g.cli(i, ['status']);
        return stdout.trim();
      }),
    );
  }
  g.nodeIds = ids;
  for (const id of ids.slice(1)) await until(g, 'node connect', () => g.cli(0, ['node', 'connect', id]));
  for (let i = 0; i < ids.length; i++) {
    await g.cli(0, ['layout', 'assign', '-z', `dc${i + 1}`, '-c', '1G', ids[i].split('@')[0]]);
  }
  await g.cli(0, ['layout', 'apply', '--version', '1']);
  await until(g, 'bucket', () => g.cli(0, ['bucket', 'create', g.bucket]));
  const { stdout } = await g.cli(0, ['json-api', 'CreateKey', '{"name":"ca-test"}']);
  const key = JSON.parse(stdout);
  g.accessKeyId = key.accessKeyId;
  g.secretAccessKey = key.secretAccessKey;
  await g.cli(0, ['bucket', 'allow', '--read', '--write', '--owner', g.bucket, '--key', 'ca-test']);
}

module.exports = { startGarage, garageBinary, s3Skipped, SKIP_VAR };
