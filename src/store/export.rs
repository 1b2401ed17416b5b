//! Copying an SQLite history into PostgreSQL, so that a team moving its
//! agent to an HA pair keeps its audit trail: every row of every table,
//! with its ids, so that job 41 is job 41 on both and the views give the
//! same answers.
//!
//! The copy is idempotent and resumable: rows go in batches, each batch in
//! a transaction of its own, with `ON CONFLICT (primary key) DO NOTHING`,
//! so a second export (or one after an interrupted first) adds only what
//! is missing and never a row twice. Rows already in PostgreSQL are never
//! changed: once agents write there, the shared history is theirs.
//!
//! Two things make it refuse, before writing anything:
//!
//! - **Another history.** The target's `history_meta` names the history it
//!   holds; an export into one holding another (or one that agents have
//!   written to without a name) would mix two audit trails into one.
//! - **A live leader lease.** While an agent leads the target, only it
//!   writes (the fence of migration `postgres/0015` refuses anyone else's
//!   writes, the export's included); the export says to stop the agents.

use super::db::{args, Backend, Db, Row, Sql, Value};
use super::{Store, StoreError};

/// One table the export copies: its name and its primary key.
struct Table {
    name: &'static str,
    key: &'static [&'static str],
    /// Whether `id` is an identity column whose sequence must be moved
    /// past the copied ids.
    identity: bool,
}

const fn table(name: &'static str, key: &'static [&'static str], identity: bool) -> Table {
    Table {
        name,
        key,
        identity,
    }
}

/// The history's tables in an order where every row's references are
/// copied before it (`history_meta` first: it names the history).
const TABLES: &[Table] = &[
    table("history_meta", &["key"], false),
    table("runs", &["id"], true),
    table("jobs", &["id"], true),
    table("job_attempts", &["id"], true),
    table("events", &["id"], true),
    table("schedule_marks", &["policy"], false),
    table("retention_actions", &["id"], true),
    table("backup_shares", &["id"], true),
    table("server_volume_backups", &["id"], true),
    table("cloud_projects", &["cloud", "project_id"], false),
    table("restores", &["job_id"], false),
    table("run_targets", &["run_id", "target"], false),
    table("coverage_snapshots", &["id"], true),
    table("coverage_gaps", &["snapshot_id", "target"], false),
];

/// Rows per batch: a transaction and one `INSERT` each, well under
/// PostgreSQL's 65,535 parameters for the widest table.
pub const BATCH_ROWS: usize = 500;

/// What the export did with one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: &'static str,
    /// Rows in the SQLite history.
    pub rows: u64,
    /// Rows this export inserted.
    pub copied: u64,
    /// Rows PostgreSQL held already (an earlier export's).
    pub already_there: u64,
}

/// What an export copied, table by table, in the order it copied them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The history's id (`history_meta`), the same on both sides now.
    pub history_id: String,
    pub tables: Vec<TableCopy>,
}

/// Why an export did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(StoreError),
    #[error("the export copies into a PostgreSQL history; the target is an SQLite one")]
    TargetNotPostgres,
    #[error("the source of an export is an SQLite history; this one is in PostgreSQL already")]
    SourceNotSqlite,
    #[error(
        "the SQLite history has no history id in history_meta; open it once with this \
         vbs-agent (vbs-agent trigger or run) so that it is named, then export"
    )]
    SourceUnnamed,
    #[error(
        "{holder} leads the PostgreSQL history {target} (lease epoch {epoch}), and while an \
         agent leads it only that agent writes there; stop the agents on every host first \
         (systemctl stop vbs-agent), then export again"
    )]
    Led {
        target: String,
        holder: String,
        epoch: i64,
    },
    #[error(
        "an agent took the lead of the PostgreSQL history {target} during the export \
         ({detail}); stop the agents on every host (systemctl stop vbs-agent) and export \
         again: the rows copied so far stay, and the next export copies the rest"
    )]
    LedMidway { target: String, detail: String },
    #[error(
        "the PostgreSQL history {target} holds history {found}, not {exporting} (the one \
         being exported); an export never merges two histories: export into an empty \
         database"
    )]
    OtherHistory {
        target: String,
        found: String,
        exporting: String,
    },
    #[error(
        "the PostgreSQL history {target} is not empty ({rows} rows in {table}) and names no \
         history: agents have written to it already, and an export never merges two \
         histories; export into an empty database"
    )]
    NotEmpty {
        target: String,
        table: &'static str,
        rows: u64,
    },
    #[error(
        "{table} {key} is not the same in the SQLite history and in the PostgreSQL history \
         {target}: one of them changed after an earlier export (the agents on PostgreSQL \
         carried on, or the SQLite agent ran again). The export never overwrites a row; it \
         stopped here, and what it copied before stays"
    )]
    Diverged {
        target: String,
        table: &'static str,
        key: String,
    },
    #[error(
        "table {table} has the columns ({source_columns}) in the SQLite history but \
         ({target_columns}) in PostgreSQL; both should be at this vbs-agent's schema"
    )]
    SchemaDiffers {
        table: &'static str,
        source_columns: String,
        target_columns: String,
    },
}

