//! The real `vbs-agent` binary as a child process: started with a
//! `NOTIFY_SOCKET` the bench listens on, so "ready" is the daemon's own
//! `READY=1`, and measured through `/proc`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `vbs-agent` binary next to this one (`cargo build --release` builds both).
pub fn agent_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let agent = me.with_file_name("vbs-agent");
    if agent.exists() {
        Ok(agent)
    } else {
        Err(format!(
            "{} not found; build it with `cargo build --release`",
            agent.display()
        ))
    }
}

/// A running `vbs-agent run`, stopped when dropped.
pub struct Daemon {
    child: Child,
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    pub started: Instant,
}

impl Daemon {
    /// Starts `vbs-agent run --config FILE` with extra environment.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(agent_binary()?);
        cmd.args(["run", "--config"]).arg(config);
        cmd.env("NOTIFY_SOCKET", &path).env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| e.to_string())?;
        Ok(Self {
            child,
            socket,
            _dir: dir,
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for `READY=1`; returns the time from spawn to it.
    pub fn wait_ready(&self, limit: Duration) -> Result<Duration, String> {
        self.socket
            .set_read_timeout(Some(limit))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4096];
        loop {
            let n = self
                .socket
                .recv(&mut buf)
                .map_err(|e| format!("no READY=1 from the daemon within {limit:?}: {e}"))?;
            let msg = String::from_utf8_lossy(&buf[..n]);
            if msg.lines().any(|l| l == "READY=1") {
                return Ok(self.started.elapsed());
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User plus system CPU seconds the process has used (`/proc/PID/stat`,
/// all its threads; clock ticks of 1/100 s, the Linux default).
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    // utime and stime are fields 14 and 15.
    stat_seconds(&format!("/proc/{pid}/stat"), 14, 15)
}

/// User plus system CPU seconds of this process's children that have
/// ended and been waited for, with their own waited-for descendants
/// (`cutime` and `cstime`, as `getrusage(RUSAGE_CHILDREN)` counts them).
pub fn children_cpu_seconds() -> Result<f64, String> {
    stat_seconds("/proc/self/stat", 16, 17)
}

/// The sum of two tick fields (1-based, as `proc(5)` numbers them) in seconds.
fn stat_seconds(path: &str, a: usize, b: usize) -> Result<f64, String> {
    let stat = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    stat_fields_seconds(&stat, a, b)
}

fn stat_fields_seconds(stat: &str, a: usize, b: usize) -> Result<f64, String> {
    // Fields after the parenthesised command name (field 2), which may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unreadable /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| -> Result<f64, String> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| "unreadable /proc stat".to_string())
    };
    Ok((ticks(a)? + ticks(b)?) / 100.0)
}

/// Peak resident memory of the process (`VmHWM` in `/proc/PID/status`).
pub fn peak_rss_bytes(pid: u32) -> Result<u64, String> {
    status_bytes(pid, "VmHWM")
}

/// Resident memory of the process now (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    status_bytes(pid, "VmRSS")
}

/// A `kB` field of `/proc/PID/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("no {field} in /proc status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // pid (comm) state ppid … utime=14 stime=15 cutime=16 cstime=17
        let stat = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 150 50 1234 66 20 0";
        assert_eq!(stat_fields_seconds(stat, 14, 15), Ok(2.0));
        assert_eq!(stat_fields_seconds(stat, 16, 17), Ok(13.0));
        assert!(stat_fields_seconds("no name", 14, 15).is_err());
        assert!(stat_fields_seconds("1 (x) S 2", 16, 17).is_err());
    }
}
