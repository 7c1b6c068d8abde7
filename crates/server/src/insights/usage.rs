//! What the Insights consumer costs, for `/metrics`: the journal events it has read and
//! the CPU time its passes have taken (reading, detecting, storing and saving), so an
//! operator can see detection's share of a core at the rate events arrive.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

pub struct Usage {
    registry: Registry,
    events: Counter,
    cpu_seconds: Counter<f64, AtomicU64>,
}

impl Default for Usage {
    fn default() -> Self {
        let mut registry = Registry::default();
        let events = Counter::default();
        let cpu_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "cairn_insights_events_read",
            "Journal events the Insights consumer has read",
            events.clone(),
        );
        registry.register(
            "cairn_insights_cpu_seconds",
            "CPU time the Insights consumer has used, in seconds",
            cpu_seconds.clone(),
        );
        Usage {
            registry,
            events,
            cpu_seconds,
        }
    }
}

impl Usage {
    /// Runs one pass of the consumer, counting the CPU time it takes on this thread.
    pub fn time<T>(&self, pass: impl FnOnce() -> T) -> T {
        let began = cpu_time::ThreadTime::now();
        let result = pass();
        self.cpu_seconds.inc_by(began.elapsed().as_secs_f64());
        result
    }

    pub fn read(&self, events: u64) {
        self.events.inc_by(events);
    }

    /// Writes the counters in the OpenMetrics text format, without the closing `# EOF`.
    pub fn encode_families(&self, out: &mut String) {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
            .expect("writing to a string");
    }
}
