//! `Operation::track_stream`: progress every N items and the rest at the end, an end on the
//! operation's token (tie rule included), and the items handed out before a drop.

mod common;

use std::num::NonZeroU64;
use std::task::Poll;

use cancel_token::{CancelToken, Operation, OperationStatus};
use common::{poll_next_once, Dropped, Polls, ProbeStream};
use futures_lite::future::block_on;
use futures_lite::{stream, StreamExt};

#[test]
fn track_stream_reports_every_n_items_and_the_rest_at_the_end() {
    let op = Operation::new("rows", &CancelToken::new());
    let every = NonZeroU64::new(3).unwrap();
    let mut rows = op.track_stream(stream::iter(0..8), every);
    let mut seen = Vec::new();
    for _ in 0..8 {
        assert!(block_on(rows.next()).is_some());
        seen.push(op.progress().done);
    }
    assert_eq!(seen, [0, 0, 3, 3, 3, 6, 6, 6]);
    assert_eq!(block_on(rows.next()), None);
    assert_eq!(op.progress().done, 8);
    drop(rows);
    assert_eq!(op.progress().done, 8, "nothing counted twice");
}

#[test]
fn track_stream_ends_on_a_trigger_and_reports_what_passed() {
    let op = Operation::new("rows", &CancelToken::new());
    let (polls, dropped) = (Polls::new(), Dropped::new());
    let probe = ProbeStream::new(&polls, &dropped, [Some(1), Some(2), None], false);
    let mut rows = op.track_stream(probe, NonZeroU64::new(10).unwrap());
    assert_eq!(poll_next_once(&mut rows), Poll::Ready(Some(1)));
    assert_eq!(poll_next_once(&mut rows), Poll::Ready(Some(2)));
    assert!(poll_next_once(&mut rows).is_pending());
    op.token().trigger();
    assert_eq!(poll_next_once(&mut rows), Poll::Ready(None));
    assert!(
        dropped.get(),
        "the wrapped stream is dropped at the trigger"
    );
    assert_eq!(polls.get(), 3, "not polled after the trigger");
    assert_eq!(op.progress().done, 2);
    assert_eq!(
        op.status(),
        OperationStatus::Running,
        "the adapter does not finish it"
    );
}

#[test]
fn track_stream_dropped_early_reports_the_items_it_handed_out() {
    let op = Operation::new("rows", &CancelToken::new());
    let mut rows = op
        .clone()
        .track_stream_owned(stream::iter(0..100), NonZeroU64::new(50).unwrap());
    for _ in 0..7 {
        block_on(rows.next());
    }
    assert_eq!(op.progress().done, 0);
    drop(rows);
    assert_eq!(op.progress().done, 7);
}
