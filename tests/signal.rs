//! The `signal` feature with real signals from outside: each scenario runs in a child process
//! (this test binary again, running only `scenario_child`), the parent sends it signals with
//! `kill` and reads what it reports on stdout. A signal hits the whole process it is sent to,
//! so keeping it in a child keeps the other tests, and the harness, out of its way.
//!
//! Why no signal-handler code of this crate can run: the crate registers nothing with
//! signal-hook but `flag::register` (an atomic store) and `low_level::pipe::register` (one
//! non-blocking `send` of a byte), and it uses no `unsafe` (`#![forbid(unsafe_code)]`), so it
//! cannot register a closure of its own. `handler_runs_on_the_registration_thread` shows the
//! other half: the handler runs on the registration's named thread, not where the signal landed.

#![cfg(all(unix, feature = "signal"))]

use std::env;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cancel_token::signal::{self, Signal, SignalGuard, SHUTDOWN_SIGNALS};
use cancel_token::{CancelToken, ReasonKind};

/// Generous bound for anything that waits on a signal or a child process. It only turns a hang
/// into a failure.
const LIMIT: Duration = Duration::from_secs(60);

/// How long a child watches a token that must stay untriggered.
const QUIET: Duration = Duration::from_millis(300);

/// Names the scenario a child process runs.
const SCENARIO: &str = "CANCEL_TOKEN_SIGNAL_SCENARIO";

/// Every line a child reports starts with this, to tell it from the harness's own output (the
/// first report shares its line with the harness's `test scenario_child ... `).
const PREFIX: &str = "@scenario: ";

// ---------------------------------------------------------------------------------------------
// The parent side: one test per scenario.

#[test]
fn sigterm_triggers_with_its_name() {
    let child = Scenario::start("shutdown");
    child.expect("ready");
    child.send("TERM");
    child.expect("triggered signal SIGTERM");
    child.exits_ok();
}

#[test]
fn sigint_triggers_with_its_name() {
    let child = Scenario::start("shutdown");
    child.expect("ready");
    child.send("INT");
    child.expect("triggered signal SIGINT");
    child.exits_ok();
}

#[test]
fn shutdown_signals_do_not_catch_sighup() {
    let child = Scenario::start("shutdown");
    child.expect("ready");
    child.send("HUP");
    // SIGHUP kept its default action: the child died of it without reporting a trigger.
    let status = child.finish();
    assert_eq!(
        status.signal(),
        Some(signal_hook::consts::SIGHUP),
        "{status:?}"
    );
}

#[test]
fn sighup_and_sigquit_when_requested() {
    let child = Scenario::start("hangup_quit");
    child.expect("ready");
    child.send("HUP");
    child.expect("hangup SIGHUP");
    child.send("QUIT");
    child.expect("quit SIGQUIT");
    child.exits_ok();
}

#[test]
fn two_registrations_both_fire() {
    let child = Scenario::start("two");
    child.expect("ready");
    child.send("TERM");
    child.expect("first SIGTERM");
    child.expect("second SIGTERM");
    child.exits_ok();
}

#[test]
fn dropping_a_guard_removes_only_its_registration() {
    let child = Scenario::start("drop_one");
    child.expect("ready");
    child.send("TERM");
    child.expect("kept SIGTERM");
    child.expect("dropped untriggered");
    child.exits_ok();
}

#[test]
fn on_signal_sees_every_later_delivery() {
    let child = Scenario::start("repeat");
    child.expect("ready");
    for (name, seen) in [("INT", "SIGINT"), ("TERM", "SIGTERM"), ("INT", "SIGINT")] {
        child.send(name);
        child.expect(&format!("handler {seen}"));
    }
    child.exits_ok();
}

#[test]
fn handler_runs_on_the_registration_thread() {
    let child = Scenario::start("thread");
    child.expect("ready");
    child.send("INT");
    child.expect("on cancel-token-signal");
    child.exits_ok();
}

#[test]
fn guard_dropped_inside_its_handler() {
    let child = Scenario::start("drop_in_handler");
    child.expect("ready");
    child.send("INT");
    child.expect("dropped in handler");
    child.exits_ok();
}

#[test]
fn dropping_the_last_registration_leaves_the_signal_ignored() {
    // What signal-hook does (see the module docs): its OS handler stays installed with no
    // action left, so SIGTERM no longer ends the process.
    let mut child = Scenario::start("drop_all");
    child.expect("ready");
    child.send("TERM");
    child.tell("go");
    child.expect("survived");
    child.exits_ok();
}

#[test]
fn dropped_registrations_leave_nothing_behind() {
    // signal-hook closes an action's write end only when `unregister` drops the action, so a
    // flat descriptor count shows the actions are really gone, not just the thread.
    let child = Scenario::start("churn");
    child.expect("flat");
    child.exits_ok();
}

