//! One driver task per incident. `Engine::run` drives an incident until it
//! parks; a decision that arrives while it runs must not be lost, and two
//! drivers must never run the same incident at once. So a kick on an active
//! incident only marks it dirty, and its driver runs it once more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

use crate::engine::Engine;

#[derive(Default)]
pub(super) struct Runner {
    /// incident id -> kicked again while running
    active: Mutex<HashMap<String, bool>>,
    tasks: Mutex<JoinSet<()>>,
}

impl Runner {
    pub(super) fn kick(self: &Arc<Self>, engine: Engine, id: String) {
        {
            let mut active = self.active.lock().expect("runner lock");
            if let Some(dirty) = active.get_mut(&id) {
                *dirty = true;
                return;
            }
            active.insert(id.clone(), false);
        }
        let me = self.clone();
        let mut tasks = self.tasks.lock().expect("runner lock");
        // Reap finished drivers so the set does not grow with every incident.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            loop {
                // A panic outside any step (a bug) must not leave the
                // incident marked active with no driver: later kicks would
                // only mark it dirty, and nothing would run it again.
                let run = std::panic::AssertUnwindSafe(engine.run(&id));
                match futures_util::FutureExt::catch_unwind(run).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(incident = %id, error = %e, "incident run stopped");
                    }
                    Err(p) => {
                        let why = crate::engine::panic_text(p);
                        tracing::error!(incident = %id, panic = %why, "the incident's driver crashed; the next decision or restart runs it again");
                    }
                }
                let mut active = me.active.lock().expect("runner lock");
                match active.get_mut(&id) {
                    Some(dirty) if *dirty => *dirty = false,
                    _ => {
                        active.remove(&id);
                        break;
                    }
                }
            }
        });
    }

    pub(super) fn active(&self) -> usize {
        self.active.lock().expect("runner lock").len()
    }

    /// Stops every driver. Safe at any point: each transition is durable
    /// before its effect starts, and a resume retries an interrupted call
    /// with the same idempotency key.
    pub(super) async fn stop(&self) -> usize {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("runner lock"));
        let n = self.active();
        tasks.shutdown().await;
        self.active.lock().expect("runner lock").clear();
        n
    }
}
