//! The recipes of `docs/threads.md` for a worker blocked in `std::sync::mpsc::Receiver::recv`:
//! a callback that closes the channel by dropping the last `Sender`, `recv_timeout` with
//! `is_triggered`, and `try_recv` with `sleep_blocking`. Each worker must stop after a trigger
//! (under a watchdog, so a worker that never wakes fails instead of hanging) and handle the jobs
//! sent before it.

mod common;

use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cancel_token::{CancelToken, Cancelled};
use common::{within, LIMIT};

const POLL: Duration = Duration::from_millis(5);

/// Handles jobs until the channel closes, reporting each one on `done`.
fn blocking_worker(
    jobs: mpsc::Receiver<u32>,
    token: &CancelToken,
    done: &mpsc::Sender<u32>,
) -> Result<u32, Cancelled> {
    let mut sum = 0;
    for job in jobs {
        token.raise_if_triggered()?;
        sum += job;
        let _ = done.send(job);
    }
    token.raise_if_triggered()?;
    Ok(sum)
}

#[test]
fn a_callback_that_drops_the_last_sender_wakes_a_worker_blocked_in_recv() {
    let token = CancelToken::named("worker");
    let (tx, rx) = mpsc::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let _close = token.on_cancel({
        let tx = Arc::clone(&tx);
        move |_| drop(tx.lock().unwrap().take())
    });
    let (done_tx, done) = mpsc::channel();
    let worker = {
        let token = token.clone();
        thread::spawn(move || blocking_worker(rx, &token, &done_tx))
    };
    let send = |job| tx.lock().unwrap().as_ref().map(|tx| tx.send(job).is_ok());

    assert_eq!(send(3), Some(true));
    // The worker has taken the job, and is back in `recv` (or about to be).
    assert_eq!(done.recv_timeout(LIMIT), Ok(3));
    token.trigger_with("shutting down");
    assert_eq!(send(4), None, "the channel was closed by the callback");

    let outcome = within(LIMIT, move || worker.join().unwrap());
    assert_eq!(
        outcome.unwrap_err().reason().message(),
        Some("shutting down")
    );
}

#[test]
fn without_a_trigger_the_blocking_worker_ends_when_the_producers_do() {
    let token = CancelToken::new();
    let (tx, rx) = mpsc::channel();
    let (done_tx, _done) = mpsc::channel();
    let worker = {
        let token = token.clone();
        thread::spawn(move || blocking_worker(rx, &token, &done_tx))
    };
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert_eq!(within(LIMIT, move || worker.join().unwrap()), Ok(3));
}

#[test]
fn a_worker_polling_with_recv_timeout_sees_the_trigger_within_its_interval() {
    fn worker(jobs: mpsc::Receiver<u32>, token: &CancelToken) -> Result<u32, Cancelled> {
        let mut sum = 0;
        loop {
            token.raise_if_triggered()?;
            match jobs.recv_timeout(POLL) {
                Ok(job) => sum += job,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(sum),
            }
        }
    }

    let token = CancelToken::new();
    let (tx, rx) = mpsc::channel();
    let handle = {
        let token = token.clone();
        thread::spawn(move || worker(rx, &token))
    };
    tx.send(1).unwrap();
    token.trigger_with("stop");
    let outcome = within(LIMIT, move || handle.join().unwrap());
    assert_eq!(outcome.unwrap_err().reason().message(), Some("stop"));
    drop(tx);

    let (tx, rx) = mpsc::channel();
    tx.send(5).unwrap();
    drop(tx);
    assert_eq!(worker(rx, &CancelToken::new()), Ok(5));
}

#[test]
fn a_worker_polling_with_try_recv_and_sleep_blocking_sees_the_trigger_at_once() {
    fn worker(jobs: mpsc::Receiver<u32>, token: &CancelToken) -> Result<u32, Cancelled> {
        let mut sum = 0;
        loop {
            match jobs.try_recv() {
                Ok(job) => {
                    token.raise_if_triggered()?;
                    sum += job;
                }
                Err(TryRecvError::Empty) => token.sleep_blocking(POLL)?,
                Err(TryRecvError::Disconnected) => return Ok(sum),
            }
        }
    }

    // The interval is an hour: only the trigger can end the sleep in time.
    fn slow_worker(jobs: mpsc::Receiver<u32>, token: &CancelToken) -> Result<u32, Cancelled> {
        loop {
            match jobs.try_recv() {
                Err(TryRecvError::Empty) => token.sleep_blocking(Duration::from_secs(3600))?,
                _ => unreachable!("no job is sent"),
            }
        }
    }

    let token = CancelToken::new();
    let (_tx, rx) = mpsc::channel();
    let handle = {
        let token = token.clone();
        thread::spawn(move || slow_worker(rx, &token))
    };
    token.trigger_with("now");
    let outcome = within(LIMIT, move || handle.join().unwrap());
    assert_eq!(outcome.unwrap_err().reason().message(), Some("now"));

    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || worker(rx, &CancelToken::new()));
    tx.send(2).unwrap();
    tx.send(3).unwrap();
    drop(tx);
    assert_eq!(within(LIMIT, move || handle.join().unwrap()), Ok(5));
}
