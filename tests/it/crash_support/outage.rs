//! A PostgreSQL server of the test's own, to restart, and a TCP proxy in front of it, to cut: the outages the
//! fleet must ride out are made here, never on the shared test server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

/// A private PostgreSQL cluster (`initdb` in a temporary directory, run as the `postgres` user when the test runs as
/// root, since PostgreSQL refuses to run as root) on a free port.
pub(crate) struct PrivateCluster {
    /// Holds the data directory, the socket and the server's log.
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The port the server listens on (127.0.0.1).
    pub(crate) port: u16,
}

/// PostgreSQL's programs (`initdb`, `pg_ctl`): on `PATH`, else the newest under Debian's `/usr/lib/postgresql`.
fn postgres_bin() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// Whether this test runs as root (`/proc/self` belongs to the process's effective user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl PrivateCluster {
    /// Creates and starts the cluster, or `None` (with a note) when PostgreSQL's programs are missing; with
    /// `BOOMERANG_REQUIRE_POSTGRES=1` (as `.ci/run` sets) a missing one fails the test instead.
    pub(crate) fn start() -> Option<PrivateCluster> {
        let Some(bin) = postgres_bin() else {
            assert!(
                std::env::var_os("BOOMERANG_REQUIRE_POSTGRES").is_none(),
                "BOOMERANG_REQUIRE_POSTGRES is set but initdb/pg_ctl are not installed"
            );
            eprintln!("skipped: PostgreSQL's initdb and pg_ctl are not installed");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("boomerang-pg-")
            .tempdir()
            .expect("a directory for the cluster");
        if running_as_root() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(owned.success(), "chown the cluster's directory to postgres");
        }
        let port = super::stable_port().port();
        let cluster = PrivateCluster { dir, bin, port };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        cluster.pg_ctl(&["start", "-w", "-t", "60"]);
        Some(cluster)
    }

    /// Like [`PrivateCluster::start`], but serving TLS only (`hostssl` in `pg_hba.conf`) with a certificate for
    /// `localhost` signed by a CA made here (with the `openssl` program); answers the cluster and the CA's PEM file.
    pub(crate) fn start_tls() -> Option<(PrivateCluster, PathBuf)> {
        let cluster = PrivateCluster::start()?;
        let dir = cluster.dir().to_path_buf();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=boomerang test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext.cnf");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let conf = format!(
            "ssl = on\nssl_cert_file = '{0}/server.pem'\nssl_key_file = '{0}/server.key'\n",
            dir.display()
        );
        let mut postgresql = std::fs::read_to_string(cluster.data().join("postgresql.conf"))
            .expect("read postgresql.conf");
        postgresql.push_str(&conf);
        std::fs::write(cluster.data().join("postgresql.conf"), postgresql)
            .expect("write postgresql.conf");
        std::fs::write(
            cluster.data().join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        if running_as_root() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("run chown");
            assert!(owned.success(), "chown the certificates to postgres");
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("chmod the key");
        }
        cluster.pg_ctl(&["restart", "-w", "-t", "60"]);
        Some((cluster, dir.join("ca.pem")))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of PostgreSQL's programs as the user the server runs as; panics with its output on failure.
    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl(&self, action: &[&str]) {
        let data = self.data().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let mut args = vec!["-D", &data, "-l", &log, "-o", &options];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args);
    }

    /// Stops the server the way a crash does (`-m immediate`: no checkpoint, recovery from the WAL at the start)
    /// and starts it again.
    pub(crate) fn crash_and_restart(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
        self.pg_ctl(&["start", "-w", "-t", "60"]);
    }

    /// The cluster's log, for a failing test.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let path = self.bin.join("pg_ctl");
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = command
            .args(["-D", &data, "stop", "-m", "immediate", "-w"])
            .current_dir(self.dir())
            .output();
    }
}

/// A TCP proxy the test controls: while cut, every connection through it is closed and new ones are closed at once,
/// as a network partition looks to both sides once their sockets notice.
pub(crate) struct TcpProxy {
    /// Where clients connect.
    pub(crate) addr: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding a free loopback port to `target`.
    pub(crate) async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let accept = {
            let cut = cut.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    connections
                        .lock()
                        .expect("connections")
                        .push(task.abort_handle());
                }
            })
        };
        TcpProxy {
            addr,
            cut,
            connections,
            accept,
        }
    }

    /// Cuts the network: every open connection is closed, new ones too, until [`TcpProxy::heal`].
    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().expect("connections").drain(..) {
            connection.abort();
        }
    }

    /// Lets connections through again.
    pub(crate) fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for connection in self.connections.lock().expect("connections").drain(..) {
            connection.abort();
        }
    }
}
