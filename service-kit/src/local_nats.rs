//! A NATS server with JetStream for tests: the one named by `NATS_URL`, or a
//! private `nats-server -js` started from the installed binary (Debian's
//! `nats-server`) on a free loopback port, once per test process.
//!
//! Like [`crate::local_postgres`], the server is a child process that dies
//! with us: it gets `SIGTERM` when the [`LocalNats`] is dropped or stopped,
//! and a parent-death signal when this process exits without dropping it
//! (the shared one lives in a `static`).

use std::{
    fs,
    io::{BufRead, BufReader},
    net::TcpStream,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{OnceLock, mpsc},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// Why a private NATS server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no nats-server binary found: apt-get install nats-server (or set NATS_URL)")]
    BinaryNotFound,
    #[error("{action}: {message}")]
    Io { action: String, message: String },
    #[error("nats-server exited ({status}): {log}")]
    Exited { status: String, log: String },
    #[error("nats-server did not accept connections within {0:?}; its log is at {1}")]
    NotReady(Duration, PathBuf),
}

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let action = action.into();
    move |source| Error::Io {
        action,
        message: source.to_string(),
    }
}

/// The URL of a NATS server with JetStream for this test process: `NATS_URL`
/// when set, else a private server started on first use and kept until the
/// process exits. Panics with what to install when there is none.
pub fn url() -> String {
    if let Ok(url) = std::env::var("NATS_URL")
        && !url.trim().is_empty()
    {
        return url;
    }
    static SERVER: OnceLock<LocalNats> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            LocalNats::start_throwaway().unwrap_or_else(|e| panic!("NATS_URL is unset and {e}"))
        })
        .url()
}

/// A running private `nats-server -js`; stopped when dropped.
pub struct LocalNats {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// Whether the folder is ours to remove when the server stops.
    owns_dir: bool,
    _keeper: mpsc::Sender<()>,
}

impl LocalNats {
    /// Starts a server on a free port with its JetStream store in a fresh
    /// private (0700) folder under the system temp dir, removed on drop.
    pub fn start_throwaway() -> Result<Self, Error> {
        let dir = crate::local_postgres::throwaway_dir("boardwire-nats", "nats")
            .map_err(io("create the temp folder"))?;
        fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(io(format!("chmod {}", dir.display())))?;
        let port = crate::local_postgres::free_port().map_err(|e| Error::Io {
            action: "find a free port".into(),
            message: e.to_string(),
        })?;
        let mut server = Self::start_on(port, &dir)?;
        server.owns_dir = true;
        Ok(server)
    }

    /// Starts a server on `port` keeping its JetStream store in `dir` (which
    /// must exist): how a test restarts a server it stopped, with its data.
    pub fn start_on(port: u16, dir: &Path) -> Result<Self, Error> {
        let bin = find_binary().ok_or(Error::BinaryNotFound)?;
        let dir = dir
            .canonicalize()
            .map_err(io(format!("resolve {}", dir.display())))?;
        let store = dir.join("jetstream");
        fs::create_dir_all(&store).map_err(io(format!("create {}", store.display())))?;
        let log_path = dir.join("nats-server.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("open nats-server.log"))?;
        let mut command = Command::new(bin);
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .arg("-sd")
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("clone log handle"))?)
            .stderr(log);
        let (child, keeper) = crate::local_postgres::spawn_tied_to_this_process(command, None)
            .map_err(|e| Error::Io {
                action: "spawn nats-server".into(),
                message: e.to_string(),
            })?;
        let mut server = Self {
            child,
            port,
            dir,
            owns_dir: false,
            _keeper: keeper,
        };
        server.wait_until_ready(&log_path)?;
        tracing::info!(port, dir = %server.dir.display(), "private nats-server started");
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the JetStream store and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server (SIGTERM, then SIGKILL after 15 s) and waits for it
    /// to exit, keeping its port number and store: [`Stopped::start`] brings
    /// it back with its streams, as a restarted NATS.
    pub fn stop(mut self) -> Stopped {
        self.terminate();
        let stopped = Stopped {
            port: self.port,
            dir: self.dir.clone(),
            owns_dir: self.owns_dir,
        };
        self.owns_dir = false;
        stopped
    }

    fn terminate(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        if kill(pid, Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Polls until the port answers with the server's `INFO` line, failing
    /// early when the process exits.
    fn wait_until_ready(&mut self, log_path: &Path) -> Result<(), Error> {
        let limit = Duration::from_secs(30);
        let started = Instant::now();
        loop {
            if let Ok(stream) =
                TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), limit)
            {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut line = String::new();
                if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO ")
                {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Exited {
                    status: status.to_string(),
                    log: fs::read_to_string(log_path).unwrap_or_default(),
                });
            }
            if started.elapsed() > limit {
                return Err(Error::NotReady(limit, log_path.to_owned()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
        if self.owns_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A server [`LocalNats::stop`]ped, to start again on the same port and store.
pub struct Stopped {
    port: u16,
    dir: PathBuf,
    owns_dir: bool,
}

impl Stopped {
    /// Starts the server again on its port with its JetStream store.
    pub fn start(mut self) -> Result<LocalNats, Error> {
        let mut server = LocalNats::start_on(self.port, &self.dir)?;
        server.owns_dir = std::mem::take(&mut self.owns_dir);
        Ok(server)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if self.owns_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `nats-server` on `PATH`, else in /usr/sbin or /usr/bin (Debian installs it
/// in /usr/sbin, which is not on every user's `PATH`).
fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_binary_says_what_to_install_in_one_line() {
        let message = super::Error::BinaryNotFound.to_string();
        assert!(message.contains("apt-get install nats-server"), "{message}");
        assert!(!message.contains('\n'));
    }
}
