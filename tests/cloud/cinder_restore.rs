//! Restores against a real Cinder (`tests/cinder/setup.sh`), when
//! `VBS_CINDER_URL` points at one: a known pattern written into a volume's
//! file comes back byte for byte through the agent's backup and
//! `vbs-agent restore`, and a drill's check finds it in the scratch volume.
//! The peer's volumes are sparse files `volume-<id>` in `$BASE/vols`
//! (`VBS_CINDER_VOLUMES`, default `${TMPDIR:-/tmp}/vbs-agent-cinder/vols`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::cinder_peer::{cinder_url, Peer};
use crate::helper::{agent_async, text};
use vbs_agent::config::DRILL_SUFFIX;

/// Where the pattern goes: 1 MiB at each offset, start and end included.
const BLOCKS: [u64; 4] = [0, 5 * MIB + 4097, 300 * MIB, GIB - MIB];
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The folder of the peer's volume files.
fn volumes_dir() -> PathBuf {
    std::env::var_os("VBS_CINDER_VOLUMES")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || std::env::temp_dir().join("vbs-agent-cinder/vols"),
            PathBuf::from,
        )
}

/// The file holding volume `id` on the peer.
fn volume_file(id: &str) -> PathBuf {
    let path = volumes_dir().join(format!("volume-{id}"));
    assert!(
        path.is_file(),
        "no file {} for volume {id}; set VBS_CINDER_VOLUMES to the peer's $BASE/vols",
        path.display()
    );
    path
}

/// Writes the pattern of `seed` (pseudo-random, never all zeros) into the
/// 1 GiB file at `path`, which it makes when missing.
fn write_pattern(path: &Path, seed: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    f.set_len(GIB).unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut block = vec![0u8; MIB as usize];
    for offset in BLOCKS {
        rng.fill(&mut block);
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&block).unwrap();
    }
    f.sync_all().unwrap();
}

/// The first offset where files `a` and `b` differ (in content or length).
fn first_difference(a: &Path, b: &Path) -> Option<u64> {
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 4 * MIB as usize], vec![0u8; 4 * MIB as usize]);
    let mut offset = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if let Some(i) = ba[..na.min(nb)]
            .iter()
            .zip(&bb[..na.min(nb)])
            .position(|(x, y)| x != y)
        {
            return Some(offset + i as u64);
        }
        if na != nb {
            return Some(offset + na.min(nb) as u64);
        }
        if na == 0 {
            return None;
        }
        offset += na as u64;
    }
}

/// Fills `buf` as far as the file goes; the bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// The drill's check: the scratch volume's file is the expected image.
const CHECK: &str = r#"#!/bin/sh
# $1: the expected image; $2: the folder of the peer's volume files.
f="$2/volume-$VBS_RESTORE_VOLUME_ID"
test -f "$f" || { echo "no file $f"; exit 2; }
cmp "$1" "$f" && echo "volume $VBS_RESTORE_VOLUME_ID of backup $VBS_BACKUP_ID matches"
"#;

/// `v_restores` of a policy's newest restore:
/// (job_id, status, volume_id, restore_s, verify, scratch_left).
type RestoreRow = (i64, String, String, f64, String, bool);

fn restore_row(history: &Path, policy: &str) -> RestoreRow {
    let conn = rusqlite::Connection::open(history).unwrap();
    conn.query_row(
        "SELECT job_id, status, volume_id, restore_s, verify, scratch_left FROM v_restores
          WHERE policy = ?1 ORDER BY job_id DESC LIMIT 1",
        [policy],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )
    .unwrap_or_else(|e| panic!("no restore of {policy} in v_restores: {e}"))
}

/// `vbs-agent ARGS`: its exit status and stdout, stderr printed.
async fn agent(args: &[&str]) -> (bool, String) {
    let out = agent_async(args).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let _ = writeln!(
        std::io::stderr(),
        "$ vbs-agent {}\n{stdout}{stderr}",
        args.join(" ")
    );
    (out.status.success(), stdout)
}

