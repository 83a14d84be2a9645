//! A real etcd server for the service-discovery tests: its own free ports and a temporary data
//! directory, stopped and started again on the same ports to play an outage.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{PATIENCE, Spawned, free_port};
use crate::tools;

/// An etcd server on 127.0.0.1, with a data directory that lives as long as the fixture; killed
/// when dropped.
#[derive(Debug)]
pub struct Etcd {
    client_port: u16,
    peer_port: u16,
    // Fields drop in this order: the server is killed before its data directory is removed,
    // so that it cannot create files (its next write-ahead log, 64 MB) in a directory being
    // removed.
    process: Option<Spawned>,
    data: tempfile::TempDir,
}

impl Etcd {
    /// Starts an etcd (installed by `scripts/install-etcd`) on free client and peer ports, and
    /// waits until it answers its health check. Panics, with what it printed, if it does not.
    pub fn start() -> Self {
        let data = tempfile::tempdir().unwrap_or_else(|err| panic!("no temporary dir: {err}"));
        let mut etcd = Etcd {
            client_port: free_port(),
            peer_port: free_port(),
            process: None,
            data,
        };
        etcd.resume();
        etcd
    }

    /// The client endpoint, `127.0.0.1:PORT`, as `--etcd` takes it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Stops the server (SIGTERM), keeping its data and ports for [`resume`](Self::resume).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process
                .terminate()
                .unwrap_or_else(|problem| panic!("{problem}"));
        }
    }

    /// Starts the server again, on the same ports with the same data, and waits until it is
    /// healthy.
    pub fn resume(&mut self) {
        assert!(self.process.is_none(), "etcd is already running");
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(tools::etcd());
        command
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.data.path().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--log-level=warn")
            .arg("--logger=zap");
        let mut process =
            Spawned::start(command).unwrap_or_else(|err| panic!("cannot start etcd: {err}"));
        let deadline = Instant::now() + PATIENCE;
        while !healthy(self.client_port) {
            if let Err(problem) = process.wait_for_port(self.client_port) {
                panic!("{problem}");
            }
            if Instant::now() > deadline {
                panic!(
                    "etcd was not healthy within {PATIENCE:?}; it printed:\n{}",
                    process.output()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.process = Some(process);
    }

    /// Everything the server printed since it was last started.
    pub fn output(&self) -> String {
        self.process
            .as_ref()
            .map(Spawned::output)
            .unwrap_or_default()
    }
}

/// Whether etcd's `/health` on `port` says it is healthy (it has a leader and serves).
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") && answer.contains("\"health\":\"true\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_server_leaves_no_data_behind() {
        let etcd = Etcd::start();
        let data = etcd.data.path().to_path_buf();
        assert!(
            data.join("member").exists(),
            "etcd wrote nothing in {data:?}"
        );
        drop(etcd);
        assert!(!data.exists(), "{data:?} is still there");
    }
}
