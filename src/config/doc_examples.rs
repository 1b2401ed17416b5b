//! The examples in `README.md` and `docs/*.md` are checked against the
//! real loader, so the documents cannot drift from the program; and every
//! relative link there must name an existing file and heading.
//!
//! Each fenced block whose info string starts with `yaml` is one of four
//! kinds, named by the rest of the info string:
//!
//! - ```` ```yaml ````: a whole policy file, loaded with [`super::load`] (what
//!   `vbs-agent check` runs).
//! - ```` ```yaml fragment ````: part of a policy file, spliced into a
//!   minimal complete file (see [`splice`]) and loaded like a whole one.
//! - ```` ```yaml clouds.yaml ````: a `clouds.yaml`; each of its clouds is
//!   read with the agent's clouds.yaml reader.
//! - ```` ```yaml other ````: YAML that is not the agent's (`prometheus.yml`),
//!   parsed as YAML only.
//!
//! Any other `yaml…` info string, and a block that does not load, fails the
//! test with the file and line of the block. A policy file that names a
//! cloud by `clouds_yaml` or `from_env` depends on the process environment
//! and working directory, so it is loaded in a child run of this test
//! binary ([`load_in_child`]) with a `clouds.yaml` and `OS_*` variables made
//! for it in a temporary directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::{Mapping, Value};

use super::source::{self, Env};

/// Where the documents are, relative to the crate.
const DOCUMENTS: &[&str] = &["README.md", "docs"];

/// A fenced block of a Markdown file.
#[derive(Debug)]
struct Block {
    /// File and line of the opening fence, for messages.
    at: String,
    info: String,
    text: String,
}

/// What a `yaml` block stands for, by its fence's info string.
#[derive(Debug, PartialEq)]
enum Kind {
    Whole,
    Fragment,
    CloudsYaml,
    Other,
}

fn kind(info: &str) -> Result<Option<Kind>, String> {
    let mut words = info.split_whitespace();
    match words.next() {
        Some("yaml") => {}
        Some(lang) if lang.starts_with("yaml") || lang == "yml" => {
            return Err(format!("unknown info string `{info}`"))
        }
        _ => return Ok(None),
    }
    let kind = match words.next() {
        None => Kind::Whole,
        Some("fragment") => Kind::Fragment,
        Some("clouds.yaml") => Kind::CloudsYaml,
        Some("other") => Kind::Other,
        Some(_) => return Err(format!("unknown info string `{info}`")),
    };
    match words.next() {
        None => Ok(Some(kind)),
        Some(_) => Err(format!("unknown info string `{info}`")),
    }
}

