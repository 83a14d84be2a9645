//! Running the workspace's real binaries the way a user does: start, wait until they listen,
//! stop them with a signal, read what they printed.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a service may take to start listening, or to exit, before a test gives up on it.
/// A guard against hangs, not a measurement: healthy binaries take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The ports [`free_port`] and [`local_listener`] have handed out, never handed out again.
static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

fn given() -> std::sync::MutexGuard<'static, Vec<u16>> {
    GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A listener on 127.0.0.1, bound to a port the kernel chose (`127.0.0.1:0`).
fn bind_any() -> TcpListener {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|err| panic!("no free port on 127.0.0.1: {err}"))
}

fn port_of(listener: &TcpListener) -> u16 {
    listener
        .local_addr()
        .unwrap_or_else(|err| panic!("a listener without an address: {err}"))
        .port()
}

/// A free TCP port on 127.0.0.1, for a service under test to listen on.
///
/// The port is free when this returns, and this process never hands it out again: the kernel
/// may well offer a port just released to the next caller, and a service given the same port
/// for two of its listeners would fail to start. A test that listens itself (a stand-in for a
/// collector or a Go kit service) takes its listener from [`local_listener`], never from
/// `127.0.0.1:0`: the kernel could give it a port handed out here that its service has not
/// bound yet.
pub fn free_port() -> u16 {
    // A local listener's port, released: handed out once, like every port here.
    port_of(&local_listener())
}

/// The first of `n` consecutive free ports of 127.0.0.1, for a script that numbers its
/// services' ports from the one it is given; each is handed out as [`free_port`] hands out one.
pub fn free_ports(n: u16) -> u16 {
    let mut given = given();
    for _ in 0..100 {
        let first = port_of(&bind_any());
        let all_free = (0..n).all(|i| {
            first.checked_add(i).is_some_and(|port| {
                !given.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            })
        });
        if all_free {
            given.extend((0..n).map(|i| first + i));
            return first;
        }
    }
    panic!("no {n} consecutive free ports on 127.0.0.1");
}

/// A listener on a free port of 127.0.0.1, for a test's own stand-in server: its port is not
/// one [`free_port`] has handed out to a service that may be about to bind it, and is never
/// handed out after.
pub fn local_listener() -> TcpListener {
    let mut given = given();
    loop {
        // A port already given is released at once, for the service it was given to.
        let listener = bind_any();
        let port = port_of(&listener);
        if !given.contains(&port) {
            given.push(port);
            return listener;
        }
    }
}

/// Whether process `pid`, or a process it started, has a socket listening on TCP `port` (of
/// any address). Read from `/proc`: the sockets listening on `port` in the process's network
/// namespace (`/proc/PID/net/tcp` and `tcp6`), and the sockets among its open files.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let listening: Vec<String> = ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .flat_map(|table| listening_sockets(&table, port))
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    if listening.is_empty() {
        return false;
    }
    family(pid).into_iter().any(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| {
                listening
                    .iter()
                    .any(|socket| target.as_os_str() == socket.as_str())
            })
    })
}

/// The inodes of the sockets listening on `port` in `table`, the text of `/proc/net/tcp` or
/// `/proc/net/tcp6`: a heading, then a line a socket, its local address (`0100007F:1F90`, the
/// port in hexadecimal) second, its state fourth (`0A` is listening), its inode tenth.
fn listening_sockets(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, local_port) = fields.get(1)?.rsplit_once(':')?;
            let listening =
                u16::from_str_radix(local_port, 16).ok() == Some(port) && *fields.get(3)? == "0A";
            listening.then(|| fields.get(9)?.parse().ok()).flatten()
        })
        .collect()
}

/// `pid` and the processes it started, theirs and so on (from `/proc/PID/task/TID/children`):
/// a service started through a shell listens in the shell's child.
fn family(pid: u32) -> Vec<u32> {
    let mut family = vec![pid];
    let mut at = 0;
    while let Some(&parent) = family.get(at) {
        at += 1;
        let tasks = std::fs::read_dir(format!("/proc/{parent}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            family.extend(
                children
                    .split_whitespace()
                    .filter_map(|child| child.parse::<u32>().ok()),
            );
        }
    }
    family
}

