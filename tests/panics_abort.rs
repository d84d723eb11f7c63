//! Panics in user code whose payload panics again when dropped, in the cases where today's
//! crate drops such a payload while the thread is already unwinding: a panic during unwinding
//! aborts the whole process.
//!
//! An abort would take every test of its binary down with it, so each test here runs its body
//! in a child process (this same binary, filtered to that one test) and fails if the child
//! does not exit cleanly: an abort shows as one failing test with the child's output.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cancel_token::CancelToken;
use common::{defuse, Bomb, LIMIT};

/// Names the test a child process was started to run.
const CHILD_ENV: &str = "CANCEL_TOKEN_PANICS_ABORT_CHILD";

/// Runs `body` in a child process running only the test `name`, and fails unless that child
/// exits successfully within [`LIMIT`]. In the child, runs `body` itself.
fn in_child_process(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child process");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child process") {
            break status;
        }
        if started.elapsed() > LIMIT {
            // Only the child this test started, by its own handle.
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child process running {name} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let output = child
        .wait_with_output()
        .expect("collect the child's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The panic messages, without the backtrace an abort prints whatever the environment says.
    let stderr: Vec<&str> = std::str::from_utf8(&output.stderr)
        .unwrap_or("(not UTF-8)")
        .lines()
        .filter(|line| !line.starts_with(char::is_whitespace) && *line != "stack backtrace:")
        .collect();
    let stderr = stderr.join("\n");
    assert!(
        status.success() && stdout.contains("1 passed"),
        "the child process running {name} failed: {status}\n\
         --- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// Registers a detached callback that counts its runs.
fn counting(token: &CancelToken) -> Arc<AtomicUsize> {
    let counter = Arc::new(AtomicUsize::new(0));
    let ran = Arc::clone(&counter);
    token
        .on_cancel(move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .detach();
    counter
}

/// Registers a detached callback that panics with a [`Bomb`].
fn bomb(token: &CancelToken) {
    token
        .on_cancel(|_| panic::resume_unwind(Box::new(Bomb)))
        .detach();
}

/// Guards: two callbacks panicking with payloads whose `Drop` panics, among others, do not
/// abort the process, and the others all run. Today the first bomb is kept to be resumed and
/// the second is dropped at once; its panic unwinds out of the callback loop, and the
/// unwinding drops the first bomb: a panic during unwinding, so the process aborts.
#[test]
fn two_callback_panics_whose_payloads_panic_on_drop_do_not_abort() {
    in_child_process(
        "two_callback_panics_whose_payloads_panic_on_drop_do_not_abort",
        || {
            let token = CancelToken::new();
            let first = counting(&token);
            bomb(&token);
            let middle = counting(&token);
            bomb(&token);
            let last = counting(&token);
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| token.trigger())) {
                defuse(payload);
            }
            assert!(token.is_triggered());
            let ran = [&first, &middle, &last].map(|c| c.load(Ordering::SeqCst));
            assert_eq!(ran, [1, 1, 1], "every other callback runs once");
        },
    );
}

/// Guards: a `DropGuard` dropped while its thread unwinds from another panic triggers its
/// token, and a callback panicking there with a payload whose `Drop` panics neither aborts the
/// process nor stops the other callbacks. The guard's documentation promises that such a
/// callback panic is swallowed "so that it cannot abort the process"; today swallowing means
/// dropping the payload (`let _ = catch_unwind(..)`) while the thread is unwinding, so the
/// process aborts.
#[test]
fn a_drop_guard_dropped_while_unwinding_survives_a_payload_that_panics_on_drop() {
    in_child_process(
        "a_drop_guard_dropped_while_unwinding_survives_a_payload_that_panics_on_drop",
        || {
            let token = CancelToken::new();
            bomb(&token);
            let after = counting(&token);
            let guard = token.clone().drop_guard();
            let result = panic::catch_unwind(AssertUnwindSafe(move || {
                let _guard = guard;
                panic!("the scope fails");
            }));
            if let Err(payload) = result {
                defuse(payload);
            }
            assert!(token.is_triggered());
            assert_eq!(after.load(Ordering::SeqCst), 1, "the other callback runs");
        },
    );
}

/// A plain `trigger()` made from a user `Drop` while the thread unwinds, on a token whose
/// callback panics: resuming that panic there would abort the process, so the trigger
/// swallows it (every callback still runs, and the token is triggered).
#[test]
fn a_trigger_from_a_drop_during_unwinding_survives_a_panicking_callback() {
    in_child_process(
        "a_trigger_from_a_drop_during_unwinding_survives_a_panicking_callback",
        || {
            struct TriggerOnDrop(CancelToken);
            impl Drop for TriggerOnDrop {
                fn drop(&mut self) {
                    self.0.trigger();
                }
            }
            let token = CancelToken::new();
            let ran = Arc::new(AtomicUsize::new(0));
            let _first = token.on_cancel(|_| panic!("a callback panics"));
            let counter = Arc::clone(&ran);
            let _second = token.on_cancel(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            });
            let unwound = panic::catch_unwind(AssertUnwindSafe(|| {
                let _trigger = TriggerOnDrop(token.clone());
                panic!("the work fails");
            }));
            assert!(unwound.is_err(), "the work's own panic comes out");
            assert!(token.is_triggered());
            assert_eq!(ran.load(Ordering::SeqCst), 1, "the other callback ran");
        },
    );
}
