//! Purpose: settling the check run of an attempt's earlier part. While an attempt awaited an approval its check
//! run was completed as `action_required` (GitHub shows buttons only on completed runs); once the attempt went on
//! under a new check run, the earlier one is updated to `neutral`, without buttons, saying who approved and
//! linking the new one ([`crate::report::approval::earlier_part_update`]).

use super::Outbox;
use super::send::{SendError, Sending};
use crate::ids::JobId;
use crate::report::approval::earlier_part_update;

impl Outbox {
    /// Sends the settling update of part `part` of `attempt`; nothing when that part never got a check run.
    pub(super) async fn settle_earlier_part(
        &self,
        s: &Sending<'_>,
        job: &JobId,
        attempt: u32,
        part: u32,
    ) -> Result<(), SendError> {
        let (record, state) = self.load(job, attempt)?;
        let a = state
            .attempt(attempt)
            .ok_or_else(|| SendError::Gone("attempt".into()))?;
        let index = part as usize;
        let Some((id, _)) = a.earlier_parts.get(index).and_then(|p| p.check_run.clone()) else {
            return self.commit(job, &[], |b| s.remove(b)).await;
        };
        let (body, _) = self.check_run_body(&record, a, s.now, |view| {
            earlier_part_update(view, index).unwrap_or_default()
        });
        self.inner
            .client
            .update_check_run(s.inst, &record.repo, id, &body)
            .await?;
        self.commit(job, &[], |b| s.remove(b)).await
    }
}
