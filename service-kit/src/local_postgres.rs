//! A private PostgreSQL server started from the installed binaries, for when
//! `DATABASE_URL` is unset: the `boardwire` binary keeps its data in a folder
//! that survives restarts, tests use a throwaway one.
//!
//! The server is a child process that dies with us: it gets `SIGINT` (fast
//! shutdown) when the [`LocalPostgres`] is dropped, and through
//! `PR_SET_PDEATHSIG` when this process exits without dropping it (tests keep
//! theirs in a `static`).

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::{Pid, Uid, User},
};

/// Why a private PostgreSQL could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no PostgreSQL server binaries (initdb, postgres) found: install PostgreSQL \
         (Debian: apt-get install postgresql), set PG_BIN_DIR to their folder, or set DATABASE_URL"
    )]
    BinariesNotFound,
    #[error(
        "initdb refuses to run as root and there is no `postgres` user to run it as: \
         create one (useradd postgres) or set DATABASE_URL"
    )]
    NoUnprivilegedUser,
    #[error("{action}: {source}")]
    Io {
        action: String,
        source: std::io::Error,
    },
    #[error("{command} failed: {log}")]
    CommandFailed { command: String, log: String },
    #[error("PostgreSQL did not become ready within {0:?}; its log is at {1}")]
    NotReady(Duration, PathBuf),
}

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let action = action.into();
    move |source| Error::Io { action, source }
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Holds the cluster (`data/`), its socket and its log.
    pub dir: PathBuf,
    /// Trade durability for speed (fsync off): for tests.
    pub throwaway: bool,
}

/// A running private PostgreSQL server; stopped when dropped.
pub struct LocalPostgres {
    child: Child,
    port: u16,
    dir: PathBuf,
    // Dropping this ends the thread that spawned the server, which must
    // outlive it: the parent-death signal fires when that *thread* exits.
    _keeper: mpsc::Sender<()>,
}

impl LocalPostgres {
    /// Starts a throwaway server in a fresh folder under the system temp dir,
    /// removing folders left behind by earlier processes that have exited.
    pub fn start_throwaway() -> Result<Self, Error> {
        let dir = throwaway_dir("boardwire-pg", "pg").map_err(io("create the temp folder"))?;
        Self::start(Options {
            dir,
            throwaway: true,
        })
    }

