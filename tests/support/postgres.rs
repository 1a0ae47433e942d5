//! A real, throwaway PostgreSQL server for tests: `initdb` into a temp
//! folder, `pg_ctl start` on a free 127.0.0.1 port with trust auth, and
//! `createdb` for a fresh database per test. Needs Debian's `postgresql`
//! package (the server binaries in /usr/lib/postgresql/<ver>/bin), which
//! `.ci/run` installs; without it, or when the cluster cannot be started,
//! a test prints "skipped: ..." and passes, except in CI (see
//! `support::needs`), where it fails.
//!
//! Postgres refuses to run as root: when the tests run as root, initdb and
//! pg_ctl run as the `postgres` system user (`runuser -u postgres --`, else
//! `setpriv`) in a folder under /tmp that user owns. Otherwise they run as
//! the current user. Clients (`createdb`, `psql`) connect over TCP as the
//! database user `postgres`, so they run as whoever runs the test.
//!
//! [`PgCluster::start`] gives a cluster of its own (stopped and removed on
//! drop): for tests that stop and restart the server. [`PgCluster::shared`]
//! gives one cluster per test binary, for tests that only need a database
//! of their own ([`PgCluster::fresh_database`]); it is stopped when the
//! test binary exits.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::needs;

/// What to tell someone whose machine cannot start a cluster.
const HINT: &str = "install Debian's postgresql package (apt-get install postgresql); .ci/run does";

/// A running throwaway cluster. Dropping it stops the server (`pg_ctl stop
/// -m immediate`) and removes its folder.
pub struct PgCluster {
    /// Holds `data/` (the cluster), `postgres.log` and the unix socket.
    /// Owned by the user the server runs as.
    dir: tempfile::TempDir,
    /// The folder holding initdb, pg_ctl, createdb and psql.
    bin: PathBuf,
    port: u16,
    /// How to run a server tool as the unprivileged user: empty when the
    /// test is not root, else e.g. `["runuser", "-u", "postgres", "--"]`.
    run_as: Vec<String>,
    /// Stops the server and removes the folder if this test process dies
    /// without doing it (SIGKILL, a CI timeout); see [`watch`].
    watcher: Option<Child>,
}

impl PgCluster {
    /// Starts a fresh cluster, or `None` after printing "skipped: ..."
    /// (in CI it panics instead; see `support::needs::or_skip`).
    pub fn start() -> Option<PgCluster> {
        match PgCluster::try_start() {
            Ok(cluster) => Some(cluster),
            Err(why) => needs::or_skip(None, &format!("a working PostgreSQL server ({why})"), HINT),
        }
    }