impl From<StoreError> for ExportError {
    fn from(e: StoreError) -> Self {
        ExportError::Store(e)
    }
}

impl Store {
    /// Copies this SQLite history into the PostgreSQL history `target`
    /// (migrated, with no agent leading it), `batch` rows per transaction
    /// ([`BATCH_ROWS`] when 0), and moves each identity past the ids it
    /// copied. Running it again copies only the rows still missing.
    pub fn export_to(&self, target: &Store, batch: usize) -> Result<ExportSummary, ExportError> {
        let Backend::Sqlite(_) = self.db.backend() else {
            return Err(ExportError::SourceNotSqlite);
        };
        let Backend::Postgres(pg) = target.db.backend() else {
            return Err(ExportError::TargetNotPostgres);
        };
        let described = pg.describe().to_string();
        let midway = |e: StoreError| match e {
            StoreError::Fenced(detail) => ExportError::LedMidway {
                target: described.clone(),
                detail,
            },
            other => ExportError::Store(other),
        };
        let batch = if batch == 0 { BATCH_ROWS } else { batch };

        refuse_led(&target.db, &described)?;
        let id = self
            .db
            .value::<String>(
                "SELECT value FROM history_meta WHERE key = 'history_id'",
                args![],
            )?
            .ok_or(ExportError::SourceUnnamed)?;
        let columns = TABLES
            .iter()
            .map(|t| same_columns(&self.db, &target.db, t))
            .collect::<Result<Vec<_>, _>>()?;

        let mut tables = Vec::with_capacity(TABLES.len());
        let (meta, rest) = TABLES.split_at(1);
        let meta_rows = self.db.query(
            &format!(
                "SELECT {} FROM history_meta ORDER BY key",
                columns[0].join(", ")
            ),
            args![],
        )?;
        let copied = target
            .db
            .tx(|tx| claim(tx, &described, &id, &meta[0], &columns[0], &meta_rows))
            .map_err(midway)??;
        tables.push(TableCopy {
            table: meta[0].name,
            rows: meta_rows.len() as u64,
            copied,
            already_there: meta_rows.len() as u64 - copied,
        });
        for (t, cols) in rest.iter().zip(&columns[1..]) {
            let copy = copy_table(&self.db, &target.db, t, cols, batch, &described);
            tables.push(copy.map_err(|e| match e {
                ExportError::Store(e) => midway(e),
                other => other,
            })?);
        }
        for t in TABLES.iter().filter(|t| t.identity) {
            target
                .db
                .with(|c| c.query(&set_identity(t.name), args![]))
                .map_err(midway)?;
        }
        Ok(ExportSummary {
            history_id: id,
            tables,
        })
    }

    /// Rows per table of the history, for every table an export copies,
    /// in its order: what an export's result is checked against.
    pub fn row_counts(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        TABLES
            .iter()
            .map(|t| Ok((t.name, count(&self.db, t.name)?)))
            .collect()
    }
}

/// Refuses while a leader lease on the target is live.
fn refuse_led(db: &Db, target: &str) -> Result<(), ExportError> {
    let live = db.query_opt(
        "SELECT holder, epoch FROM leader_lease WHERE name = 'leader' AND expires_at > now()",
        args![],
    )?;
    match live {
        Some(row) => Err(ExportError::Led {
            target: target.to_string(),
            holder: row.get(0)?,
            epoch: row.get(1)?,
        }),
        None => Ok(()),
    }
}

/// The table's columns, the same on both sides (names and order).
fn same_columns(source: &Db, target: &Db, t: &Table) -> Result<Vec<String>, ExportError> {
    let sql = format!("SELECT * FROM {} WHERE 1 = 0", t.name);
    let theirs = source.with(|c| c.columns(&sql))?;
    let ours = target.with(|c| c.columns(&sql))?;
    if theirs != ours {
        return Err(ExportError::SchemaDiffers {
            table: t.name,
            source_columns: theirs.join(", "),
            target_columns: ours.join(", "),
        });
    }
    Ok(theirs)
}

