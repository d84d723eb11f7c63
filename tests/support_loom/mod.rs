//! What the loom model files share: running a model within a preemption bound.

/// Runs `f` under loom with the preemption bound from `LOOM_MAX_PREEMPTIONS` (default 3).
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}