impl Peer {
    /// The ids of every volume of the peer's project.
    async fn volume_ids(&self) -> Vec<String> {
        let (_, list) = self.call(reqwest::Method::GET, "volumes", None).await;
        list["volumes"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|v| v["id"].as_str())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_through_the_agent_brings_the_data_back() {
    let Some(url) = cinder_url() else { return };
    let peer = Arc::new(Peer::new(url));
    let made = Arc::new(Mutex::new(Vec::new()));
    // The body runs as a task of its own, so that a failed assertion still
    // leaves the peer tidy: every backup, then every volume of the project.
    let body = tokio::spawn(restore_and_drill(Arc::clone(&peer), Arc::clone(&made)));
    let result = body.await;
    let mut volumes = made.lock().unwrap().clone();
    volumes.extend(peer.volume_ids().await);
    volumes.sort();
    volumes.dedup();
    peer.tidy(&volumes).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn restore_and_drill(peer: Arc<Peer>, made: Arc<Mutex<Vec<String>>>) {
    let source = peer.create_volume().await;
    made.lock().unwrap().push(source.clone());
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().join("expected.img");
    write_pattern(&expected, 13);
    let source_file = volume_file(&source);
    write_pattern(&source_file, 13);
    assert_eq!(first_difference(&expected, &source_file), None);

    let check = dir.path().join("check.sh");
    std::fs::write(&check, CHECK).unwrap();
    let drill = format!(
        "    drill:\n      schedule: \"0 0 5 * * SUN\"\n      timeout: 20m\n      verify:\n        command: [/bin/sh, {}, {}, {}]\n        timeout: 5m\n",
        check.display(),
        expected.display(),
        volumes_dir().display()
    );
    let config = peer.write_policy_with(
        dir.path(),
        std::slice::from_ref(&source),
        "0 0 3 * * *",
        &drill,
    );
    let config = config.to_str().unwrap();
    let history = dir.path().join("state/history.db");

    // The backup, through the agent.
    let (ok, _) = agent(&["trigger", "--config", config, "--policy", "peer-test"]).await;
    assert!(ok, "the backup policy ran");
    let backup = vbs_agent::store::Store::open_read_only(&history)
        .unwrap()
        .recent_jobs(10)
        .unwrap()
        .into_iter()
        .find(|j| j.policy == "peer-test")
        .and_then(|j| j.backup_id)
        .expect("the backup job recorded its backup");

    // The source is overwritten: only the backup holds the pattern now.
    write_pattern(&source_file, 14);
    assert!(first_difference(&expected, &source_file).is_some());

    // `vbs-agent restore` into a new volume.
    let (ok, out) = agent(&[
        "restore",
        &backup,
        "--config",
        config,
        "--cloud",
        "peer",
        "--new-volume",
    ])
    .await;
    let restored = out
        .lines()
        .find_map(|l| l.strip_prefix("volume    "))
        .filter(|v| *v != "-")
        .map(str::to_string);
    if let Some(v) = &restored {
        made.lock().unwrap().push(v.clone());
    }
    assert!(ok, "vbs-agent restore exited 0");
    assert!(out.contains("outcome   succeeded"), "{out}");
    assert!(out.contains(&format!("backup    {backup}")), "{out}");
    let restored = restored.expect("the output names the volume");
    let (_, v) = peer
        .call(reqwest::Method::GET, &format!("volumes/{restored}"), None)
        .await;
    assert_eq!(v["volume"]["status"], "available", "{v}");
    assert_eq!(
        first_difference(&expected, &volume_file(&restored)),
        None,
        "the restored volume holds the pattern byte for byte"
    );
    let (_, status, volume, manual_s, _, _) = restore_row(&history, "restore.manual");
    assert_eq!(
        (status.as_str(), volume.as_str()),
        ("succeeded", restored.as_str())
    );

    // The drill: a scratch volume, checked by the script, then deleted.
    let drill_policy = format!("peer-test{DRILL_SUFFIX}");
    let (ok, out) = agent(&["trigger", "--config", config, "--policy", &drill_policy]).await;
    let (job, status, scratch, drill_s, verify, left) = restore_row(&history, &drill_policy);
    made.lock().unwrap().push(scratch.clone());
    assert!(ok, "{out}");
    assert_eq!(status, "verified", "drill job {job}");
    assert_eq!(verify, "passed");
    assert!(drill_s > 0.0, "restore_s = {drill_s}");
    assert!(!left, "scratch_left = 0");
    let (code, _) = peer
        .call(reqwest::Method::GET, &format!("volumes/{scratch}"), None)
        .await;
    assert_eq!(code, 404, "scratch volume {scratch} is gone from Cinder");
    let _ = writeln!(
        std::io::stderr(),
        "real-Cinder restore: backup {backup} into {restored} in {manual_s:.1} s; drill into {scratch} in {drill_s:.1} s, verified"
    );
}
