//! Text from outside (a cloud's names and messages) is shown escaped:
//! ANSI escapes, newlines, C1 controls and U+202E reach no human-readable
//! output raw, and JSON carries the exact text in valid JSON.

use crate::helper::sim::VolumeFault;
use crate::helper::{agent_async, text};
use crate::helper::{make_backup, volume, volume_id, World};
use vbs_agent::api::{ClientSettings, CloudClient};

/// Clears the screen, turns red, forges a line, reverses what follows, and
/// opens a C1 control sequence.
const HOSTILE: &str = "\u{1b}[2J\u{1b}[31mpwned\nfake line\u{202e}exe.txt\u{9b}";

/// [`HOSTILE`] as it is shown.
const ESCAPED: &str = r"\u{1b}[2J\u{1b}[31mpwned\nfake line\u{202e}exe.txt\u{9b}";

/// Asserts that `shown` has none of [`HOSTILE`]'s control characters raw.
fn assert_no_raw(what: &str, shown: &str) {
    assert!(
        !shown.contains(['\u{1b}', '\u{202e}', '\u{9b}']) && !shown.contains("\nfake line"),
        "{what} shows raw control characters: {shown:?}"
    );
}

/// Asserts that `shown` has [`HOSTILE`] escaped, and never raw.
fn assert_escaped(what: &str, shown: &str) {
    assert_no_raw(what, shown);
    assert!(
        shown.contains(ESCAPED),
        "{what} shows the text escaped: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_messages_from_the_cloud_are_shown_escaped() {
    let fault = VolumeFault::BackupError {
        fail_reason: HOSTILE.into(),
    };
    let world = World::start_instant(vec![volume(1, Some(fault)), volume(3, None)]).await;
    let config = world.config("0 0 3 1 1 *", &[volume_id(1)], "", false);
    let client = CloudClient::new(&config.clouds["sim"], ClientSettings::default()).unwrap();
    let named = make_backup(&client, &volume_id(3), HOSTILE).await;
    let policy = world.path("policy.yaml").display().to_string();
    let policy = policy.as_str();

    let trigger = agent_async(&["trigger", "--config", policy, "--policy", "e2e"]).await;
    assert_eq!(trigger.status.code(), Some(1), "the job fails");
    assert_escaped("trigger", &text(&trigger.stdout));

    let history = agent_async(&["history", "--config", policy]).await;
    assert_escaped("history", &text(&history.stdout));

    let report = agent_async(&["report", "--config", policy]).await;
    assert_escaped("report", &text(&report.stdout));

    let backups = agent_async(&["backups", "--config", policy, "--cloud", "sim"]).await;
    assert_escaped("backups", &text(&backups.stdout));

    let show = [
        "backup", "show", &named, "--config", policy, "--cloud", "sim",
    ];
    assert_escaped("backup show", &text(&agent_async(&show).await.stdout));

    let unknown = [
        "backup", "show", HOSTILE, "--config", policy, "--cloud", "sim",
    ];
    let refused = agent_async(&unknown).await;
    assert_eq!(refused.status.code(), Some(1));
    // The URL loses the newline; the cloud's message quotes the rest.
    let stderr = text(&refused.stderr);
    assert_no_raw("an error quoting the cloud", &stderr);
    assert!(stderr.contains(r"pwnedfake line\u{202e}"), "{stderr}");

    let json = agent_async(&["history", "--config", policy, "--format", "json"]).await;
    let json = text(&json.stdout);
    assert_no_raw("history JSON", &json);
    let jobs: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(jobs[0]["fail_reason"], HOSTILE, "JSON keeps the exact text");
}
