//! `vbs-sim`: the cloud simulator alone, for trying the agent by hand.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use vbs_sim::{SimConfig, SimProject, SimServer, SimUser, SimVault, SimVolume, VolumeFault};

/// A simulated VBS/EVS/Keystone endpoint on loopback.
#[derive(Debug, Parser)]
#[command(name = "vbs-sim", version, about)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8776")]
    listen: SocketAddr,
    /// Project id (32 hex digits); random when not given.
    #[arg(long)]
    project_id: Option<String>,
    /// How many volumes to create.
    #[arg(long, default_value_t = 3)]
    volumes: usize,
    /// Volumes are attached (`in-use`): snapshots need `force: true`.
    #[arg(long)]
    attached: bool,
    /// Make backups of volume INDEX (0-based) fail: `INDEX:REASON`.
    #[arg(long, value_name = "INDEX:REASON")]
    fail_volume: Vec<String>,
    #[arg(long, default_value_t = 2)]
    snapshot_seconds: u64,
    #[arg(long, default_value_t = 5)]
    backup_seconds: u64,
    /// How long a volume created through the API stays `creating`.
    #[arg(long, default_value_t = 1)]
    volume_create_seconds: u64,
    /// How long a restore runs (volume `restoring-backup`, backup
    /// `restoring`, vendor job `RUNNING`).
    #[arg(long, default_value_t = 2)]
    restore_seconds: u64,
    /// Most volumes the project may hold (configured ones included);
    /// unlimited when not given.
    #[arg(long)]
    volume_quota: Option<usize>,
    /// Static token accepted in X-Auth-Token.
    #[arg(long, default_value = "sim-token")]
    token: String,
    /// Keystone user `NAME:DOMAIN:PASSWORD`.
    #[arg(long, value_name = "NAME:DOMAIN:PASSWORD")]
    user: Vec<String>,
    /// AK/SK pair whose SDK-HMAC-SHA256 signed requests are accepted.
    #[arg(long, value_name = "AK:SK")]
    access_key: Vec<String>,
    /// How many servers CSBS can back up (kind: server policies).
    #[arg(long, default_value_t = 1)]
    servers: usize,
    #[arg(long, default_value_t = 10)]
    server_backup_seconds: u64,
    /// Name of the CBR disk vault that holds every volume (served under
    /// `/cbr`).
    #[arg(long, default_value = "sim-disks")]
    cbr_vault: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let project = args
        .project_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let mut volumes: Vec<SimVolume> = (0..args.volumes)
        .map(|_| SimVolume {
            id: uuid::Uuid::new_v4().to_string(),
            size_gb: 10,
            attached: args.attached,
            ..SimVolume::default()
        })
        .collect();
    for spec in &args.fail_volume {
        let (index, reason) = spec
            .split_once(':')
            .ok_or(format!("--fail-volume {spec}: expected INDEX:REASON"))?;
        let index: usize = index
            .parse()
            .map_err(|_| format!("--fail-volume {spec}: INDEX must be a number"))?;
        let volume = volumes.get_mut(index).ok_or(format!(
            "--fail-volume {spec}: there are only {} volumes",
            args.volumes
        ))?;
        volume.fault = Some(VolumeFault::BackupError {
            fail_reason: reason.to_string(),
        });
    }
    let users = args
        .user
        .iter()
        .map(|u| match u.splitn(3, ':').collect::<Vec<_>>()[..] {
            [name, domain, password] => Ok(SimUser {
                name: name.into(),
                domain: domain.into(),
                password: password.into(),
            }),
            _ => Err(format!("--user {u}: expected NAME:DOMAIN:PASSWORD")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let servers: Vec<SimServer> = (0..args.servers)
        .map(|n| SimServer {
            project: project.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            name: format!("server-{n}"),
            volumes: vec![(uuid::Uuid::new_v4().to_string(), 40)],
            ..SimServer::default()
        })
        .collect();
    let vault = SimVault {
        project: project.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        name: args.cbr_vault.clone(),
        object_type: "disk".into(),
        resources: volumes.iter().map(|v| v.id.clone()).collect(),
        policy_id: None,
    };
    let config = SimConfig {
        cbr_vaults: vec![vault.clone()],
        servers: servers.clone(),
        server_backup_duration: Duration::from_secs(args.server_backup_seconds),
        projects: vec![SimProject {
            volume_quota: args.volume_quota,
            ..SimProject::new(&project, volumes.clone())
        }],
        tokens: vec![args.token.clone()],
        users,
        snapshot_duration: Duration::from_secs(args.snapshot_seconds),
        backup_duration: Duration::from_secs(args.backup_seconds),
        volume_create_duration: Duration::from_secs(args.volume_create_seconds),
        restore_duration: Duration::from_secs(args.restore_seconds),
        ..SimConfig::default()
    };
    let sim = vbs_sim::start(config, args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    for pair in &args.access_key {
        let (ak, sk) = pair
            .split_once(':')
            .ok_or(format!("--access-key {pair}: expected AK:SK"))?;
        sim.add_access_key(ak, sk);
    }
    let base = sim.base_url();
    println!(
        "vbs-sim listening on {base} (project {project}, token `{}`)",
        args.token
    );
    println!("volumes:");
    for v in &volumes {
        let note = if v.fault.is_some() {
            "  (backups fail)"
        } else {
            ""
        };
        println!("  {}{note}", v.id);
    }
    let quota = args
        .volume_quota
        .map_or("no quota".to_string(), |q| format!("quota {q} volumes"));
    println!("  (more can be created in zone sim-1a, {quota}; backups can be restored)");
    if !servers.is_empty() {
        println!("servers (CSBS):");
        for s in &servers {
            println!("  {}", s.id);
        }
    }
    println!(
        "CBR disk vault `{}` ({}) holds every volume",
        vault.name, vault.id
    );
    println!(
        "\nclouds block for the policy file (export VBS_TOKEN={}):\n",
        args.token
    );
    println!("clouds:\n  sim:\n    project_id: {project}\n    endpoints:\n      volume: {base}\n      backup: {base}\n      server_backup: {base}\n      cbr: {base}/cbr\n    auth:\n      type: token\n      token_env: VBS_TOKEN");
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    Ok(())
}