#[test]
fn registration_errors_are_io_errors() {
    // No signal is registered here, so the test process keeps its default actions.
    let error = signal::on_signal(&[], |_| {}).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let error = signal::trigger_on(&CancelToken::new(), &[]).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn names() {
    let names: Vec<String> = [
        Signal::Interrupt,
        Signal::Terminate,
        Signal::Hangup,
        Signal::Quit,
    ]
    .iter()
    .map(|signal| format!("{}={signal}", signal.name()))
    .collect();
    assert_eq!(
        names,
        [
            "SIGINT=SIGINT",
            "SIGTERM=SIGTERM",
            "SIGHUP=SIGHUP",
            "SIGQUIT=SIGQUIT"
        ]
    );
    assert_eq!(SHUTDOWN_SIGNALS, [Signal::Interrupt, Signal::Terminate]);
}

/// A running child process; dropping it kills and reaps the child, so none is left running
/// when a test fails or times out.
struct Scenario {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Scenario {
    fn start(name: &str) -> Scenario {
        let mut child = Command::new(env::current_exe().expect("the test binary's path"))
            .args([
                "--exact",
                "scenario_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SCENARIO, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((_, report)) = line.split_once(PREFIX) {
                    if tx.send(report.to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        Scenario {
            child,
            stdin,
            lines,
        }
    }

    /// Waits for the child's next report and checks it.
    fn expect(&self, report: &str) {
        match self.lines.recv_timeout(LIMIT) {
            Ok(line) => assert_eq!(line, report),
            Err(_) => panic!("the child did not report {report:?} within {LIMIT:?}"),
        }
    }

    /// Sends the child a real signal, from another process.
    fn send(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed: {status:?}");
    }

    /// Writes a line to the child's stdin.
    fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to the child");
    }

    /// Waits (bounded) for the child to exit.
    fn finish(mut self) -> ExitStatus {
        self.stdin = None;
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(
                start.elapsed() < LIMIT,
                "the child did not exit within {LIMIT:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn exits_ok(self) {
        let status = self.finish();
        assert!(status.success(), "the child failed: {status:?}");
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Shutdown::on_signals`: the first SIGTERM requests the shutdown, and a second one forces it
/// at once even while the soft token's callbacks are still busy (the first request runs them
/// on a thread of its own, not on the signal thread).
#[test]
fn a_second_signal_forces_a_shutdown_while_soft_callbacks_still_run() {
    let child = Scenario::start("shutdown_escalates");
    child.expect("ready");
    child.send("TERM");
    child.expect("soft SIGTERM");
    let second = Instant::now();
    child.send("TERM");
    child.expect("forced shutdown requested again: SIGTERM");
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "the second signal waited for the soft callback"
    );
    child.exits_ok();
}

// ---------------------------------------------------------------------------------------------
// The child side.

/// The child processes' entry point; in the parent's own run (no scenario named) it does
/// nothing.
#[test]
fn scenario_child() {
    let Ok(name) = env::var(SCENARIO) else { return };
    match name.as_str() {
        "shutdown" => shutdown(),
        "hangup_quit" => hangup_quit(),
        "two" => two(),
        "drop_one" => drop_one(),
        "repeat" => repeat(),
        "thread" => on_thread(),
        "drop_in_handler" => drop_in_handler(),
        "drop_all" => drop_all(),
        "churn" => churn(),
        "shutdown_escalates" => shutdown_escalates(),
        other => panic!("unknown scenario {other:?}"),
    }
}

fn report(line: &str) {
    println!("{PREFIX}{line}");
}

/// Waits (bounded) for `token` and reports its reason as `label kind message`.
fn report_trigger(label: &str, token: &CancelToken) {
    assert!(token.wait_blocking_timeout(LIMIT), "{label}: no trigger");
    let reason = token.reason().expect("a triggered token has a reason");
    assert_eq!(reason.kind(), ReasonKind::Signal);
    report(&format!("{label} {}", reason.message().unwrap_or("-")));
}

fn shutdown() {
    let token = CancelToken::new();
    let _guard = signal::trigger_on(&token, &SHUTDOWN_SIGNALS).unwrap();
    report("ready");
    report_trigger("triggered signal", &token);
}

fn hangup_quit() {
    let hangup = CancelToken::new();
    let quit = CancelToken::new();
    let _hangup = signal::trigger_on(&hangup, &[Signal::Hangup]).unwrap();
    let _quit = signal::trigger_on(&quit, &[Signal::Quit]).unwrap();
    report("ready");
    report_trigger("hangup", &hangup);
    assert!(!quit.is_triggered());
    report_trigger("quit", &quit);
}

fn two() {
    let first = CancelToken::new();
    let second = CancelToken::new();
    let _first = signal::trigger_on(&first, &SHUTDOWN_SIGNALS).unwrap();
    let _second = signal::trigger_on(&second, &[Signal::Terminate]).unwrap();
    report("ready");
    report_trigger("first", &first);
    report_trigger("second", &second);
}

fn drop_one() {
    let kept = CancelToken::new();
    let dropped = CancelToken::new();
    let _kept = signal::trigger_on(&kept, &[Signal::Terminate]).unwrap();
    let gone = signal::trigger_on(&dropped, &[Signal::Terminate]).unwrap();
    drop(gone);
    report("ready");
    report_trigger("kept", &kept);
    // Both registrations' actions would have run in the same signal handler call; give the
    // dropped one's thread time it no longer has.
    assert!(!dropped.wait_blocking_timeout(QUIET));
    report("dropped untriggered");
}

fn repeat() {
    let (tx, rx) = mpsc::channel();
    let _guard = signal::on_signal(&SHUTDOWN_SIGNALS, move |signal| {
        let _ = tx.send(signal);
    })
    .unwrap();
    report("ready");
    for _ in 0..3 {
        let signal = rx.recv_timeout(LIMIT).expect("a delivery");
        report(&format!("handler {signal}"));
    }
}

fn on_thread() {
    let (tx, rx) = mpsc::channel();
    let _guard = signal::on_signal(&[Signal::Interrupt], move |_| {
        let _ = tx.send(thread::current().name().map(str::to_owned));
    })
    .unwrap();
    report("ready");
    let name = rx.recv_timeout(LIMIT).expect("a delivery");
    report(&format!("on {}", name.as_deref().unwrap_or("?")));
}

fn drop_in_handler() {
    let slot: Arc<Mutex<Option<SignalGuard>>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let guard = {
        let slot = Arc::clone(&slot);
        signal::on_signal(&[Signal::Interrupt], move |_| {
            // Dropping the guard here must not join this very thread.
            let guard = slot.lock().unwrap().take();
            drop(guard);
            let _ = tx.send(());
        })
        .unwrap()
    };
    *slot.lock().unwrap() = Some(guard);
    report("ready");
    rx.recv_timeout(LIMIT).expect("the handler ran");
    report("dropped in handler");
}

fn drop_all() {
    let token = CancelToken::new();
    drop(signal::trigger_on(&token, &[Signal::Terminate]).unwrap());
    report("ready");
    // The parent sends SIGTERM, then says "go"; by then the signal has been delivered.
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
    assert!(!token.wait_blocking_timeout(QUIET));
    report("survived");
}

/// Open file descriptors and (on Linux) threads of this process.
fn resources() -> (usize, usize) {
    let count = |dir: &str| std::fs::read_dir(dir).map_or(0, Iterator::count);
    (count("/dev/fd"), count("/proc/self/task"))
}

fn churn() {
    let token = CancelToken::new();
    // The first registration makes signal-hook's lasting state; count from after it.
    drop(signal::trigger_on(&token, &SHUTDOWN_SIGNALS).unwrap());
    let before = resources();
    for _ in 0..50 {
        let guard = signal::trigger_on(&token, &SHUTDOWN_SIGNALS).unwrap();
        assert!(format!("{guard:?}").contains("running: true"));
        drop(guard);
    }
    // A joined thread is gone from /proc a moment after `join` returns at the latest.
    let start = Instant::now();
    while resources() != before && start.elapsed() < LIMIT {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(resources(), before);
    assert!(!token.is_triggered());
    report("flat");
}

fn shutdown_escalates() {
    let shutdown = cancel_token::Shutdown::new(Duration::from_secs(3600));
    let _signals = shutdown.on_signals(&SHUTDOWN_SIGNALS).unwrap();
    let _busy = shutdown.tracker().enter();
    let soft = shutdown.soft().clone();
    // A soft callback that stays busy far longer than the test waits for the second signal.
    shutdown
        .soft()
        .on_cancel(|_| thread::sleep(Duration::from_secs(30)))
        .detach();
    report("ready");
    assert!(soft.wait_blocking_timeout(LIMIT), "no first request");
    report(&format!(
        "soft {}",
        soft.reason().unwrap().message().unwrap_or("-")
    ));
    let report_line = shutdown
        .wait_blocking_timeout(LIMIT)
        .expect("the second signal forces the shutdown");
    let forced = report_line.forced_by().expect("forced");
    report(&format!("forced {}", forced.message().unwrap_or("-")));
    // The soft callback's thread is still asleep: leave without waiting for it.
    std::process::exit(0);
}