/// The fenced blocks of `md`, named `name` in messages.
fn blocks(name: &str, md: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in md.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                open = Some(Block {
                    at: format!("{name}:{}", i + 1),
                    info: info.trim().to_string(),
                    text: String::new(),
                })
            }
            (Some(_), Some(rest)) if rest.trim().is_empty() => found.extend(open.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

/// The Markdown files the tests read: `README.md` and `docs/*.md`.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for entry in DOCUMENTS {
        let path = root.join(entry);
        if path.is_dir() {
            let mut mds: Vec<PathBuf> = std::fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .map(|e| e.expect("a directory entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect();
            mds.sort();
            files.extend(mds);
        } else {
            files.push(path);
        }
    }
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The minimal complete file fragments are spliced into: one inline cloud
/// `prod` with every endpoint, and one `backup` policy on it.
const BASE: &str = r#"
clouds:
  prod:
    project_id: 0123456789abcdef0123456789abcdef
    endpoints:
      volume: https://evs.example.com
      backup: https://vbs.example.com
      server_backup: https://csbs.example.com
    auth:
      type: password
      auth_url: https://iam.example.com/v3
      user: backup-bot
      user_domain: example
      password_env: VBS_PASSWORD
policies:
  - name: base
    kind: backup
    cloud: prod
    schedule: "0 30 1 * * *"
    volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]
"#;

/// Sections of `defaults:` a fragment may consist of.
const DEFAULTS_SECTIONS: &[&str] = &["notify", "poll", "retries"];
/// Sections of a cloud a fragment may consist of (placed in cloud `prod`).
const CLOUD_SECTIONS: &[&str] = &["auth", "endpoints"];
/// Sections of a policy a fragment may consist of (placed in the policy).
const POLICY_SECTIONS: &[&str] = &["retention", "share_to"];

/// A fragment spliced into [`BASE`], key by key of its top-level mapping:
/// - `clouds` entries are added to the base's, replacing one of the same
///   name; `policies` replaces the base's list; the other top-level fields
///   of a policy file replace the base's (which has none of them);
/// - `notify`, `poll` and `retries` go under `defaults`;
/// - `auth` and `endpoints` replace those of the base cloud `prod`;
/// - `retention` and `share_to` go into the base policy.
///
/// Any other key, or a fragment that is not a mapping, is an error.
fn splice(fragment: &Value) -> Result<Value, String> {
    let Value::Mapping(fragment) = fragment else {
        return Err("a fragment must be a YAML mapping".to_string());
    };
    let mut file: Value = serde_yaml::from_str(BASE).map_err(|e| e.to_string())?;
    for (key, value) in fragment {
        let name = key.as_str().unwrap_or_default();
        if name == "clouds" {
            let Value::Mapping(clouds) = value else {
                return Err("`clouds:` of a fragment must be a mapping".to_string());
            };
            for (cloud, entry) in clouds {
                mapping(&mut file["clouds"])?.insert(cloud.clone(), entry.clone());
            }
        } else if super::raw::TOP_FIELDS.contains(&name) {
            mapping(&mut file)?.insert(key.clone(), value.clone());
        } else if DEFAULTS_SECTIONS.contains(&name) {
            let defaults = mapping(&mut file)?
                .entry(Value::from("defaults"))
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            mapping(defaults)?.insert(key.clone(), value.clone());
        } else if CLOUD_SECTIONS.contains(&name) {
            mapping(&mut file["clouds"]["prod"])?.insert(key.clone(), value.clone());
        } else if POLICY_SECTIONS.contains(&name) {
            mapping(&mut file["policies"][0])?.insert(key.clone(), value.clone());
        } else {
            return Err(format!(
                "a fragment with `{name}:` is not one the test knows how to splice"
            ));
        }
    }
    Ok(file)
}

fn mapping(value: &mut Value) -> Result<&mut Mapping, String> {
    value
        .as_mapping_mut()
        .ok_or_else(|| "the base file lost a mapping".to_string())
}

/// The clouds of a policy file that are named from outside it.
fn outside_clouds(file: &Value) -> (Vec<String>, bool) {
    let mut entries = Vec::new();
    let mut from_env = false;
    if let Some(clouds) = file.get("clouds").and_then(Value::as_mapping) {
        for cloud in clouds.values() {
            if let Some(entry) = cloud.get("clouds_yaml").and_then(Value::as_str) {
                entries.push(entry.to_string());
            }
            from_env |= cloud.get("from_env").and_then(Value::as_bool) == Some(true);
        }
    }
    (entries, from_env)
}

/// A clouds.yaml entry for a policy file that names it.
const CLOUDS_YAML_ENTRY: &str = r#"
region_name: eu-de
auth:
  auth_url: https://iam.example.com/v3
  username: backup-bot
  password: not-a-real-password
  user_domain_name: example
  project_id: 0123456789abcdef0123456789abcdef
"#;

/// The `OS_*` variables of a cloud `from_env`.
const OS_ENV: &[(&str, &str)] = &[
    ("OS_AUTH_URL", "https://iam.example.com/v3"),
    ("OS_USERNAME", "backup-bot"),
    ("OS_PASSWORD", "not-a-real-password"),
    ("OS_USER_DOMAIN_NAME", "example"),
    ("OS_PROJECT_ID", "0123456789abcdef0123456789abcdef"),
    ("OS_REGION_NAME", "eu-de"),
];

/// Set for a child run of this binary: the policy file [`load_in_child`]
/// loads.
const CHILD_FILE: &str = "VBS_DOC_EXAMPLE_POLICY";

/// Loads a policy file as `vbs-agent check` does; with clouds named from
/// outside, in a child run given what they need.
fn load_policy(file: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let text = serde_yaml::to_string(file).map_err(|e| e.to_string())?;
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let (entries, from_env) = outside_clouds(file);
    if entries.is_empty() && !from_env {
        return super::load(&path)
            .map(drop)
            .map_err(|e| format!("it does not load: {e}"));
    }
    let mut clouds = Mapping::new();
    let entry: Value = serde_yaml::from_str(CLOUDS_YAML_ENTRY).map_err(|e| e.to_string())?;
    for name in entries {
        clouds.insert(Value::from(name), entry.clone());
    }
    let mut clouds_yaml = Mapping::new();
    clouds_yaml.insert(Value::from("clouds"), Value::Mapping(clouds));
    let clouds_path = dir.path().join("clouds.yaml");
    let clouds_text = serde_yaml::to_string(&clouds_yaml).map_err(|e| e.to_string())?;
    std::fs::write(&clouds_path, clouds_text).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args([
            "config::doc_examples::load_in_child",
            "--exact",
            "--nocapture",
        ])
        .env_clear()
        .envs(OS_ENV.iter().copied())
        .env("OS_CLIENT_CONFIG_FILE", &clouds_path)
        .env("HOME", dir.path())
        .env(CHILD_FILE, &path)
        .current_dir(dir.path())
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("1 passed") {
        Ok(())
    } else {
        Err(format!(
            "it does not load (child run): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Environment variables from a map, for the clouds.yaml reader.
struct MapEnv(Vec<(&'static str, String)>);

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Reads every cloud of a clouds.yaml with the agent's reader.
fn read_clouds_yaml(text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("clouds.yaml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let doc: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let Some(clouds) = doc.get("clouds").and_then(Value::as_mapping) else {
        return Err("a clouds.yaml needs a `clouds:` mapping".to_string());
    };
    let env = MapEnv(vec![("OS_CLIENT_CONFIG_FILE", path.display().to_string())]);
    for name in clouds.keys() {
        let name = name.as_str().unwrap_or_default();
        source::from_clouds_yaml(name, &env, dir.path())
            .map_err(|e| format!("cloud `{name}`: {e}"))?;
    }
    Ok(())
}

/// Checks one block; `Ok(false)` for a block that is not YAML.
fn check(block: &Block) -> Result<bool, String> {
    let fail = |e: String| format!("{} (```{}): {e}", block.at, block.info);
    let Some(kind) = kind(&block.info).map_err(fail)? else {
        return Ok(false);
    };
    let value: Value =
        serde_yaml::from_str(&block.text).map_err(|e| fail(format!("not YAML: {e}")))?;
    match kind {
        Kind::Whole => load_policy(&value),
        Kind::Fragment => splice(&value).and_then(|file| load_policy(&file)),
        Kind::CloudsYaml => read_clouds_yaml(&block.text),
        Kind::Other => Ok(()),
    }
    .map_err(fail)?;
    Ok(true)
}

#[test]
fn every_yaml_block_of_the_documents_loads() {
    let mut tested = 0;
    let mut failures = Vec::new();
    for path in documents() {
        let md = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        for block in blocks(&relative(&path), &md) {
            match check(&block) {
                Ok(yaml) => tested += usize::from(yaml),
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The README's example and the reference's: fewer means blocks were lost.
    assert!(tested >= 10, "only {tested} yaml blocks found");
    println!("{tested} yaml blocks of the documents load");
}

/// The child run of [`load_policy`]: loads the file `CHILD_FILE` names, in
/// the environment the parent gave. Without it (an ordinary run) it does
/// nothing.
#[test]
fn load_in_child() {
    if let Some(path) = std::env::var_os(CHILD_FILE) {
        if let Err(e) = super::load(Path::new(&path)) {
            panic!("{e}");
        }
    }
}

#[test]
fn broken_or_unknown_blocks_fail_with_their_place() {
    let md = "# t\n\n```yaml\nclouds: {}\n```\n\n```yaml fragment\nvolumes: [x]\n```\n\n\
              ```yaml frgment\na: 1\n```\n\n```yaml fragment\nretention: { keep_last: 0 }\n```\n\n\
              ```yaml other\n[unclosed\n```\n\n```yaml clouds.yaml\nclouds:\n  x:\n    verify: false\n```\n\n\
              ```yaml fragment\npolicies:\n  - name: auto-x\n```\n\n```sh\nnot: yaml: at all\n```\n";
    let errors: Vec<String> = blocks("t.md", md)
        .iter()
        .filter_map(|b| check(b).err())
        .collect();
    let places: Vec<&str> = errors
        .iter()
        .map(|e| e.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(
        places,
        ["t.md:3", "t.md:7", "t.md:11", "t.md:15", "t.md:19", "t.md:23", "t.md:29"],
        "{errors:#?}"
    );
    assert!(
        errors[1].contains("`volumes:` is not one the test knows"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("unknown info string"), "{}", errors[2]);
    assert!(errors[5].contains("verify: false"), "{}", errors[5]);
}

#[test]
fn fragments_are_spliced_where_they_belong() {
    let spliced = |text: &str| splice(&serde_yaml::from_str(text).expect("YAML")).expect("spliced");
    let notify = spliced("notify: { command: [/bin/true] }");
    assert!(notify["defaults"]["notify"]["command"].is_sequence());
    let auth = spliced("auth: { type: aksk, access_key_env: AK, secret_key_env: SK }");
    assert_eq!(auth["clouds"]["prod"]["auth"]["type"], "aksk");
    assert_eq!(
        auth["clouds"]["prod"]["project_id"],
        "0123456789abcdef0123456789abcdef"
    );
    let clouds = spliced("clouds: { lab: { from_env: true } }");
    assert!(clouds["clouds"]["prod"].is_mapping() && clouds["clouds"]["lab"].is_mapping());
    assert_eq!(outside_clouds(&clouds), (vec![], true));
    let retention = spliced("retention: { keep_last: 3 }");
    assert_eq!(retention["policies"][0]["retention"]["keep_last"], 3);
    load_policy(&retention).expect("the base file with a retention loads");
}

/// The relative link targets of `md` outside code, with their lines.
fn links(md: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_fence = false;
    for (i, line) in md.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Code spans may hold `](`; links never sit inside one here.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                found.push((i + 1, target.to_string()));
            }
            rest = &rest[end..];
        }
    }
    found
}

/// The anchors GitHub gives the headings of `md`: lower case, punctuation
/// other than `-` and `_` dropped, spaces as `-`, repeats numbered.
fn anchors(md: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut in_fence = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        if in_fence {
            continue;
        }
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let repeats = seen.entry(slug.clone()).or_insert(0);
        found.push(if *repeats == 0 {
            slug
        } else {
            format!("{slug}-{repeats}")
        });
        *repeats += 1;
    }
    found
}

/// Checks the relative links of the document `path`: the file exists, and
/// a `#anchor` into Markdown names one of its headings.
fn check_links(path: &Path, md: &str) -> Vec<String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut errors = Vec::new();
    for (line, target) in links(md) {
        let (file, anchor) = match target.split_once('#') {
            Some((file, anchor)) => (file, Some(anchor)),
            None => (target.as_str(), None),
        };
        let linked = if file.is_empty() {
            path.to_path_buf()
        } else {
            dir.join(file)
        };
        let at = format!("{}:{line}: link `{target}`", relative(path));
        if !linked.exists() {
            errors.push(format!("{at}: no file {}", linked.display()));
            continue;
        }
        if let Some(anchor) = anchor {
            let text = std::fs::read_to_string(&linked).unwrap_or_default();
            if !anchors(&text).iter().any(|a| a == anchor) {
                errors.push(format!("{at}: no such heading in {}", relative(&linked)));
            }
        }
    }
    errors
}

#[test]
fn every_relative_link_of_the_documents_resolves() {
    let mut errors = Vec::new();
    let mut checked = 0;
    for path in documents() {
        let md = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        checked += links(&md).len();
        errors.extend(check_links(&path, &md));
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(checked > 20, "only {checked} links found");
}

#[test]
fn broken_links_and_anchors_are_found() {
    let md = "# Top `level`\n\n## What happens when…\n\n## croner + chrono-tz\n\n## Top level\n\n\
              [a](#top-level) [b](#what-happens-when) [c](#croner--chrono-tz) [d](#top-level-1)\n\
              [e](#nope) [f](no-such-file.md) `[g](#in-code)`\n```sh\n[h](#in-fence)\n```\n";
    assert_eq!(
        anchors(md),
        [
            "top-level",
            "what-happens-when",
            "croner--chrono-tz",
            "top-level-1"
        ]
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.md");
    std::fs::write(&path, md).expect("write");
    let errors = check_links(&path, md);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains(":10: link `#nope`: no such heading"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains(":10: link `no-such-file.md`: no file"),
        "{}",
        errors[1]
    );
}
