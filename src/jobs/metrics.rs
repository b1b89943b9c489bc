//! The metrics sampler's loop: the pool and outbox gauges, and the recorder's upkeep.

use crate::metrics::Sampler;

use super::Jobs;

impl Jobs {
    /// Adds the sampling loop (nothing when metrics are off).
    pub fn with_metrics(mut self, sampler: Sampler) -> Self {
        if sampler.metrics().is_on() {
            self.tasks.push(tokio::spawn(sample(sampler)));
        }
        self
    }
}

/// Every [`Sampler::EVERY`], from the start.
async fn sample(sampler: Sampler) {
    let mut tick = tokio::time::interval(Sampler::EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sampler.sample().await;
    }
}
