use std::collections::{BTreeSet, HashSet};

use super::*;

/// Every legal move, written out: `kind phase outcome → next`. The test
/// below checks the table against this list for every combination of
/// kind, phase and outcome, so a move added or lost shows up here.
const LEGAL: &str = "
backup   pending             started         snapshot_requested
backup   pending             started_at_backup backup_requested
backup   snapshot_requested  created         snapshot_creating
backup   snapshot_requested  failed          cleanup
backup   snapshot_requested  gave_up         done
backup   snapshot_creating   ready           backup_requested
backup   snapshot_creating   failed          cleanup
backup   snapshot_creating   gave_up         done
backup   backup_requested    created         backup_creating
backup   backup_requested    failed          cleanup
backup   backup_requested    gave_up         done
backup   backup_creating     ready           cleanup
backup   backup_creating     ready_to_share  sharing
backup   backup_creating     failed          cleanup
backup   backup_creating     gave_up         done
backup   sharing             shared          cleanup
backup   cleanup             retry           pending
backup   cleanup             finished        done
snapshot pending             started         snapshot_requested
snapshot snapshot_requested  created         snapshot_creating
snapshot snapshot_requested  failed          cleanup
snapshot snapshot_requested  gave_up         done
snapshot snapshot_creating   ready           done
snapshot snapshot_creating   failed          cleanup
snapshot snapshot_creating   gave_up         done
snapshot cleanup             retry           pending
snapshot cleanup             finished        done
server   pending             started         protect_requested
server   protect_requested   created         checkpoint_creating
server   protect_requested   failed          cleanup
server   protect_requested   gave_up         done
server   checkpoint_creating ready           cleanup
server   checkpoint_creating failed          cleanup
server   checkpoint_creating gave_up         done
server   cleanup             retry           pending
server   cleanup             finished        done
restore  pending             started         volume_requested
restore  volume_requested    created         volume_creating
restore  volume_requested    failed          cleanup
restore  volume_requested    gave_up         done
restore  volume_creating     ready           restore_requested
restore  volume_creating     failed          cleanup
restore  volume_creating     gave_up         done
restore  restore_requested   created         restoring
restore  restore_requested   failed          cleanup
restore  restore_requested   gave_up         done
restore  restoring           ready           verifying
restore  restoring           failed          cleanup
restore  restoring           gave_up         done
restore  verifying           ready           cleanup
restore  verifying           failed          cleanup
restore  verifying           gave_up         done
restore  cleanup             retry           pending
restore  cleanup             finished        done
";

fn legal_moves() -> HashSet<(PolicyKind, Phase, Outcome, Phase)> {
    let phase = |s: &str| {
        *Phase::ALL
            .iter()
            .find(|p| p.as_str() == s)
            .unwrap_or_else(|| panic!("no phase `{s}`"))
    };
    let outcome = |s: &str| {
        *Outcome::ALL
            .iter()
            .find(|o| o.as_str() == s)
            .unwrap_or_else(|| panic!("no outcome `{s}`"))
    };
    LEGAL
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let kind: PolicyKind = f[0].parse().expect("kind");
            (kind, phase(f[1]), outcome(f[2]), phase(f[3]))
        })
        .collect()
}

#[test]
fn the_table_allows_exactly_the_listed_moves() {
    let legal = legal_moves();
    for kind in PolicyKind::ALL {
        for phase in Phase::ALL {
            for outcome in Outcome::ALL {
                let listed = legal
                    .iter()
                    .find(|(k, p, o, _)| (*k, *p, *o) == (kind, phase, outcome))
                    .map(|m| m.3);
                assert_eq!(
                    next(kind, phase, outcome),
                    listed,
                    "{kind} {} {}",
                    phase.as_str(),
                    outcome.as_str()
                );
            }
        }
    }
}

/// The phases reachable from `pending` by legal moves.
fn reachable(kind: PolicyKind) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::from([Phase::Pending.as_str()]);
    let mut todo = vec![Phase::Pending];
    while let Some(phase) = todo.pop() {
        for outcome in Outcome::ALL {
            if let Some(to) = next(kind, phase, outcome) {
                if seen.insert(to.as_str()) {
                    todo.push(to);
                }
            }
        }
    }
    seen
}

#[test]
fn each_kind_moves_through_its_own_phases_only_and_all_of_them() {
    for kind in PolicyKind::ALL {
        let own: BTreeSet<&str> = phases(kind).iter().map(|p| p.as_str()).collect();
        assert_eq!(reachable(kind), own, "{kind}");
        for phase in Phase::ALL {
            if !own.contains(phase.as_str()) {
                assert!(
                    Outcome::ALL.iter().all(|o| next(kind, phase, *o).is_none()),
                    "{kind} has a move out of foreign phase {}",
                    phase.as_str()
                );
            }
        }
    }
}

#[test]
fn every_phase_can_still_end_and_done_is_final() {
    for kind in PolicyKind::ALL {
        for &phase in phases(kind) {
            // Walk forward along any legal move until done; the table has
            // no phase without a way on, other than done itself.
            let mut at = phase;
            let mut steps = 0;
            while at != Phase::Done {
                at = Outcome::ALL
                    .iter()
                    .filter(|o| **o != Outcome::Retry)
                    .find_map(|o| next(kind, at, *o))
                    .unwrap_or_else(|| panic!("{kind}: stuck in {}", at.as_str()));
                steps += 1;
                assert!(steps <= phases(kind).len(), "{kind}: a loop without retry");
            }
        }
        assert!(Outcome::ALL
            .iter()
            .all(|o| next(kind, Phase::Done, *o).is_none()));
    }
}

#[test]
fn only_cleanup_starts_another_attempt() {
    for kind in PolicyKind::ALL {
        for phase in Phase::ALL {
            for outcome in Outcome::ALL {
                if next(kind, phase, outcome) == Some(Phase::Pending) {
                    assert_eq!((phase, outcome), (Phase::Cleanup, Outcome::Retry));
                }
            }
        }
    }
}
