//! The reload half of [`Server`]: stop serving and hand every live session and run over.

use super::Server;

impl Server {
    /// Reload (`src/handover/`): stops serving as a shutdown does (sockets close with 1012), has
    /// every live session hand over, stops the rest (runs, reaper, DB) as a shutdown would, and
    /// returns what the exec passes on. `meta.boot_id` is the next image's boot id: the
    /// handed-over executions are moved to it, so neither this image's last resort nor the next
    /// image's reconciliation touches them.
    pub async fn prepare_reload(
        mut self,
        meta: crate::handover::ReloadMeta,
    ) -> Result<crate::handover::Prepared, std::io::Error> {
        crate::handover::begin_reload();
        let deadline = self.stop_serving().await;
        let listener = self
            .listener_keep
            .take()
            .ok_or_else(|| std::io::Error::other("listening socket already handed over"))?;
        let handed = self
            .state
            .sessions
            .hand_over(self.state.config.shutdown_grace)
            .await;
        let runs = self
            .state
            .runs
            .hand_over(self.state.config.shutdown_grace)
            .await;
        let (ids, boot) = (
            (handed.iter().map(|h| h.execution_id))
                .chain(runs.iter().map(|r| r.execution_id))
                .collect::<Vec<_>>(),
            meta.boot_id.clone(),
        );
        let moved = self
            .state
            .db
            .write(move |c| crate::handover::move_to_boot(c, &ids, &boot))
            .await;
        if let Err(e) = moved {
            // The next image's reconciliation would interrupt them: do not hand over.
            let prepared = crate::handover::Prepared::new(meta, listener, handed).with_runs(runs);
            prepared.abandon();
            self.stop_actors(deadline).await;
            return Err(std::io::Error::other(format!(
                "recording the handover failed: {e}"
            )));
        }
        self.stop_actors(deadline).await;
        Ok(crate::handover::Prepared::new(meta, listener, handed).with_runs(runs))
    }
}
