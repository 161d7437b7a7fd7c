//! Projection `receipts`: an index of every receipt, revoked or not.

use super::rows::{insert, Val};
use crate::error::ReadError;
use crate::projection::Decoded;
use crate::times::sortable_time;
use sqlx::AnyConnection;
use tollgate_domain::Event;

const REVOKE: &str = "UPDATE rm_receipts SET revoked = 1, revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
    WHERE generation = $4 AND receipt_id = $5";

pub(crate) async fn apply(conn: &mut AnyConnection, generation: i64, batch: &[Decoded]) -> Result<(), ReadError> {
    let mut rows = Vec::new();
    for d in batch {
        if let Event::ReceiptSubmitted(r) = &d.event {
            let artifacts = serde_json::to_string(&r.artifacts).map_err(|e| ReadError::Corrupt(e.to_string()))?;
            rows.push(vec![
                Val::from(generation),
                r.id.to_string().into(),
                d.position().into(),
                r.unit.key().as_str().into(),
                r.gate.as_str().into(),
                r.action.as_str().into(),
                i64::from(r.multipass).into(),
                r.producer.to_string().into(),
                sortable_time(r.submitted_at).into(),
                r.custom.to_string().into(),
                artifacts.into(),
                0_i64.into(),
            ]);
        }
    }
    insert(
        conn,
        "INSERT INTO rm_receipts (generation, receipt_id, position, unit_key, gate, action, multipass, producer, \
         submitted_at, custom, artifacts, revoked) VALUES",
        "ON CONFLICT (generation, receipt_id) DO NOTHING",
        12,
        rows,
    )
    .await?;
    // After the inserts: a receipt may be revoked in the batch that added it.
    for d in batch {
        if let Event::ReceiptRevoked { receipt_id, reason, revoked_by, revoked_at, .. } = &d.event {
            sqlx::query(REVOKE)
                .bind(sortable_time(*revoked_at))
                .bind(revoked_by.as_str())
                .bind(reason.as_str())
                .bind(generation)
                .bind(receipt_id.to_string())
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