    /// One cluster shared by every test in this test binary, started by the
    /// first caller (`None`, after the skip message, as for [`start`]).
    /// For tests that only need a database of their own: take one with
    /// [`fresh_database`]; do not stop it. It is stopped and removed when
    /// the test binary exits.
    ///
    /// [`start`]: PgCluster::start
    /// [`fresh_database`]: PgCluster::fresh_database
    pub fn shared() -> Option<&'static PgCluster> {
        static SHARED: OnceLock<Result<PgCluster, String>> = OnceLock::new();
        extern "C" fn stop_shared() {
            if let Some(Ok(cluster)) = SHARED.get() {
                cluster.stop_immediately();
                let _ = std::fs::remove_dir_all(cluster.dir.path());
            }
        }
        let shared = SHARED.get_or_init(|| {
            let started = PgCluster::try_start();
            if started.is_ok() {
                // Statics are never dropped: stop the server when the test
                // binary exits (the test harness returns from main), so no
                // postmaster outlives the tests.
                // SAFETY: registers a plain `extern "C" fn()` that does not
                // unwind; atexit has no other precondition.
                unsafe { libc::atexit(stop_shared) };
            }
            started
        });
        match shared {
            Ok(cluster) => Some(cluster),
            Err(why) => needs::or_skip(None, &format!("a working PostgreSQL server ({why})"), HINT),
        }
    }

    /// Creates a new empty database with a unique name (`test_<pid>_<n>`)
    /// and returns its URL, `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let port = self.port.to_string();
        let out = client(&self.tool("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &name])
            .output();
        check(out, &format!("createdb {name} on port {port}"));
        self.url(&name)
    }

    /// The URL of database `name` on this cluster (as the `postgres` user,
    /// no password: the cluster trusts 127.0.0.1).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder with the server and client binaries (psql, pg_dump...).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Runs `sql` with psql against `url` (`-X -A -t`, stop on the first
    /// error): its stdout, or the failure with psql's stderr.
    pub fn try_psql(&self, url: &str, sql: &str) -> Result<String, String> {
        let out = client(&self.tool("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .output();
        run_result(out, &format!("psql {url} -c {sql:?}"))
    }

    /// [`try_psql`](PgCluster::try_psql), failing the test on an error.
    pub fn psql(&self, url: &str, sql: &str) -> String {
        self.try_psql(url, sql).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Stops the server (`pg_ctl stop -m fast`), keeping its data:
    /// [`start_again`](PgCluster::start_again) brings it back on the same
    /// port. For tests of the database going away and coming back.
    pub fn stop(&self) {
        let out = self
            .server_tool("pg_ctl")
            .args(["stop", "-w", "-m", "fast", "-t", "60", "-D"])
            .arg(self.data())
            .output();
        check(out, "pg_ctl stop");
    }

    /// Starts the stopped server again, same port, same data.
    pub fn start_again(&self) {
        if let Err(why) = self.pg_ctl_start() {
            panic!("{why}");
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// A server tool (initdb, pg_ctl) run as the unprivileged user, in the
    /// cluster's folder (that user may not be able to enter the test's).
    fn server_tool(&self, name: &str) -> Command {
        let tool = self.tool(name);
        let mut cmd = match self.run_as.split_first() {
            Some((wrapper, args)) => {
                let mut cmd = Command::new(wrapper);
                cmd.args(args).arg(tool);
                cmd
            }
            None => Command::new(tool),
        };
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        strip_pg_env(&mut cmd);
        cmd
    }

    fn try_start() -> Result<PgCluster, String> {
        let bin = find_bin_dir().ok_or("no initdb in /usr/lib/postgresql/*/bin or on PATH")?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let (dir, run_as) = if root {
            // Postgres will not run as root. /tmp (1777) is enterable by
            // everyone, unlike root's own TMPDIR may be.
            let (uid, gid) = user_ids("postgres").ok_or(
                "the tests run as root and there is no `postgres` user to run the server as",
            )?;
            let run_as = if let Some(runuser) = needs::on_path("runuser") {
                vec![
                    path_str(&runuser),
                    "-u".into(),
                    "postgres".into(),
                    "--".into(),
                ]
            } else if let Some(setpriv) = needs::on_path("setpriv") {
                vec![
                    path_str(&setpriv),
                    format!("--reuid={uid}"),
                    format!("--regid={gid}"),
                    "--init-groups".into(),
                ]
            } else {
                return Err(
                    "the tests run as root and neither runuser nor setpriv is on PATH".into(),
                );
            };
            let dir = tempfile::Builder::new()
                .prefix("persona-sim-pg-")
                .tempdir_in("/tmp")
                .map_err(|e| format!("make a folder in /tmp: {e}"))?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown {} to postgres: {e}", dir.path().display()))?;
            (dir, run_as)
        } else {
            let dir = tempfile::Builder::new()
                .prefix("persona-sim-pg-")
                .tempdir()
                .map_err(|e| format!("make a temp folder: {e}"))?;
            (dir, Vec::new())
        };
        let mut cluster = PgCluster {
            dir,
            bin,
            port: 0,
            run_as,
            watcher: None,
        };
        let out = cluster
            .server_tool("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
                "-D",
            ])
            .arg(cluster.data())
            .output();
        run_result(out, "initdb")?;
        // Another process may take the free port between our check and the
        // server's bind: try a few.
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            cluster.configure()?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.watcher = watch(&cluster);
                    return Ok(cluster);
                }
                Err(why) => last = why,
            }
            let log = std::fs::read_to_string(cluster.log()).unwrap_or_default();
            if !log.contains("could not bind") && !log.contains("already in use") {
                break;
            }
        }
        Err(last)
    }

    /// Appends this run's settings to postgresql.conf (the last setting of
    /// a name wins, so a retry on another port just appends again).
    fn configure(&self) -> Result<(), String> {
        use std::io::Write;
        let conf = self.data().join("postgresql.conf");
        let settings = format!(
            "\n# persona-sim tests\n\
             listen_addresses = '127.0.0.1'\n\
             port = {}\n\
             unix_socket_directories = '{}'\n\
             max_connections = 200\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n",
            self.port,
            self.dir.path().display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .map_err(|e| format!("write {}: {e}", conf.display()))
    }

    /// `pg_ctl start -w`; on failure the message carries pg_ctl's output
    /// and the end of the server's log.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let out = self
            .server_tool("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .output();
        run_result(out, &format!("pg_ctl start on port {}", self.port))
            .map(drop)
            .map_err(|e| {
                let log = std::fs::read_to_string(self.log()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("{e}\n--- {} ---\n{}", self.log().display(), tail.join("\n"))
            })
    }

    fn stop_immediately(&self) {
        let _ = self
            .server_tool("pg_ctl")
            .args(["stop", "-w", "-m", "immediate", "-t", "30", "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Fails harmlessly when the server is already stopped; the folder
        // goes with `dir`.
        self.stop_immediately();
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.kill();
            let _ = watcher.wait();
        }
    }
}

/// A shell that outlives this process (its own process group, so a Ctrl-C
/// to the tests does not reach it) and, once this process is gone while
/// the cluster's folder is still there, stops the server and removes the
/// folder: no postmaster outlives a killed test binary. It ends on its own
/// once the folder is removed. `None` (no watcher) without /proc.
fn watch(cluster: &PgCluster) -> Option<Child> {
    use std::os::unix::process::CommandExt;
    if !Path::new("/proc/self").exists() {
        return None;
    }
    const SCRIPT: &str = r#"
pid=$1 dir=$2
shift 2
while [ -d "/proc/$pid" ] && [ -d "$dir" ]; do sleep 1; done
if [ -d "$dir" ]; then
    "$@" stop -m immediate -D "$dir/data" >/dev/null 2>&1
    rm -rf "$dir"
fi
"#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(SCRIPT)
        .arg("sh")
        .arg(std::process::id().to_string())
        .arg(cluster.dir.path())
        .args(&cluster.run_as)
        .arg(cluster.tool("pg_ctl"))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    strip_pg_env(&mut cmd);
    cmd.spawn().ok()
}

/// /usr/lib/postgresql/<highest version>/bin, else the folder of `initdb`
/// on PATH (Debian puts only the clients on PATH).
fn find_bin_dir() -> Option<PathBuf> {
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok();
    let best = versions
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry
                .file_name()
                .to_str()?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin);
    best.or_else(|| needs::on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf)))
}

/// A user's uid and gid, from the password database.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is a valid C string; the returned record is read at
    // once, before any other getpw* call could overwrite it.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("find a free port: {e}"))
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A client tool (createdb, psql) run as the test's own user, with none of
/// the caller's PG* settings.
fn client(tool: &Path) -> Command {
    let mut cmd = Command::new(tool);
    cmd.stdin(Stdio::null());
    strip_pg_env(&mut cmd);
    cmd
}

/// The libpq and server variables that would point a tool elsewhere.
fn strip_pg_env(cmd: &mut Command) {
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGDATABASE",
        "PGUSER",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGOPTIONS",
        "PGSSLMODE",
        "PGDATA",
        "PGCONNECT_TIMEOUT",
    ] {
        cmd.env_remove(var);
    }
    // A client waits at most this long for a server that is not there.
    cmd.env(
        "PGCONNECT_TIMEOUT",
        Duration::from_secs(10).as_secs().to_string(),
    );
}

/// The tool's stdout, or what went wrong with its stderr and stdout.
fn run_result(out: std::io::Result<Output>, what: &str) -> Result<String, String> {
    let out = out.map_err(|e| format!("{what}: could not run it: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({})\n--- stderr ---\n{}--- stdout ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

fn check(out: std::io::Result<Output>, what: &str) {
    if let Err(why) = run_result(out, what) {
        panic!("{why}");
    }
}
