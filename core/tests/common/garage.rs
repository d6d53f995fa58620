//! A real Garage (S3-compatible, distributed object store) that a test starts
//! on loopback ports and that is stopped, and its files removed, when the
//! handle drops, also when the test panics.
//!
//! Include with `#[path = "common/garage.rs"] mod garage;`. Garage 2.5.0 must
//! be installed (`scripts/ensure-garage.sh`, run by `npm test`); without it
//! the S3 tests fail, unless `CONTAINERARCHIVE_SKIP_S3=1` says to skip them.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use containerarchive_core::fsutil::random_hex;
use containerarchive_core::storage::s3::{RetryPolicy, S3Config};

pub const SKIP_VAR: &str = "CONTAINERARCHIVE_SKIP_S3";
pub const REGION: &str = "garage";
/// How long a node may take to come up or a cluster to accept a bucket.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// The `garage` binary: `$GARAGE_BIN`, then `PATH`, then cargo's bin directory.
pub fn binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("GARAGE_BIN") {
        return Some(PathBuf::from(bin)).filter(|p| p.is_file());
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    dirs.extend(cargo_home.map(|c| c.join("bin")));
    dirs.into_iter().map(|d| d.join("garage")).find(|p| p.is_file())
}

/// Whether the S3 tests should be skipped: only on explicit request.
/// Without the opt-out, a missing Garage fails the test that needs it.
pub fn skipped(test: &str) -> bool {
    if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
        eprintln!("{test}: skipped, {SKIP_VAR}=1");
        return true;
    }
    false
}

fn free_port() -> u16 {
    // The port is free now; Garage binds it a moment later. A collision makes
    // the node fail to start, which wait_ready reports with its log.
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Node {
    child: Option<Child>,
    dir: PathBuf,
    config: PathBuf,
    pub s3_port: u16,
    pub rpc_port: u16,
}

impl Node {
    fn start(bin: &Path, dir: PathBuf, secret: &str, replication: usize) -> Node {
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        fs::create_dir_all(&dir).unwrap();
        let config = dir.join("garage.toml");
        let d = dir.display();
        fs::write(
            &config,
            format!(
                r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = {replication}
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"
[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
"#
            ),
        )
        .unwrap();
        let log = |name: &str| fs::File::create(dir.join(name)).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .arg("server")
            .stdin(Stdio::null())
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"))
            .env("RUST_LOG", "garage=warn")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Node {
            child: Some(child),
            dir,
            config,
            s3_port,
            rpc_port,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        log[log.floor_char_boundary(start)..].to_string()
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running Garage: one node or a cluster, with one bucket and one key.
pub struct Garage {
    bin: PathBuf,
    dir: PathBuf,
    pub nodes: Vec<Node>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Garage {
    /// One node, replication factor 1. `None` when the S3 tests are skipped;
    /// panics (failing the test) when Garage is missing or does not start.
    pub fn start(test: &str) -> Option<Garage> {
        Garage::start_cluster(test, 1)
    }

    /// `nodes` nodes, each in its own zone, replication factor `nodes`
    /// (3 gives the quorum behaviour of a production cluster).
    pub fn start_cluster(test: &str, nodes: usize) -> Option<Garage> {
        if skipped(test) {
            return None;
        }
        let bin = binary().unwrap_or_else(|| {
            panic!(
                "{test}: garage is not installed. Run scripts/ensure-garage.sh (npm test runs it), \
                 or set {SKIP_VAR}=1 to skip the S3 tests"
            )
        });
        let dir = std::env::temp_dir().join(format!("ca-garage-{}", random_hex(6)));
        let secret = random_hex(32);
        let mut garage = Garage {
            bin: bin.clone(),
            dir: dir.clone(),
            nodes: Vec::new(),
            region: REGION.into(),
            bucket: "ca-test".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
        };
        for i in 0..nodes {
            let node = Node::start(&bin, dir.join(format!("node{i}")), &secret, nodes);
            garage.nodes.push(node);
        }
        garage.configure();
        Some(garage)
    }

    /// The first node's S3 endpoint.
    pub fn endpoint(&self) -> String {
        self.nodes[0].endpoint()
    }

    /// Settings for a repository under `prefix`, with a small retry budget so
    /// a failure is reported in seconds.
    pub fn s3_config(&self, prefix: &str) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            prefix: prefix.into(),
            endpoint: Some(self.endpoint()),
            region: Some(self.region.clone()),
            access_key_id: Some(self.access_key_id.clone()),
            secret_access_key: Some(self.secret_access_key.clone()),
            session_token: None,
            force_path_style: Some(true),
            retry: RetryPolicy {
                max_retries: 3,
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(500),
                io_timeout: Duration::from_secs(10),
                timeout: Duration::from_secs(10),
            },
            concurrency: 0,
        }
    }

    /// Runs `garage <args>` against node `node`.
    pub fn cli(&self, node: usize, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(&self.nodes[node].config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn cli_ok(&self, node: usize, args: &[&str]) -> String {
        let out = self.cli(node, args);
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            self.nodes[node].log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `f` until it yields a value; panics with the nodes' logs after the deadline.
    fn until<T>(&mut self, what: &str, mut f: impl FnMut(&mut Garage) -> Option<T>) -> T {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            for node in &mut self.nodes {
                if let Some(Ok(Some(status))) = node.child.as_mut().map(|c| c.try_wait()) {
                    panic!(
                        "garage exited ({status}) while waiting for {what}:\n{}",
                        node.log_tail()
                    );
                }
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self.nodes.iter().map(|n| n.log_tail()).collect();
                panic!("garage: no {what} within {READY_DEADLINE:?}:\n{}", logs.join("\n---\n"));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Connects the nodes, applies a layout, creates the bucket and a key.
    fn configure(&mut self) {
        let n = self.nodes.len();
        // Each node writes its identity when it starts; its RPC answers when `status` does.
        let ids: Vec<String> = (0..n)
            .map(|i| {
                self.until("node id", |g| {
                    let out = g.cli(i, &["node", "id", "-q"]);
                    let up = g.cli(i, &["status"]).status.success();
                    (out.status.success() && up).then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                })
            })
            .collect();
        for id in &ids[1..] {
            self.until("node connect", |g| {
                g.cli(0, &["node", "connect", id]).status.success().then_some(())
            });
        }
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().unwrap();
            let zone = format!("dc{}", i + 1);
            self.cli_ok(0, &["layout", "assign", "-z", &zone, "-c", "1G", short]);
        }
        self.cli_ok(0, &["layout", "apply", "--version", "1"]);
        let bucket = self.bucket.clone();
        self.until("bucket", |g| {
            g.cli(0, &["bucket", "create", &bucket]).status.success().then_some(())
        });
        let key = self.cli_ok(0, &["json-api", "CreateKey", r#"{"name":"ca-test"}"#]);
        let key: serde_json::Value = serde_json::from_str(&key).expect("CreateKey answers JSON");
        self.access_key_id = key["accessKeyId"].as_str().unwrap().to_string();
        self.secret_access_key = key["secretAccessKey"].as_str().unwrap().to_string();
        self.cli_ok(
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", "ca-test",
            ],
        );
    }

    /// Kills every node; the files stay until drop.
    pub fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill_all();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
