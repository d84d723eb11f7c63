//! A registry's keys are user values: cloning and dropping them runs user code, which must
//! not run under the registry's lock.

use cancel_token::CancelRegistry;
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

static REGISTRY: OnceLock<CancelRegistry<Key>> = OnceLock::new();

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key(u32);

impl Drop for Key {
    fn drop(&mut self) {
        // User code in a key's Drop that looks at the registry.
        if let Some(registry) = REGISTRY.get() {
            let _ = registry.len();
        }
    }
}

/// A key's `Drop` is user code: the registry drops a stored key only after releasing its
/// lock, so a key whose `Drop` looks at the registry does not deadlock.
#[test]
fn a_keys_drop_runs_under_the_registry_lock() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let registry = REGISTRY.get_or_init(CancelRegistry::new);
        let (_token, registration) = registry.register(Key(1));
        drop(registration); // removes the last operation under Key(1): drops the stored key
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "Registration::drop deadlocked: the stored key was dropped under the registry lock"
    );
}