    /// Starts a server on `options.dir`, creating the cluster on first use.
    pub fn start(options: Options) -> Result<Self, Error> {
        let bin = find_bin_dir().ok_or(Error::BinariesNotFound)?;
        let run_as = unprivileged_user()?;
        let dir = options.dir;
        let socket_dir = dir.join("socket");
        fs::create_dir_all(&socket_dir).map_err(io(format!("create {}", socket_dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(io(format!("resolve {}", dir.display())))?;
        let dir = match &run_as {
            Some(user) if !reachable_by(&dir, user) => relocate_for(user, &dir, options.throwaway)?,
            _ => dir,
        };
        let (data, socket_dir) = (dir.join("data"), socket_dir_of(&dir));
        fs::create_dir_all(&socket_dir).map_err(io(format!("create {}", socket_dir.display())))?;
        if let Some(user) = &run_as {
            chown_tree(&dir, user)?;
        }

        if !data.join("PG_VERSION").exists() {
            let mut initdb = Command::new(bin.join("initdb"));
            initdb
                .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
                .args(["--locale=C", "--no-instructions"])
                .arg("-D")
                .arg(&data);
            if options.throwaway {
                initdb.arg("--no-sync");
            }
            run_to_completion(initdb, run_as.as_ref(), "initdb")?;
        }

        let port = free_port()?;
        let log_path = dir.join("postgres.log");
        let log = fs::File::create(&log_path).map_err(io("create postgres.log"))?;
        if let Some(user) = &run_as {
            chown(&log_path, user)?;
        }
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(&socket_dir)
            .args(["-c", "max_connections=300"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("clone log handle"))?)
            .stderr(log);
        if options.throwaway {
            postgres.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        let (child, keeper) = spawn_tied_to_this_process(postgres, run_as.as_ref())?;
        let mut server = Self {
            child,
            port,
            dir,
            _keeper: keeper,
        };
        server.wait_until_ready(&log_path)?;
        tracing::info!(port, dir = %server.dir.display(), "private PostgreSQL started");
        Ok(server)
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn wait_until_ready(&mut self, log_path: &Path) -> Result<(), Error> {
        let limit = Duration::from_secs(60);
        let started = Instant::now();
        let pid_file = self.dir.join("data/postmaster.pid");
        loop {
            // Since PostgreSQL 10 the 8th line of postmaster.pid says "ready".
            let ready = fs::read_to_string(&pid_file)
                .is_ok_and(|s| s.lines().nth(7).is_some_and(|l| l.trim() == "ready"));
            if ready {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::CommandFailed {
                    command: format!("postgres ({status})"),
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

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        if kill(pid, Signal::SIGINT).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    tracing::info!(port = self.port, "private PostgreSQL stopped");
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Unix socket paths are limited to 107 bytes; deep folders fall back to /tmp.
/// (We connect over TCP; the socket only serves local psql users.)
fn socket_dir_of(dir: &Path) -> PathBuf {
    let preferred = dir.join("socket");
    if preferred.as_os_str().len() < 90 {
        preferred
    } else {
        PathBuf::from("/tmp")
    }
}

/// `PG_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`, else `initdb` on `PATH`.
fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("postgres").exists())
    })
}

/// Whether `user` can enter `dir`: not when an ancestor is private to root
/// (`/root/…`, any `mktemp -d` folder).
fn reachable_by(dir: &Path, user: &User) -> bool {
    let mut probe = Command::new("test");
    probe.arg("-x").arg(dir).stdin(Stdio::null());
    as_user(&mut probe, Some(user));
    probe.status().is_ok_and(|s| s.success())
}

/// The folder the cluster of `wanted` lives in when `user` cannot enter
/// `wanted`: always the same one for the same `wanted`, so data persists
/// between runs. `wanted` gets a `LOCATION` file that says where it went.
fn relocate_for(user: &User, wanted: &Path, throwaway: bool) -> Result<PathBuf, Error> {
    let dir = if throwaway {
        let root = PathBuf::from("/var/tmp/boardwire-pg");
        fs::create_dir_all(&root).map_err(io(format!("create {}", root.display())))?;
        remove_stale_dirs(&root, "pg");
        root.join(wanted.file_name().unwrap_or_default())
    } else {
        PathBuf::from("/var/lib/boardwire").join(format!(
            "postgres-{:016x}",
            fnv1a(wanted.as_os_str().as_encoded_bytes())
        ))
    };
    fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    // Only root (and the server's own user) may read the cluster.
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(io(format!("chmod {}", dir.display())))?;
    let note = format!(
        "PostgreSQL runs as {:?}, which cannot enter this folder, so its data lives in\n{}\n",
        user.name,
        dir.display()
    );
    fs::write(wanted.join("LOCATION"), note).map_err(io("write LOCATION"))?;
    tracing::info!(wanted = %wanted.display(), actual = %dir.display(),
        "the postgres user cannot enter the data folder; keeping the cluster where it can");
    Ok(dir)
}

/// A hash that stays the same across builds and Rust versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// initdb and postgres refuse to run as root; as root we run them as `postgres`.
fn unprivileged_user() -> Result<Option<User>, Error> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some(user)),
        _ => Err(Error::NoUnprivilegedUser),
    }
}

fn chown(path: &Path, user: &User) -> Result<(), Error> {
    std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
        .map_err(io(format!("chown {}", path.display())))
}

fn chown_tree(dir: &Path, user: &User) -> Result<(), Error> {
    chown(dir, user)?;
    for entry in fs::read_dir(dir).map_err(io(format!("read {}", dir.display())))? {
        let path = entry.map_err(io("read dir entry"))?.path();
        if path.is_dir() {
            chown_tree(&path, user)?;
        } else {
            chown(&path, user)?;
        }
    }
    Ok(())
}

fn as_user(command: &mut Command, user: Option<&User>) {
    use std::os::unix::process::CommandExt;
    if let Some(user) = user {
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        command.env("HOME", &user.dir).env("USER", &user.name);
    }
}

fn run_to_completion(mut command: Command, user: Option<&User>, name: &str) -> Result<(), Error> {
    as_user(&mut command, user);
    let output = command.output().map_err(io(format!("run {name}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::CommandFailed {
        command: format!("{name} ({})", output.status),
        log: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// Spawns `command` from a thread that lives as long as the returned sender,
/// with a parent-death signal so the server never outlives this process.
pub(crate) fn spawn_tied_to_this_process(
    mut command: Command,
    user: Option<&User>,
) -> Result<(Child, mpsc::Sender<()>), Error> {
    as_user(&mut command, user);
    set_parent_death_signal(&mut command);
    let (child_tx, child_rx) = mpsc::channel();
    let (keep_tx, keep_rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("postgres-keeper".into())
        .spawn(move || {
            let _ = child_tx.send(command.spawn());
            // Blocks until the LocalPostgres is dropped (or forever, in a static).
            let _ = keep_rx.recv();
        })
        .map_err(io("spawn postgres keeper thread"))?;
    let child = child_rx
        .recv()
        .map_err(|_| Error::Io {
            action: "spawn postgres".into(),
            source: std::io::Error::other("keeper thread died"),
        })?
        .map_err(io("spawn postgres"))?;
    Ok((child, keep_tx))
}

#[allow(unsafe_code)]
fn set_parent_death_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    // std runs pre_exec hooks after switching uid, which would otherwise
    // clear the parent-death signal.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)
        });
    }
}

pub(crate) fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("find a free port"))?;
    Ok(listener.local_addr().map_err(io("read port"))?.port())
}

/// A fresh folder path `<temp>/<root>/<prefix>-<pid>-<uuid>` for this
/// process's throwaway server, after removing `<prefix>-<pid>-*` folders
/// left by processes that have exited. Shared by every private test server.
pub(crate) fn throwaway_dir(root: &str, prefix: &str) -> Result<PathBuf, std::io::Error> {
    let root = std::env::temp_dir().join(root);
    fs::create_dir_all(&root)?;
    remove_stale_dirs(&root, prefix);
    Ok(root.join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )))
}

/// Removes `<prefix>-<pid>-*` folders whose process is gone.
fn remove_stale_dirs(root: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix)?.strip_prefix('-'))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = kill(Pid::from_raw(pid), None).is_ok();
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
