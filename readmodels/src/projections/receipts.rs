//! Projection `receipts`: an index of every receipt, revoked or not. A
//! receipt's row is written once; its revocation is a row of its own.

use super::rows::{insert, Val};
use crate::error::ReadError;
use crate::projection::Decoded;
use crate::times::sortable_time;
use sqlx::AnyConnection;
use tollgate_domain::Event;

pub(crate) async fn apply(conn: &mut AnyConnection, generation: i64, batch: &[Decoded]) -> Result<(), ReadError> {
    let (mut receipts, mut revocations) = (Vec::new(), Vec::new());
    for d in batch {
        match &d.event {
            Event::ReceiptSubmitted(r) => {
                let artifacts = serde_json::to_string(&r.artifacts).map_err(|e| ReadError::Corrupt(e.to_string()))?;
                receipts.push(vec![
                    Val::from(generation),
                    d.position().into(),
                    r.id.to_string().into(),
                    r.unit.key().as_str().into(),
                    r.gate.as_str().into(),
                    r.action.as_str().into(),
                    i64::from(r.multipass).into(),
                    r.producer.to_string().into(),
                    sortable_time(r.submitted_at).into(),
                    r.custom.to_string().into(),
                    artifacts.into(),
                ]);
            }
            Event::ReceiptRevoked { receipt_id, reason, revoked_by, revoked_at, .. } => {
                revocations.push(vec![
                    Val::from(generation),
                    receipt_id.to_string().into(),
                    sortable_time(*revoked_at).into(),
                    revoked_by.as_str().into(),
                    reason.as_str().into(),
                ]);
            }
            _ => {}
        }
    }
    insert(
        conn,
        "INSERT INTO rm_receipts (generation, position, receipt_id, unit_key, gate, action, multipass, producer, \
         submitted_at, custom, artifacts) VALUES",
        "ON CONFLICT (generation, position) DO NOTHING",
        11,
        receipts,
    )
    .await?;
    insert(
        conn,
        "INSERT INTO rm_receipt_revocations (generation, receipt_id, revoked_at, revoked_by, reason) VALUES",
        "ON CONFLICT (generation, receipt_id) DO NOTHING",
        5,
        revocations,
    )
    .await
}
