//! Real HTTP servers on 127.0.0.1 for the remote-image tests: nginx (Debian
//! nginx-light) serving a directory over HTTP or HTTPS with a self-signed
//! certificate, logging each request's status, bytes and Range; and
//! Python's http.server, which ignores Range.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub struct Nginx {
    pub port: u16,
    pub root: PathBuf,
    pub tls: bool,
    dir: PathBuf,
    child: Option<Child>,
}

impl Nginx {
    /// nginx serving `root`, or None (with a SKIPPED line) without nginx.
    pub fn start(root: &Path, name: &str, tls: bool) -> Option<Nginx> {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        if nginx.is_none() {
            crate::skipped("nginx missing (apt-get install nginx-light)", false);
            return None;
        }
        if tls && !super::have("openssl") {
            crate::skipped("openssl missing", false);
            return None;
        }
        let dir = super::scratch("nginx").join(name);
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let port = free_port();
        let listen = if tls {
            // A test CA and a server certificate it signed (webpki refuses
            // a self-signed CA certificate used as the server's own).
            let sh = format!(
                "set -e; cd {d}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=sqfuse-test-ca -keyout ca.key -out ca.pem
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out req.csr
printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf
openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out cert.pem",
                d = dir.display()
            );
            let st = Command::new("sh")
                .arg("-c")
                .arg(sh)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "openssl: test certificates");
            format!(
                "listen 127.0.0.1:{port} ssl; ssl_certificate {0}/cert.pem; ssl_certificate_key {0}/key.pem;",
                dir.display()
            )
        } else {
            format!("listen 127.0.0.1:{port};")
        };
        let conf = format!(
            "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/logs/error.log;
events {{ worker_connections 256; }}
http {{
  log_format ranges '$status $body_bytes_sent \"$http_range\" $request_method';
  access_log {d}/logs/access.log ranges;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  server {{ {listen} root {r}; }}
}}\n",
            d = dir.display(),
            r = root.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut n = Nginx {
            port,
            root: root.to_path_buf(),
            tls,
            dir,
            child: None,
        };
        n.restart();
        Some(n)
    }

    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        })
        .arg("-c")
        .arg(self.dir.join("nginx.conf"))
        .arg("-p")
        .arg(&self.dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        self.child = Some(child);
        assert!(wait_listening(self.port), "nginx did not start");
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM: nginx's master stops its workers too.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
            // The worker outlives a SIGKILLed master for a moment.
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && Instant::now() < deadline
            {
                let _ = Command::new("pkill")
                    .arg("-f")
                    .arg(self.dir.join("nginx.conf"))
                    .status();
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn url(&self, file: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/{file}", self.port)
    }

    /// The CA that signed the server's certificate.
    pub fn cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// (status, body bytes, Range header, method) per request so far.
    pub fn log(&self) -> Vec<(u16, u64, String, String)> {
        let text = std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ' ');
                let status = it.next()?.parse().ok()?;
                let bytes = it.next()?.parse().ok()?;
                let rest = it.next()?;
                let (range, method) = rest.rsplit_once(' ')?;
                Some((
                    status,
                    bytes,
                    range.trim_matches('"').to_string(),
                    method.to_string(),
                ))
            })
            .collect()
    }

    pub fn clear_log(&self) {
        let _ = std::fs::write(self.dir.join("logs/access.log"), "");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `python3 -m http.server` over `root`: answers Range requests with the
/// whole file.
pub struct PyServer {
    pub port: u16,
    child: Child,
}

impl PyServer {
    pub fn start(root: &Path) -> PyServer {
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_listening(port), "http.server did not start");
        PyServer { port, child }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's S3 server (PyPI `moto[server]`): a real S3 API on loopback with
/// signature checks, chosen over s3s-fs because it installs in seconds
/// with pip where s3s-fs needs a full cargo build in CI.
pub struct S3Server {
    pub port: u16,
    child: Child,
}

impl S3Server {
    /// None (with a SKIPPED line) when moto is not installed.
    pub fn start() -> Option<S3Server> {
        let ok = Command::new("python3")
            .args(["-c", "import moto.server, boto3"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            crate::skipped(
                "moto missing (python3 -m pip install 'moto[server]')",
                false,
            );
            return None;
        }
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_listening(port), "moto server did not start");
        Some(S3Server { port, child })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` and uploads `file` as `key` (boto3, signed with the
    /// test credentials).
    pub fn put(&self, bucket: &str, key: &str, file: &Path) {
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testkey', aws_secret_access_key='testsecret')\ntry:\n    s3.create_bucket(Bucket='{bucket}')\nexcept s3.exceptions.BucketAlreadyOwnedByYou:\n    pass\ns3.upload_file('{}', '{bucket}', '{key}')\n",
            self.endpoint(),
            file.display()
        );
        let st = Command::new("python3")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap();
        assert!(st.success(), "boto3 upload");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