/// The file names of the shared libraries (`libc.so.6`...) in a process's memory map: `maps` is
/// `/proc/PID/maps`, or `/proc/self/maps` for the calling process.
pub fn shared_libraries(maps: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(maps).unwrap_or_else(|err| panic!("cannot read {maps}: {err}"));
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter_map(|path| path.rsplit('/').next())
        .filter(|name| name.contains(".so"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Panics unless the process whose memory map is `maps` runs without the system's maths library
/// (`libm.so.6`), which kit-core's `libm` feature keeps out of a program (see
/// `kit_core::cmath`): the services check this after answering, so that every maths function
/// they have called is in. `who` names the process in the message.
pub fn assert_no_libm(maps: &str, who: &str) {
    let libraries = shared_libraries(maps);
    assert!(
        libraries.iter().any(|name| name.starts_with("libc.so")),
        "{who} maps no libc: {libraries:?}"
    );
    assert!(
        !libraries.iter().any(|name| name.starts_with("libm.so")),
        "{who} loads libm: its crate does not turn on kit-core's `libm` feature, or a dependency \
         calls a maths function that kit_core::cmath does not define (`nm -D --undefined-only \
         BINARY` names it; define it there). Mapped: {libraries:?}"
    );
}

/// A running process whose stdout and stderr go, interleaved, to one file.
#[derive(Debug)]
pub struct Spawned {
    name: String,
    child: Child,
    /// stdout and stderr share this file, so their lines keep the order they were written in.
    output: File,
    status: Option<ExitStatus>,
}

impl Spawned {
    /// Starts `command` with its output captured.
    pub fn start(mut command: Command) -> io::Result<Self> {
        let output = tempfile::tempfile()?;
        command
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output.try_clone()?);
        let name = format!("{command:?}");
        let child = command.spawn()?;
        Ok(Self {
            name,
            child,
            output,
            status: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics unless the process runs without the system's maths library: see
    /// [`assert_no_libm`].
    pub fn assert_no_libm(&self) {
        assert_no_libm(&format!("/proc/{}/maps", self.pid()), &self.name);
    }

    /// Waits until the process (or one it started) listens on `port` ([`listens_on`]).
    ///
    /// Its own listener, not whatever answers on the port: a port handed out by
    /// [`free_port`] is free until the service binds it, and should anything else take it
    /// meanwhile, a connection to the port would succeed while the service fails to start,
    /// and the test would talk to a stranger. This way it fails, saying the service exited.
    ///
    /// Fails if the process exits first, or after [`PATIENCE`].
    pub fn wait_for_port(&mut self, port: u16) -> Result<(), String> {
        let pid = self.pid();
        self.wait_until(&format!("listening on port {port}"), |_| {
            listens_on(pid, port)
        })
    }

    /// Waits until the process has printed `text` (a line saying it is ready for what comes
    /// next, say).
    ///
    /// Fails if the process exits first, or after [`PATIENCE`].
    pub fn wait_for_output(&mut self, text: &str) -> Result<(), String> {
        self.wait_until(&format!("printing {text:?}"), |spawned| {
            spawned.output().contains(text)
        })
    }

    /// Polls `ready` until it holds; fails, naming `what` it waited for, if the process exits
    /// first or after [`PATIENCE`].
    fn wait_until(
        &mut self,
        what: &str,
        mut ready: impl FnMut(&Self) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if ready(self) {
                return Ok(());
            }
            if let Some(status) = self.try_status() {
                return Err(format!(
                    "{} exited ({status}) before {what}; it printed:\n{}",
                    self.name,
                    self.output()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} was not {what} within {PATIENCE:?}; it printed:\n{}",
                    self.name,
                    self.output()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> Result<(), String> {
        let pid = i32::try_from(self.child.id()).map_err(|e| e.to_string())?;
        kill(Pid::from_raw(pid), signal).map_err(|e| format!("cannot signal {}: {e}", self.name))
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> Result<ExitStatus, String> {
        if let Some(status) = self.try_status() {
            return Ok(status);
        }
        self.signal(Signal::SIGTERM)?;
        self.wait()
    }

    /// Waits for the process to exit by itself, for at most [`PATIENCE`].
    pub fn wait(&mut self) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.try_status() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err(format!(
                    "{} did not exit within {PATIENCE:?}; it printed:\n{}",
                    self.name,
                    self.output()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Everything the process printed so far, stdout and stderr interleaved.
    pub fn output(&self) -> String {
        let mut file = &self.output;
        let mut bytes = Vec::new();
        if file
            .rewind()
            .and_then(|()| file.read_to_end(&mut bytes))
            .is_err()
        {
            return String::from("(output unreadable)");
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A service binary running on a free port of 127.0.0.1, as a user runs it.
#[derive(Debug)]
pub struct Service {
    spawned: Spawned,
    port: u16,
}

impl Service {
    /// Starts `binary` with `args` and `--listen 127.0.0.1:PORT` on a free port, and waits until
    /// it listens. Panics, with what it printed, if it does not.
    pub fn start(binary: &str, args: &[&str]) -> Self {
        Self::start_with_env(binary, args, &[])
    }

    /// Like [`start`](Self::start), with environment variables set (`RUST_LOG`, say).
    pub fn start_with_env(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--listen", &listen]);
        Self::start_on(binary, &all, env, port)
    }

    /// Starts `binary` with exactly `args` and `env`, and waits until it listens on `port`: for
    /// binaries whose listen flags the caller chooses. `RUST_LOG` is not inherited from the
    /// environment the tests run in, so that what a service logs depends on the test alone.
    pub fn start_on(binary: &str, args: &[&str], env: &[(&str, &str)], port: u16) -> Self {
        let mut command = Command::new(binary);
        command.args(args).env_remove("RUST_LOG");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut spawned =
            Spawned::start(command).unwrap_or_else(|err| panic!("cannot start {binary}: {err}"));
        if let Err(problem) = spawned.wait_for_port(port) {
            panic!("{problem}");
        }
        Service { spawned, port }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.spawned.output()
    }

    /// Panics if it loaded the system's maths library: see [`Spawned::assert_no_libm`].
    pub fn assert_no_libm(&self) {
        self.spawned.assert_no_libm();
    }

    /// The running process.
    pub fn process(&mut self) -> &mut Spawned {
        &mut self.spawned
    }

    /// Sends SIGTERM, waits for the exit, and returns the status with everything it printed.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let status = self
            .spawned
            .terminate()
            .unwrap_or_else(|problem| panic!("{problem}"));
        (status, self.spawned.output())
    }

    /// Sends SIGTERM and returns what it printed, after checking that it exited with status 0.
    pub fn stop(self) -> String {
        let (status, output) = self.terminate();
        assert!(
            status.success(),
            "the service exited with {status}; it printed:\n{output}"
        );
        output
    }
}

/// What a binary printed and how it exited, run to completion.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit code, if it exited rather than being killed.
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `binary` with `args` until it exits (with [`PATIENCE`]), for flags that make it stop by
/// itself: `--help`, a bad flag, a port in use.
pub fn run(binary: &str, args: &[&str]) -> Finished {
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {binary}: {err}"));
    let deadline = Instant::now() + PATIENCE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("{binary} {args:?} did not exit within {PATIENCE:?}");
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(err) => panic!("cannot wait for {binary}: {err}"),
        }
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("cannot read what {binary} printed: {err}"));
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// What `binary --help` prints, after checking that it exits 0.
pub fn help_text(binary: &str) -> String {
    let output = std::process::Command::new(binary)
        .arg("--help")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {binary} --help: {err}"));
    assert!(
        output.status.success(),
        "{binary} --help exited with {}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The path of binary `bin` of workspace package `package`, built first (once per process) with
/// the profile the tests were built with: for a test that runs another crate's binary beside
/// its own, which `CARGO_BIN_EXE_*` does not offer. Panics, with cargo's output, if the build
/// fails.
pub fn workspace_binary(package: &str, bin: &str) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<HashMap<String, std::path::PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    // The test binary is target/<profile>/deps/<name>: the binaries are in target/<profile>.
    let exe = std::env::current_exe().unwrap_or_else(|err| panic!("no current exe: {err}"));
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap_or_else(|| panic!("{} is not under target/<profile>/deps", exe.display()))
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .unwrap_or_else(|| panic!("{} has no target dir", profile_dir.display()));
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(crate::book::workspace_root())
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .arg("--target-dir")
        .arg(target_dir);
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        command.arg("--release");
    }
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run cargo build: {err}"));
    assert!(
        output.status.success(),
        "cargo build -p {package} --bin {bin} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = profile_dir.join(bin);
    built.insert(bin.to_owned(), path.clone());
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_read_from_the_kernels_table() {
        let table = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1884524 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A6B5 01 00000000:00000000 00:00000000 00000000     0        0 1884530 1 0 20 4 30 10 -1
   2: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1882459 1 0 100 0 0 10 0
";
        // Port 8080 (1F90): the listener, not the connection accepted on it.
        assert_eq!(listening_sockets(table, 8080), [1884524]);
        assert_eq!(listening_sockets(table, 8081), [1882459]);
        assert!(listening_sockets(table, 80).is_empty());
        let table6 = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 42 1 0 100 0 0 10 0
";
        assert_eq!(listening_sockets(table6, 8080), [42]);
    }

    #[test]
    fn a_listener_is_known_as_this_processs_own_and_no_other() {
        let listener = local_listener();
        let port = port_of(&listener);
        assert!(listens_on(std::process::id(), port));
        // A process of its own, which did not open it (nor inherit it: sockets are opened
        // close-on-exec).
        let mut other = Command::new("sleep").arg("30").spawn().expect("sleep");
        let others = listens_on(other.id(), port);
        let _ = other.kill();
        let _ = other.wait();
        assert!(!others);
        drop(listener);
        assert!(!listens_on(std::process::id(), port));
    }

    #[test]
    fn a_local_listener_never_takes_a_port_given_to_a_service() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let listeners: Vec<TcpListener> = (0..200).map(|_| local_listener()).collect();
        for listener in &listeners {
            assert!(!ports.contains(&port_of(listener)));
        }
        // And a port a listener had is not given to a service after it is closed.
        let theirs: Vec<u16> = listeners.iter().map(port_of).collect();
        drop(listeners);
        let later: Vec<u16> = (0..200).map(|_| free_port()).collect();
        assert!(later.iter().all(|port| !theirs.contains(port)));
    }

    #[test]
    fn consecutive_free_ports_are_free_and_never_handed_out_again() {
        let first = free_ports(4);
        for port in first..first + 4 {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("free");
        }
        let later: Vec<u16> = (0..300).map(|_| free_port()).collect();
        assert!(later.iter().all(|port| !(first..first + 4).contains(port)));
    }

    #[test]
    fn free_ports_are_never_handed_out_twice() {
        let mut ports: Vec<u16> = (0..500).map(|_| free_port()).collect();
        ports.sort_unstable();
        let before = ports.len();
        ports.dedup();
        assert_eq!(ports.len(), before);
    }
}