/// In one transaction with `history_meta` locked against a second export:
/// checks that the target is empty or holds this very history, and copies
/// `history_meta`, which names it so from then on. A refusal is the inner
/// `Err`: the transaction then has written nothing.
fn claim(
    tx: &mut dyn Sql,
    target: &str,
    id: &str,
    meta: &Table,
    columns: &[String],
    rows: &[Row],
) -> Result<Result<u64, ExportError>, StoreError> {
    tx.batch("LOCK TABLE history_meta IN SHARE ROW EXCLUSIVE MODE")?;
    let found: Option<String> = tx.value(
        "SELECT value FROM history_meta WHERE key = 'history_id'",
        args![],
    )?;
    match found {
        Some(found) if found == id => {}
        Some(found) => {
            return Ok(Err(ExportError::OtherHistory {
                target: target.to_string(),
                found,
                exporting: id.to_string(),
            }))
        }
        None => {
            for t in &TABLES[1..] {
                let rows = tx
                    .value::<i64>(&format!("SELECT count(*) FROM {}", t.name), args![])?
                    .unwrap_or(0);
                if rows > 0 {
                    return Ok(Err(ExportError::NotEmpty {
                        target: target.to_string(),
                        table: t.name,
                        rows: rows.unsigned_abs(),
                    }));
                }
            }
        }
    }
    copy_batch(tx, target, meta, columns, rows)
}

/// Copies one table in batches of `batch` rows, in key order, each batch
/// in a transaction of its own.
fn copy_table(
    source: &Db,
    target: &Db,
    t: &Table,
    columns: &[String],
    batch: usize,
    described: &str,
) -> Result<TableCopy, ExportError> {
    let mut done = TableCopy {
        table: t.name,
        rows: 0,
        copied: 0,
        already_there: 0,
    };
    let (first, next) = (select(t, columns, false), select(t, columns, true));
    let key_at = key_positions(t, columns)?;
    let mut after: Option<Vec<Value>> = None;
    loop {
        let mut bound = after.clone().unwrap_or_default();
        bound.push(Value::from(batch));
        let sql = if after.is_some() { &next } else { &first };
        let rows = source.query(sql, &bound)?;
        let Some(last) = rows.last() else { break };
        after = Some(key_at.iter().map(|&i| last.0[i].clone()).collect());
        let copied = target.tx(|tx| copy_batch(tx, described, t, columns, &rows))??;
        done.rows += rows.len() as u64;
        done.copied += copied;
        done.already_there += rows.len() as u64 - copied;
        if rows.len() < batch {
            break;
        }
    }
    Ok(done)
}

/// The source query of a batch: the first (`after` false) or the one
/// after the key `?1…?k`, at most `?(k+1)` rows, in key order.
fn select(t: &Table, columns: &[String], after: bool) -> String {
    let key = t.key.join(", ");
    let from = if after {
        let marks: Vec<String> = (1..=t.key.len()).map(|i| format!("?{i}")).collect();
        format!("WHERE ({key}) > ({}) ", marks.join(", "))
    } else {
        String::new()
    };
    let limit = if after { t.key.len() + 1 } else { 1 };
    format!(
        "SELECT {} FROM {} {from}ORDER BY {key} LIMIT ?{limit}",
        columns.join(", "),
        t.name
    )
}

/// Where the key's columns are among `columns`.
fn key_positions(t: &Table, columns: &[String]) -> Result<Vec<usize>, StoreError> {
    t.key
        .iter()
        .map(|k| {
            columns
                .iter()
                .position(|c| c == k)
                .ok_or_else(|| StoreError::Corrupt(format!("{} has no column {k}", t.name)))
        })
        .collect()
}

/// Copies one batch: refuses (the inner `Err`, before writing) when a row
/// the target holds already under the same key is not the same row, else
/// inserts the rest; returns how many it inserted.
fn copy_batch(
    tx: &mut dyn Sql,
    target: &str,
    t: &Table,
    columns: &[String],
    rows: &[Row],
) -> Result<Result<u64, ExportError>, StoreError> {
    if rows.is_empty() {
        return Ok(Ok(0));
    }
    if let Some(key) = first_different(tx, t, columns, rows)? {
        return Ok(Err(ExportError::Diverged {
            target: target.to_string(),
            table: t.name,
            key,
        }));
    }
    insert(tx, t, columns, rows).map(Ok)
}

