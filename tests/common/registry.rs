//! A real registry for the tests: Debian's docker-registry on 127.0.0.1
//! (anonymous, basic auth or Bearer tokens) and the token service of
//! tests/common/token_server.py, each stopped when dropped.

use crate::{run, scratch};
use std::path::{Path, PathBuf};

/// Debian's docker-registry on 127.0.0.1, storage in a scratch directory,
/// optionally behind htpasswd basic auth; stopped when dropped.
pub struct Registry {
    child: Option<std::process::Child>,
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    /// Its storage directory.
    pub storage: PathBuf,
    /// Its scratch directory: config.yml, log (errors), access.log.
    pub dir: PathBuf,
}

impl Registry {
    pub fn start(name: &str, htpasswd: Option<&Path>) -> Option<Registry> {
        let auth = htpasswd
            .map(|p| {
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    p.display()
                )
            })
            .unwrap_or_default();
        Self::start_with(name, &auth)
    }

    /// Behind a token service (see tests/common/token_server.py).
    pub fn start_token(name: &str, ts: &TokenServer) -> Option<Registry> {
        let auth = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: sqfuse-test-registry\n    issuer: sqfuse-test-issuer\n    rootcertbundle: {}\n",
            ts.port,
            ts.dir.join("cert.pem").display()
        );
        Self::start_with(name, &auth)
    }

    /// Anonymous, answering blob GETs with a redirect to `base_url` +
    /// the blob's path below the storage directory (as a registry on S3
    /// hands out the bucket's URLs).
    pub fn start_redirecting(name: &str, base_url: &str) -> Option<Registry> {
        let extra = format!(
            "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: {base_url}\n"
        );
        Self::start_with(name, &extra)
    }

    fn start_with(name: &str, auth: &str) -> Option<Registry> {
        if !crate::have("docker-registry") || !crate::have("skopeo") {
            return None;
        }
        let dir = scratch(&format!("registry-{name}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.join("data");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: sqfuse-test-secret\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let mut r = Registry {
            child: None,
            port,
            storage,
            dir,
        };
        r.restart();
        Some(r)
    }

    /// Starts it (again, after `stop`) on the same port and storage (and
    /// secret: upload URLs it handed out before stay good).
    pub fn restart(&mut self) {
        let log = |n: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(n))
                .unwrap()
        };
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.join("config.yml"))
            .stdout(log("access.log"))
            .stderr(log("log"))
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on {}: see {}",
            self.port,
            self.dir.display()
        );
    }

    /// Stops it (the port is then closed).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Bytes the registry holds of unfinished uploads to `repo`.
    pub fn upload_bytes(&self, repo: &str) -> u64 {
        let dir = self
            .storage
            .join("docker/registry/v2/repositories")
            .join(repo)
            .join("_uploads");
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::metadata(e.path().join("data")).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Bytes of blob `digest` served so far with status `status` (200,
    /// 206 or 307), summed from the access log.
    pub fn blob_bytes_served(&self, digest: &str) -> (u64, usize) {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        let want = format!("/blobs/{digest} ");
        let mut bytes = 0;
        let mut requests = 0;
        for line in log
            .lines()
            .filter(|l| l.contains("\"GET ") && l.contains(&want))
        {
            // ... "GET /v2/REPO/blobs/DIGEST HTTP/1.1" STATUS BYTES "..." "..."
            let after = line.split('"').nth(2).unwrap_or("");
            let mut f = after.split_whitespace();
            let (_, n) = (f.next(), f.next().and_then(|n| n.parse::<u64>().ok()));
            bytes += n.unwrap_or(0);
            requests += 1;
        }
        (bytes, requests)
    }

    /// `skopeo copy` of `layout:t` to REPO:t here; returns docker://...
    pub fn push(&self, layout: &Path, repo: &str, creds: Option<&str>) -> String {
        let dest = format!("docker://127.0.0.1:{}/{repo}:t", self.port);
        let mut cmd = std::process::Command::new("skopeo");
        cmd.args(["copy", "-q", "--dest-tls-verify=false"]);
        if let Some(c) = creds {
            cmd.args(["--dest-creds", c]);
        }
        run(cmd.arg(format!("oci:{}:t", layout.display())).arg(&dest));
        dest
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

#[macro_export]
macro_rules! need_registry {
    ($name:expr, $auth:expr) => {
        match $crate::common::registry::Registry::start($name, $auth) {
            Some(r) => r,
            None => {
                $crate::skip!(
                    "needs docker-registry and skopeo (apt-get install docker-registry skopeo)"
                )
            }
        }
    };
}

/// The port a test server script wrote to DIR/port once listening (it is
/// dropped, and so stopped, by the caller if this panics).
fn python_port(dir: &Path, what: &str) -> u16 {
    for _ in 0..200 {
        if let Ok(p) = std::fs::read_to_string(dir.join("port")) {
            return p.trim().parse().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} did not start: see {}", dir.display());
}

/// tests/common/token_server.py: a Bearer token service (anonymous pull,
/// pull and push for one user), stopped when dropped.
pub struct TokenServer {
    child: std::process::Child,
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    /// Its scratch directory (certificate, log).
    pub dir: PathBuf,
}

impl TokenServer {
    /// Starts one with its own scratch directory `token-server-NAME`
    /// (tests running at once each have their own).
    pub fn start(name: &str, creds: &str) -> Option<TokenServer> {
        Self::start_with_ttl(name, creds, 300)
    }

    /// One whose tokens live `ttl` seconds (see token_server.py).
    pub fn start_with_ttl(name: &str, creds: &str, ttl: i64) -> Option<TokenServer> {
        let ok = std::process::Command::new("python3")
            .args(["-c", "import cryptography"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let dir = scratch(&format!("token-server-{name}"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/token_server.py");
        let child = std::process::Command::new("python3")
            .arg(script)
            .arg(&dir)
            .arg(creds)
            .arg(ttl.to_string())
            .spawn()
            .unwrap();
        let mut ts = TokenServer {
            child,
            port: 0,
            dir,
        };
        ts.port = python_port(&ts.dir, "token server");
        Some(ts)
    }

    /// What it granted so far, a line each.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tests/common/fault_proxy.py in front of a registry: passes requests
/// through but drops the Nth PATCH (once, or with everything after it
/// until `bring_up`); stopped when dropped.
pub struct FaultProxy {
    child: std::process::Child,
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl FaultProxy {
    /// `mode`: "once" or "down" (see the script).
    pub fn start(name: &str, upstream: u16, nth: usize, mode: &str) -> FaultProxy {
        let dir = scratch(&format!("fault-proxy-{name}"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/fault_proxy.py");
        let child = std::process::Command::new("python3")
            .arg(script)
            .arg(&dir)
            .arg(upstream.to_string())
            .arg(nth.to_string())
            .arg(mode)
            .spawn()
            .unwrap();
        let mut p = FaultProxy {
            child,
            port: 0,
            dir,
        };
        p.port = python_port(&p.dir, "fault proxy");
        p
    }

    /// Ends a "down" spell: requests pass again.
    pub fn bring_up(&self) {
        std::fs::write(self.dir.join("up"), b"").unwrap();
    }

    /// "METHOD PATH STATUS" (or "... dropped") per request so far.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
