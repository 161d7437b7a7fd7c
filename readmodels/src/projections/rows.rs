//! Multi-row statements: a batch of events becomes a few statements, not a
//! few per event, whatever the batch size.

use crate::error::ReadError;
use sqlx::AnyConnection;

/// A value to bind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Int(i64),
    Text(String),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_owned())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}

/// Bind parameters per statement: below SQLite's and PostgreSQL's limits.
const MAX_PARAMS: usize = 30_000;

/// Runs `{head} ($1, ...), (...) {tail}` over `rows` (each `width` values),
/// in as many statements as the parameter limit needs.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    width: usize,
    rows: Vec<Vec<Val>>,
) -> Result<(), ReadError> {
    let per_statement = (MAX_PARAMS / width.max(1)).max(1);
    for chunk in rows.chunks(per_statement) {
        let mut sql = String::from(head);
        let mut n = 0;
        for (i, row) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 { " (" } else { ", (" });
            for j in 0..row.len() {
                n += 1;
                sql.push_str(&if j == 0 { format!("${n}") } else { format!(", ${n}") });
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = match value {
                Val::Int(v) => query.bind(*v),
                Val::Text(v) => query.bind(v.clone()),
            };
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
