//! The OpenStack / Huawei Cloud auth conventions end to end on 127.0.0.1:
//! clouds named from clouds.yaml or OS_* variables, endpoints from the
//! Keystone catalog, AK/SK-signed requests, systemd credentials, a private
//! CA over TLS, and secrets that never reach the history or the logs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use crate::helper::{run, text, volume, volume_id, World, PASSWORD, PROJECT};
use vbs_agent::api::{ClientSettings, CloudClient, ErrorClass, NewSnapshot};

/// Runs the binary off the async runtime (the simulator keeps serving) with
/// only the given OpenStack-related variables set.
async fn agent(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = run::command(args);
    cmd.env("RUST_LOG", "debug");
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") || k == "CREDENTIALS_DIRECTORY" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    run::output_async(cmd).await
}

/// A policy file with one backup policy over volume 1 of cloud `sim`,
/// whose entry is `cloud` (indented lines below `sim:`).
fn write_policy(world: &World, cloud: &str) -> String {
    write_named_policy(world, cloud, "e2e")
}

/// [`write_policy`] with another policy name: a trigger in the same second
/// as an earlier one of the same policy is the same slot, already done.
fn write_named_policy(world: &World, cloud: &str, name: &str) -> String {
    let text = format!(
        "state_dir: {state}\ndefaults:\n  completion_timeout: 30s\n  poll: {{ initial: 100ms, max: 300ms }}\nclouds:\n  sim:\n{cloud}policies:\n  - name: {name}\n    kind: backup\n    cloud: sim\n    schedule: \"0 0 3 1 1 *\"\n    force: true\n    volumes: [{vol}]\n",
        state = world.path("state").display(),
        vol = volume_id(1),
    );
    let path = world.path("policy.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Every byte of the history database, WAL included.
fn history_bytes(world: &World) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(world.path("state")).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clouds_yaml_cloud_finds_its_endpoints_in_the_catalog_and_never_leaks_the_password() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let clouds = world.path("clouds.yaml");
    std::fs::write(
        &clouds,
        format!(
            "clouds:\n  simcloud:\n    region_name: sim-1\n    auth:\n      auth_url: {}\n      username: bot\n      user_domain_name: Default\n      project_id: {PROJECT}\n",
            world.sim.base_url()
        ),
    )
    .unwrap();
    let secure = world.path("secure.yaml");
    std::fs::write(
        &secure,
        format!("clouds:\n  simcloud:\n    auth:\n      password: {PASSWORD}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&secure, std::fs::Permissions::from_mode(0o644)).unwrap();
    let policy = write_policy(&world, "    clouds_yaml: simcloud\n");
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds.display().to_string()),
        ("OS_CLIENT_SECURE_FILE", secure.display().to_string()),
    ];

    let check = agent(&["check", "--config", &policy], &env).await;
    let stdout = text(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(
        stdout.contains(&format!("from cloud `simcloud` of {}", clouds.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "volume endpoint: from the Keystone catalog (region sim-1, interface public)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("password from `auth.password` of cloud simcloud in"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "warning: secret file {} has mode 0644",
            secure.display()
        )),
        "{stdout}"
    );

    let run = agent(&["trigger", "--config", &policy, "--policy", "e2e"], &env).await;
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    let backups = world.sim.backups(PROJECT);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0].status, "available");
    // The warning reaches the log too.
    assert!(
        text(&run.stderr).contains("has mode 0644"),
        "{}",
        text(&run.stderr)
    );

    // The scan covers a log that shows the Keystone call itself.
    assert!(
        text(&run.stderr).contains("/v3/auth/tokens"),
        "{}",
        text(&run.stderr)
    );
    for output in [&check, &run] {
        assert!(!contains(&output.stdout, PASSWORD));
        assert!(!contains(&output.stderr, PASSWORD));
    }
    let history = history_bytes(&world);
    assert!(
        contains(&history, "available"),
        "the scan reads the real history"
    );
    assert!(
        !contains(&history, PASSWORD),
        "the password is in the history DB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_cloud_with_a_region_the_catalog_lacks_fails_clearly() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let env = [
        ("OS_AUTH_URL", format!("{}/v3", world.sim.base_url())),
        ("OS_USERNAME", "bot".to_string()),
        ("OS_USER_DOMAIN_NAME", "Default".to_string()),
        ("OS_PASSWORD", PASSWORD.to_string()),
        ("OS_PROJECT_ID", PROJECT.to_string()),
        ("OS_REGION_NAME", "eu-nowhere".to_string()),
    ];
    let policy = write_policy(&world, "    from_env: true\n");
    let check = agent(&["check", "--config", &policy], &env).await;
    assert!(
        text(&check.stdout).contains("from the OS_* environment variables"),
        "{}",
        text(&check.stdout)
    );
    let run = agent(&["trigger", "--config", &policy, "--policy", "e2e"], &env).await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(
        stdout.contains("the Keystone service catalog has no volume endpoint")
            && stdout.contains("region eu-nowhere"),
        "{stdout}"
    );
    assert!(world.sim.backups(PROJECT).is_empty());

    // The policy file's region wins over OS_REGION_NAME.
    let policy = write_named_policy(&world, "    from_env: true\n    region: sim-1\n", "again");
    let run = agent(&["trigger", "--config", &policy, "--policy", "again"], &env).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
    assert_eq!(world.sim.backups(PROJECT).len(), 1);
}

