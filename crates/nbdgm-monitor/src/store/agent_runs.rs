//! The store query of the agent API: whether a cycle of `CHECK@LOCATION` with these times is
//! already stored, so a batch retried after a restart of the central is not stored twice.

use super::{t, ts, Result, Store};
use chrono::{DateTime, Utc};

impl Store {
    /// A run of `check` started and finished at exactly these times exists.
    pub fn has_run(
        &mut self,
        check: &str,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
    ) -> Result<bool> {
        let rows = self.db.query(
            "SELECT id FROM runs WHERE finished_at = $1 AND check_name = $2 AND started_at = $3 \
             LIMIT 1",
            &[t(ts(finished)), t(check), t(ts(started))],
        )?;
        Ok(!rows.is_empty())
    }
}
