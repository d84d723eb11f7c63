//! Regression (found in review): a registry published `Started` after the operation was in
//! the live table and the table's lock released, so another thread that found it there
//! (list + get) and finished it could publish `Finished` first. `Started` is now queued under
//! the table's lock. A race: two seconds of trying (it showed within 0.2 s before the fix).
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, Filter, OperationEvent, OperationRegistry};

#[test]
fn finished_never_comes_before_started() {
    let registry = OperationRegistry::with_history(0);
    let events = registry.subscribe_with_capacity(1 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let finisher = {
        let registry = registry.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for snapshot in registry.list(&Filter::new()) {
                    if let Some(op) = registry.get(snapshot.id) {
                        op.complete();
                    }
                }
            }
        })
    };
    let parent = CancelToken::new();
    let started = Instant::now();
    let mut ops = Vec::new();
    let mut bad = None;
    let mut seen_started = HashSet::new();
    while started.elapsed() < Duration::from_secs(2) && bad.is_none() {
        for _ in 0..200 {
            ops.push(registry.start("job", &parent));
        }
        ops.clear();
        while let Some(event) = events.try_next() {
            match event {
                OperationEvent::Started(s) => {
                    seen_started.insert(s.id);
                }
                OperationEvent::Finished(s) if !seen_started.contains(&s.id) => {
                    bad = Some(s.id);
                }
                OperationEvent::Lagged(n) => panic!("lagged {n}"),
                _ => {}
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    finisher.join().unwrap();
    assert_eq!(
        bad, None,
        "Finished arrived before Started for this operation"
    );
}