/// The simulator's name for project [`PROJECT`] (its domain is `Default`).
fn project_name() -> String {
    format!("project-{}", &PROJECT[..8])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clouds_yaml_project_by_name_is_scoped_by_keystone_and_its_id_recorded() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let clouds = world.path("clouds.yaml");
    // As OTC's own examples write it: a project name, the user's domain, no ID.
    std::fs::write(
        &clouds,
        format!(
            "clouds:\n  otc:\n    region_name: sim-1\n    auth:\n      auth_url: {}\n      username: bot\n      password: {PASSWORD}\n      user_domain_name: Default\n      project_name: {}\n",
            world.sim.base_url(),
            project_name()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&clouds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let policy = write_policy(&world, "    clouds_yaml: otc\n");
    let env = [("OS_CLIENT_CONFIG_FILE", clouds.display().to_string())];

    let check = agent(&["check", "--config", &policy], &env).await;
    let stdout = text(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(
        stdout.contains(&format!(
            "cloud sim (project `{}` in domain `Default`, from cloud `otc` of {})",
            project_name(),
            clouds.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("project ID: from Keystone"), "{stdout}");

    let run = agent(&["trigger", "--config", &policy, "--policy", "e2e"], &env).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
    let backups = world.sim.backups(PROJECT);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0].status, "available");

    let store = vbs_agent::store::Store::open_read_only(&world.path("state/history.db")).unwrap();
    let projects = store.cloud_projects().unwrap();
    assert_eq!(projects.len(), 1, "{projects:?}");
    assert_eq!(projects[0].cloud, "sim");
    assert_eq!(projects[0].project_id, PROJECT);
    assert_eq!(
        projects[0].project_name.as_deref(),
        Some(project_name().as_str())
    );
    assert_eq!(projects[0].project_domain.as_deref(), Some("Default"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn os_project_name_runs_end_to_end_and_a_wrong_name_is_named_in_the_error() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let env = |project: &str| {
        [
            ("OS_AUTH_URL", format!("{}/v3", world.sim.base_url())),
            ("OS_USERNAME", "bot".to_string()),
            ("OS_USER_DOMAIN_NAME", "Default".to_string()),
            ("OS_PASSWORD", PASSWORD.to_string()),
            ("OS_PROJECT_NAME", project.to_string()),
            ("OS_PROJECT_DOMAIN_NAME", "Default".to_string()),
            ("OS_REGION_NAME", "sim-1".to_string()),
        ]
    };
    let policy = write_policy(&world, "    from_env: true\n");
    let run = agent(
        &["trigger", "--config", &policy, "--policy", "e2e"],
        &env("eu-de_nope"),
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(
        stdout.contains(
            "Keystone refused user `bot` a token for project `eu-de_nope` in domain `Default`"
        ),
        "{stdout}"
    );
    assert!(world.sim.backups(PROJECT).is_empty());

    let policy = write_named_policy(&world, "    from_env: true\n", "again");
    let run = agent(
        &["trigger", "--config", &policy, "--policy", "again"],
        &env(&project_name()),
    )
    .await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
    assert_eq!(world.sim.backups(PROJECT).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_credential_password_with_discovered_endpoints() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let creds = world.path("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("keystone-password"), PASSWORD).unwrap();
    std::fs::set_permissions(
        creds.join("keystone-password"),
        std::fs::Permissions::from_mode(0o440),
    )
    .unwrap();
    let cloud = format!(
        "    project_id: {PROJECT}\n    region: sim-1\n    auth:\n      type: password\n      auth_url: {}/v3\n      user: bot\n      user_domain: Default\n      password_credential: keystone-password\n",
        world.sim.base_url()
    );
    let policy = write_policy(&world, &cloud);
    let env = [("CREDENTIALS_DIRECTORY", creds.display().to_string())];
    let run = agent(&["trigger", "--config", &policy, "--policy", "e2e"], &env).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
    // 0440 is how systemd hands credentials over: no warning.
    assert!(
        !text(&run.stderr).contains("has mode"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(world.sim.backups(PROJECT).len(), 1);

    let policy = write_named_policy(&world, &cloud, "again");
    let run = agent(&["trigger", "--config", &policy, "--policy", "again"], &[]).await;
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stdout).contains("$CREDENTIALS_DIRECTORY is not set"),
        "{}",
        text(&run.stdout)
    );
}

fn snapshot_request(n: &str) -> NewSnapshot<'_> {
    NewSnapshot {
        volume_id: "00000001-0000-4000-8000-000000000001",
        name: n,
        description: "t",
        force: true,
    }
}

fn aksk_client(world: &World, secret_key: &str) -> CloudClient {
    std::fs::write(world.path("ak"), "AKTEST0000000000\n").unwrap();
    std::fs::write(world.path("sk"), format!("{secret_key}\n")).unwrap();
    std::fs::set_permissions(world.path("sk"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let base = world.sim.base_url();
    let cloud = format!(
        "    project_id: {PROJECT}\n    endpoints: {{ volume: {base}, backup: {base} }}\n    auth:\n      type: aksk\n      access_key_file: ak\n      secret_key_file: sk\n"
    );
    let config = crate::helper::load(Path::new(&write_policy(world, &cloud)));
    CloudClient::new(&config.clouds["sim"], ClientSettings::default()).unwrap()
}

#[tokio::test]
async fn aksk_signed_requests_are_accepted_and_a_wrong_secret_is_refused() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    world
        .sim
        .add_access_key("AKTEST0000000000", "sk-4b1f0c-simulated");
    let client = aksk_client(&world, "sk-4b1f0c-simulated");
    // A POST with a JSON body and a GET with a query, both signed.
    let snap = client
        .create_snapshot(&snapshot_request("signed"))
        .await
        .unwrap();
    let found = client
        .find_snapshots("signed", &volume_id(1))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, snap.id);

    let wrong = aksk_client(&world, "not-the-secret");
    let err = wrong
        .create_snapshot(&snapshot_request("refused"))
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(401), "{err}");
    assert_eq!(err.class, ErrorClass::Auth);
    assert!(err.message.contains("signature mismatch"), "{err}");
    assert_eq!(world.sim.snapshots(PROJECT).len(), 1);
}

/// A CA, and a certificate for 127.0.0.1 signed by it: (CA PEM, server config).
fn private_ca() -> (String, tokio_rustls::rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use tokio_rustls::rustls;
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "vbs-agent test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), server)
}

/// Terminates TLS on a loopback port and passes the bytes to `backend`.
async fn tls_front(
    config: tokio_rustls::rustls::ServerConfig,
    backend: std::net::SocketAddr,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn private_ca_is_trusted_only_when_given_as_cacert() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let (ca_pem, server) = private_ca();
    std::fs::write(world.path("ca.pem"), ca_pem).unwrap();
    let front = tls_front(server, world.sim.addr()).await;
    let https = format!("https://{front}");
    let cloud = |extra: &str| {
        format!(
            "    project_id: {PROJECT}\n    endpoints: {{ volume: {https}, backup: {https} }}\n{extra}    auth:\n      type: token\n      token_file: token\n"
        )
    };
    let settings = ClientSettings {
        max_retries: 0,
        ..ClientSettings::default()
    };

    let config = crate::helper::load(Path::new(&write_policy(&world, &cloud(""))));
    let client = CloudClient::new(&config.clouds["sim"], settings.clone()).unwrap();
    let err = client
        .create_snapshot(&snapshot_request("untrusted"))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("TLS certificate not trusted") && err.message.contains("cacert"),
        "{err}"
    );
    assert_eq!(err.class, ErrorClass::Permanent);
    eprintln!("without cacert: {err}");
    assert!(world.sim.snapshots(PROJECT).is_empty());

    let config = crate::helper::load(Path::new(&write_policy(
        &world,
        &cloud("    cacert: ca.pem\n"),
    )));
    let client = CloudClient::new(&config.clouds["sim"], settings).unwrap();
    client
        .create_snapshot(&snapshot_request("trusted"))
        .await
        .unwrap();
    assert_eq!(world.sim.snapshots(PROJECT).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clouds_yaml_entry_that_is_not_there_is_reported_at_its_line() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let clouds = world.path("clouds.yaml");
    std::fs::write(&clouds, "clouds:\n  otc: {}\n  lab: {}\n").unwrap();
    let policy = write_policy(&world, "    clouds_yaml: prod\n");
    let env = [("OS_CLIENT_CONFIG_FILE", clouds.display().to_string())];
    let out = agent(&["check", "--config", &policy], &env).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "policy.yaml:7:18: clouds.sim.clouds_yaml: cloud `prod` is not in {} (clouds there: otc, lab)",
            clouds.display()
        )),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn os_token_with_auth_url_finds_its_endpoints_in_the_catalog() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let env = [
        ("OS_AUTH_URL", world.sim.base_url()),
        ("OS_TOKEN", crate::helper::TOKEN.to_string()),
        ("OS_PROJECT_ID", PROJECT.to_string()),
        ("OS_REGION_NAME", "sim-1".to_string()),
    ];
    let policy = write_policy(&world, "    from_env: true\n");
    let check = agent(&["check", "--config", &policy], &env).await;
    let stdout = text(&check.stdout);
    assert!(
        stdout.contains(&format!(
            "auth: token, service catalog from {}/v3",
            world.sim.base_url()
        )) && stdout.contains("token from environment variable OS_TOKEN"),
        "{stdout}"
    );
    let run = agent(&["trigger", "--config", &policy, "--policy", "e2e"], &env).await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
    assert!(
        text(&run.stderr).contains("/v3/auth/catalog"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(world.sim.backups(PROJECT).len(), 1);
    assert!(!contains(&history_bytes(&world), crate::helper::TOKEN));
}
