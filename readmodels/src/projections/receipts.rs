//! Projection `receipts`: an index of every receipt, revoked or not.

use crate::error::ReadError;
use crate::projection::Decoded;
use sqlx::AnyConnection;
use tollgate_domain::Event;

const INSERT: &str = "INSERT INTO rm_receipts \
    (generation, receipt_id, position, unit_key, gate, action, multipass, producer, submitted_at, custom, artifacts, \
     revoked) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0) \
    ON CONFLICT (generation, receipt_id) DO NOTHING";

const REVOKE: &str = "UPDATE rm_receipts SET revoked = 1, revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
    WHERE generation = $4 AND receipt_id = $5";

pub(crate) async fn apply(conn: &mut AnyConnection, generation: i64, decoded: &Decoded) -> Result<(), ReadError> {
    match &decoded.event {
        Event::ReceiptSubmitted(receipt) => {
            let submitted_at = rfc3339(receipt.submitted_at)?;
            sqlx::query(INSERT)
                .bind(generation)
                .bind(receipt.id.to_string())
                .bind(decoded.position())
                .bind(receipt.unit.key().as_str().to_owned())
                .bind(receipt.gate.as_str())
                .bind(receipt.action.as_str())
                .bind(i64::from(receipt.multipass))
                .bind(receipt.producer.to_string())
                .bind(submitted_at)
                .bind(receipt.custom.to_string())
                .bind(serde_json::to_string(&receipt.artifacts).map_err(|e| ReadError::Corrupt(e.to_string()))?)
                .execute(&mut *conn)
                .await?;
        }
        Event::ReceiptRevoked { receipt_id, reason, revoked_by, revoked_at, .. } => {
            sqlx::query(REVOKE)
                .bind(rfc3339(*revoked_at)?)
                .bind(revoked_by.as_str())
                .bind(reason.as_str())
                .bind(generation)
                .bind(receipt_id.to_string())
                .execute(&mut *conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

fn rfc3339(at: time::OffsetDateTime) -> Result<String, ReadError> {
    Ok(crate::times::sortable_time(at))
}