/// The key, as `name = value`, of the first of `rows` that the target
/// holds in another form; the `epoch` a PostgreSQL write is stamped with
/// does not count (an SQLite history has none).
fn first_different(
    tx: &mut dyn Sql,
    t: &Table,
    columns: &[String],
    rows: &[Row],
) -> Result<Option<String>, StoreError> {
    let key_at = key_positions(t, columns)?;
    let sql = format!(
        "SELECT {} FROM {} WHERE ({}) IN ({})",
        columns.join(", "),
        t.name,
        t.key.join(", "),
        tuples(rows.len(), t.key.len())
    );
    let keys: Vec<Value> = rows
        .iter()
        .flat_map(|r| key_at.iter().map(|&i| r.0[i].clone()))
        .collect();
    let there = tx.query(&sql, &keys)?;
    let key_of = |r: &Row| -> Vec<Value> { key_at.iter().map(|&i| r.0[i].clone()).collect() };
    let compared: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i] != "epoch")
        .collect();
    for held in &there {
        let key = key_of(held);
        let Some(ours) = rows.iter().find(|r| key_of(r) == key) else {
            continue;
        };
        if compared.iter().any(|&i| ours.0[i] != held.0[i]) {
            let named: Vec<String> = t
                .key
                .iter()
                .zip(&key)
                .map(|(k, v)| format!("{k} = {}", v.render()))
                .collect();
            return Ok(Some(named.join(", ")));
        }
    }
    Ok(None)
}

/// Inserts `rows` with their ids, skipping those whose key is there
/// already; returns how many it inserted.
fn insert(
    tx: &mut dyn Sql,
    t: &Table,
    columns: &[String],
    rows: &[Row],
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO NOTHING",
        t.name,
        columns.join(", "),
        tuples(rows.len(), columns.len()),
        t.key.join(", ")
    );
    let values: Vec<Value> = rows.iter().flat_map(|r| r.0.iter().cloned()).collect();
    tx.execute(&sql, &values)
}

/// `(?1, ?2), (?3, ?4)…`: `rows` tuples of `width` parameters.
fn tuples(rows: usize, width: usize) -> String {
    let tuple = |r: usize| {
        let marks: Vec<String> = (1..=width).map(|c| format!("?{}", r * width + c)).collect();
        format!("({})", marks.join(", "))
    };
    (0..rows).map(tuple).collect::<Vec<_>>().join(", ")
}

/// Moves the identity of `table.id` past its largest id, never back.
fn set_identity(table: &str) -> String {
    format!(
        "SELECT setval(s::regclass, m) FROM \
         (SELECT pg_get_serial_sequence('{table}', 'id') AS s, max(id) AS m FROM {table}) x \
         WHERE m > COALESCE(pg_sequence_last_value(s::regclass), 0)"
    )
}

fn count(db: &Db, table: &str) -> Result<u64, StoreError> {
    let n: i64 = db
        .value(&format!("SELECT count(*) FROM {table}"), args![])?
        .unwrap_or(0);
    Ok(n.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    /// Tables of the schema the export leaves alone: an SQLite history never
    /// holds a leader lease (one writer, held by its lock file), and the
    /// target's own lease is its agents' business.
    const NOT_COPIED: &[&str] = &["leader_lease"];

    #[test]
    fn every_table_of_the_schema_is_copied_or_left_out_on_purpose() {
        let (_dir, store) = temp_store();
        let mut schema: Vec<String> = store
            .db
            .rows(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name",
                args![],
                |r| r.get(0),
            )
            .unwrap();
        schema.retain(|t| !NOT_COPIED.contains(&t.as_str()));
        let mut copied: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        copied.sort_unstable();
        assert_eq!(schema, copied);
    }

    #[test]
    fn batches_are_read_in_key_order_after_the_last_key() {
        let t = table("run_targets", &["run_id", "target"], false);
        let cols = vec!["run_id".to_string(), "target".into(), "name".into()];
        assert_eq!(
            select(&t, &cols, true),
            "SELECT run_id, target, name FROM run_targets WHERE (run_id, target) > (?1, ?2) \
             ORDER BY run_id, target LIMIT ?3"
        );
        assert_eq!(
            select(&t, &cols, false),
            "SELECT run_id, target, name FROM run_targets ORDER BY run_id, target LIMIT ?1"
        );
    }
}
