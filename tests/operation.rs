//! Operations: status transitions (first finish wins, a drop unfinished cancels, a trigger
//! leaves the status running until the work stops), progress, child operations, the
//! registry's lists, lookups, cancelling, counts and history, and ids. The stream adapter is
//! in `operation_stream.rs`.

mod common;

use std::num::NonZeroU64;
use std::task::Poll;

use cancel_token::{
    CancelToken, Filter, Operation, OperationId, OperationRegistry, OperationStatus, ReasonKind,
    StatusKind,
};
use common::{poll_once, Dropped, Polls, Probe};
use futures_lite::future::block_on;
use futures_lite::stream;

const DROPPED: &str = "the operation was dropped before it finished";

fn cancelled_with(kind: ReasonKind, message: &str) -> impl Fn(&OperationStatus) -> bool + '_ {
    move |status| {
        matches!(status, OperationStatus::Cancelled(reason)
            if reason.kind() == kind && reason.message() == Some(message))
    }
}

#[test]
fn the_first_finish_wins_and_a_status_never_goes_back() {
    let registry = OperationRegistry::new();
    let op = registry.start("job", &CancelToken::new());
    assert_eq!(op.status(), OperationStatus::Running);
    assert!(op.complete());
    assert!(!op.complete());
    assert!(!op.fail("late"));
    assert!(!op.abort("late"));
    assert!(
        !op.token().is_triggered(),
        "a losing abort does not trigger"
    );
    assert_eq!(op.status(), OperationStatus::Completed);
    drop(op);
    let counts = registry.counts();
    assert_eq!(
        (counts.completed, counts.failed, counts.cancelled),
        (1, 0, 0)
    );
    assert_eq!(registry.history().len(), 1);
}

#[test]
fn the_last_handle_dropped_unfinished_cancels_with_a_dropped_reason() {
    let registry = OperationRegistry::new();
    let op = registry.start("job", &CancelToken::new());
    let token = op.token().clone();
    let clone = op.clone();
    drop(op);
    assert_eq!(registry.len(), 1, "a clone still holds it");
    assert!(!token.is_triggered());
    drop(clone);
    assert_eq!(registry.len(), 0);
    let reason = token.reason().expect("dropping triggers the token");
    assert_eq!(reason.kind(), ReasonKind::Dropped);
    assert_eq!(reason.message(), Some(DROPPED));
    let last = registry.history().pop().unwrap();
    assert_eq!(last.status, StatusKind::Cancelled);
    assert_eq!(last.reason_kind, Some(ReasonKind::Dropped));
    assert_eq!(last.message.as_deref(), Some(DROPPED));
    assert!(cancelled_with(ReasonKind::Dropped, DROPPED)(&last.status()));
}

#[test]
fn a_dropped_operation_whose_token_fired_keeps_the_tokens_reason() {
    let parent = CancelToken::new();
    let registry = OperationRegistry::new();
    let op = registry.start("job", &parent);
    parent.trigger_with(cancel_token::Reason::with_message(
        ReasonKind::Timeout,
        "too slow",
    ));
    drop(op);
    let last = registry.history().pop().unwrap();
    assert_eq!(last.reason_kind, Some(ReasonKind::Timeout));
    assert_eq!(last.message.as_deref(), Some("too slow"));
}

#[test]
fn a_trigger_during_run_leaves_it_running_until_the_work_stops() {
    let op = Operation::new("job", &CancelToken::new());
    let (polls, dropped) = (Polls::new(), Dropped::new());
    let mut run = Box::pin(op.run(Probe::pending(&polls, &dropped)));
    assert!(poll_once(&mut run).is_pending());
    op.token().trigger_with("stop now");
    assert_eq!(
        op.status(),
        OperationStatus::Running,
        "the work has not seen it"
    );
    let Poll::Ready(Err(cancelled)) = poll_once(&mut run) else {
        panic!("the run ends on the trigger");
    };
    assert_eq!(cancelled.reason().message(), Some("stop now"));
    assert!(dropped.get());
    assert_eq!(polls.get(), 1, "cancellation wins the tie");
    assert!(cancelled_with(ReasonKind::Manual, "stop now")(&op.status()));
}

#[test]
fn a_pre_triggered_run_never_polls_and_cancels() {
    let op = Operation::new("job", &CancelToken::new());
    op.token().trigger_with("before");
    let (polls, dropped) = (Polls::new(), Dropped::new());
    let out = block_on(op.run(Probe::new(&polls, &dropped, 1, 5)));
    assert!(out.is_err());
    assert_eq!(polls.get(), 0);
    assert_eq!(op.status().kind(), StatusKind::Cancelled);
}

#[test]
fn try_run_fails_on_an_error_and_completes_on_ok() {
    let op = Operation::new("job", &CancelToken::new());
    let out = block_on(op.try_run(async { Err::<(), _>("no route to host") }));
    assert_eq!(out, Ok(Err("no route to host")));
    assert_eq!(
        op.status(),
        OperationStatus::Failed("no route to host".into())
    );

    let op = Operation::new("job", &CancelToken::new());
    assert_eq!(
        block_on(op.try_run(async { Ok::<_, String>(3) })),
        Ok(Ok(3))
    );
    assert_eq!(op.status(), OperationStatus::Completed);
}

#[test]
fn a_finish_inside_the_work_wins_over_the_runs_outcome() {
    let op = Operation::new("job", &CancelToken::new());
    let out = block_on(op.run(async {
        op.fail("decided inside");
        1
    }));
    assert_eq!(out, Ok(1));
    assert_eq!(
        op.status(),
        OperationStatus::Failed("decided inside".into())
    );
}

#[test]
fn run_owned_holding_the_last_handle_cancels_when_dropped() {
    let registry = OperationRegistry::new();
    let op = registry.start("job", &CancelToken::new());
    let id = op.id();
    let task = common::assert_send_static(op.run_owned(std::future::pending::<()>()));
    assert_eq!(registry.len(), 1);
    drop(task);
    let snapshot = registry.snapshot(id).unwrap();
    assert_eq!(snapshot.status, StatusKind::Cancelled);
    assert_eq!(snapshot.reason_kind, Some(ReasonKind::Dropped));
}

#[test]
fn progress_counts_sets_and_reports_a_fraction_and_a_message() {
    let op = Operation::new("job", &CancelToken::new());
    let p = op.progress();
    assert_eq!((p.done, p.total, p.fraction()), (0, None, None));
    assert_eq!(p.message, None);
    op.advance(3);
    op.advance(4);
    assert_eq!(op.progress().done, 7);
    op.set_done(2);
    op.set_total(8);
    assert_eq!(op.progress().fraction(), Some(0.25));
    op.set_done(80);
    assert_eq!(op.progress().fraction(), Some(1.0), "capped");
    op.set_total(0);
    assert_eq!(op.progress().fraction(), Some(1.0), "nothing to do is done");
    op.set_total(u64::MAX);
    assert_eq!(op.progress().total, None, "u64::MAX reads as unknown");
    op.set_message("step 1");
    op.set_message(String::from("step 2"));
    assert_eq!(op.progress().message.as_deref(), Some("step 2"));
    op.clear_message();
    assert_eq!(op.progress().message, None);
    op.set_done(u64::MAX);
    op.advance(2);
    assert_eq!(op.progress().done, 1, "wraps, never panics");
}

#[test]
fn progress_is_shared_by_clones_and_kept_after_the_finish() {
    let registry = OperationRegistry::new();
    let op = registry.start("job", &CancelToken::new());
    op.clone().advance(5);
    op.complete();
    op.advance(1);
    assert_eq!(
        op.progress().done,
        6,
        "a finished operation still counts, harmlessly"
    );
    assert_eq!(
        registry.snapshot(op.id()).unwrap().progress.done,
        5,
        "frozen at the finish"
    );
}

#[test]
fn child_operations_have_a_parent_a_child_token_and_the_same_registry() {
    let registry = OperationRegistry::new();
    let parent = registry.start("parent", &CancelToken::new());
    let child = parent.child("child");
    assert_eq!(child.parent(), Some(parent.id()));
    assert_eq!(registry.len(), 2);
    assert_eq!(registry.get(child.id()).unwrap(), child);
    parent.token().trigger();
    assert!(child.token().is_triggered());
    assert_eq!(
        child.token().triggered_token().as_ref(),
        Some(parent.token())
    );

    let standalone = Operation::new("alone", &CancelToken::new());
    let sub = standalone.child("sub");
    assert_eq!(sub.parent(), Some(standalone.id()));
    assert_eq!(
        registry.len(),
        2,
        "a standalone operation's children stay standalone"
    );
}

#[test]
fn cancel_tree_reaches_descendants_at_any_depth_and_nothing_else() {
    let registry = OperationRegistry::new();
    let root_token = CancelToken::new();
    let grandparent = registry.start("grandparent", &root_token);
    let parent = grandparent.child("parent");
    let sibling = grandparent.child("sibling");
    let child = parent.child("child");
    let grandchild = child.child_under("grandchild", &CancelToken::new());
    let great = grandchild.child("great-grandchild");
    let other = registry.start("other", &root_token);

    assert_eq!(registry.cancel_tree(parent.id(), "subtree"), 4);
    for op in [&parent, &child, &grandchild, &great] {
        assert_eq!(
            op.token().reason().unwrap().message(),
            Some("subtree"),
            "{op:?}"
        );
    }
    for op in [&grandparent, &sibling, &other] {
        assert!(!op.token().is_triggered(), "{op:?}");
    }
    assert_eq!(registry.cancel_tree(parent.id(), "again"), 0);
    assert_eq!(
        registry.cancel_tree(OperationId::from_u64(u64::MAX), "nobody"),
        0
    );
}

#[test]
fn cancel_tree_reaches_a_grandchild_whose_parent_finished() {
    let registry = OperationRegistry::new();
    let top = registry.start("top", &CancelToken::new());
    let middle = top.child_under("middle", &CancelToken::new());
    let bottom = middle.child_under("bottom", &CancelToken::new());
    let deeper = bottom.child_under("deeper", &CancelToken::new());
    middle.complete();
    bottom.complete();
    assert_eq!(registry.len(), 2);
    assert_eq!(registry.cancel_tree(top.id(), "all of it"), 2);
    assert!(deeper.token().is_triggered());
}

#[test]
fn list_filters_by_status_name_and_parent_sorted_by_id() {
    let registry = OperationRegistry::new();
    let token = CancelToken::new();
    let a = registry.start("fetch", &token);
    let b = registry.start("parse", &token);
    let c = a.child("fetch");
    registry.start("fetch", &token).fail("404");
    registry.start("parse", &token).complete();

    let ids = |filter: &Filter| -> Vec<OperationId> {
        registry.list(filter).into_iter().map(|s| s.id).collect()
    };
    assert_eq!(ids(&Filter::new()), [a.id(), b.id(), c.id()]);
    assert_eq!(ids(&Filter::new().name("fetch")), [a.id(), c.id()]);
    assert_eq!(ids(&Filter::new().parent(a.id())), [c.id()]);
    assert_eq!(
        ids(&Filter::new().status(StatusKind::Running).name("parse")),
        [b.id()]
    );
    assert_eq!(
        registry
            .list(&Filter::new().status(StatusKind::Failed))
            .len(),
        1
    );
    let done = registry.list(&Filter::new().status(StatusKind::Completed).name("parse"));
    assert_eq!(done.len(), 1);
    assert!(done[0].finished_at.is_some());
    assert!(registry
        .list(&Filter::new().status(StatusKind::Cancelled))
        .is_empty());
}

#[test]
fn snapshots_describe_live_and_finished_operations() {
    let registry = OperationRegistry::new();
    let op = registry.start("job", &CancelToken::new());
    op.set_total(10);
    op.advance(4);
    op.set_message("half way");
    let live = registry.snapshot(op.id()).unwrap();
    assert_eq!(live.name, "job");
    assert_eq!(live.status, StatusKind::Running);
    assert_eq!(live.progress.fraction(), Some(0.4));
    assert_eq!(live.finished_at, None);
    assert!(live.started_at <= std::time::SystemTime::now());

    op.abort(cancel_token::Reason::new(ReasonKind::Superseded));
    let done = registry.snapshot(op.id()).unwrap();
    assert_eq!(done.status, StatusKind::Cancelled);
    assert_eq!(
        (done.reason_kind, done.message.as_deref()),
        (Some(ReasonKind::Superseded), None)
    );
    assert!(done.finished_at.unwrap() >= done.started_at);
    assert_eq!(
        done.elapsed,
        registry.snapshot(op.id()).unwrap().elapsed,
        "frozen at the finish"
    );
    assert!(registry.get(op.id()).is_none());
    let debug = format!("{done:?}");
    assert!(
        debug.contains("Cancelled") && debug.contains("job"),
        "{debug}"
    );
}

#[test]
fn cancel_and_cancel_all_trigger_live_tokens_and_count_fresh_ones() {
    let registry = OperationRegistry::new();
    let a = registry.start("a", &CancelToken::new());
    let b = registry.start("b", &CancelToken::new());
    let c = registry.start("c", &CancelToken::new());
    assert!(registry.cancel(a.id(), "one"));
    assert!(!registry.cancel(a.id(), "twice"));
    assert_eq!(a.status(), OperationStatus::Running);
    c.complete();
    assert!(!registry.cancel(c.id(), "finished"));
    assert!(!c.token().is_triggered());
    assert_eq!(
        registry.cancel_all("all"),
        1,
        "only b was not triggered yet"
    );
    assert_eq!(b.token().reason().unwrap().message(), Some("all"));
    assert_eq!(a.token().reason().unwrap().message(), Some("one"));
}

#[test]
fn counts_are_totals_while_the_history_keeps_its_bound() {
    let registry = OperationRegistry::with_history(3);
    let _running = registry.start("running", &CancelToken::new());
    for i in 0..10 {
        let op = registry.start(format!("job {i}"), &CancelToken::new());
        match i % 3 {
            0 => {
                op.complete();
            }
            1 => {
                op.fail("x");
            }
            _ => drop(op),
        }
    }
    let counts = registry.counts();
    assert_eq!(
        (
            counts.running,
            counts.completed,
            counts.failed,
            counts.cancelled
        ),
        (1, 4, 3, 3)
    );
    let names: Vec<_> = registry.history().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["job 7", "job 8", "job 9"], "newest last");
    assert!(registry.snapshot(registry.history()[0].id).is_some());

    let none = OperationRegistry::with_history(0);
    none.start("x", &CancelToken::new()).complete();
    assert!(none.history().is_empty());
    assert_eq!(none.counts().completed, 1);
}

#[test]
fn dropping_the_registry_while_operations_run_is_fine() {
    let registry = OperationRegistry::new();
    let op = registry.start("job", &CancelToken::new());
    let child = op.child("child");
    drop(registry);
    op.advance(1);
    assert!(op.complete());
    assert_eq!(child.parent(), Some(op.id()));
    drop(child);
}

#[test]
fn a_finished_operation_is_never_handed_out_again() {
    let registry = OperationRegistry::new();
    let op = registry.start("job", &CancelToken::new());
    let id = op.id();
    assert!(registry.get(id).is_some());
    drop(op);
    assert!(registry.get(id).is_none());
}

#[test]
fn ids_are_unique_ordered_and_parse_back_with_typed_errors() {
    let a = Operation::new("a", &CancelToken::new());
    let b = OperationRegistry::new().start("b", &CancelToken::new());
    assert!(a.id() < b.id());
    assert_eq!(a.id().to_string().parse::<OperationId>(), Ok(a.id()));
    assert_eq!(u64::from(b.id()), b.id().as_u64());
    for bad in ["", "+1", "-1", " 1", "1 ", "0x10", "1.0"] {
        let err = bad.parse::<OperationId>().unwrap_err();
        assert!(!err.is_overflow(), "{bad:?}");
    }
    let err = "18446744073709551616".parse::<OperationId>().unwrap_err();
    assert!(err.is_overflow());
    assert_eq!(err.to_string(), "invalid operation id: number too large");
    assert_eq!(
        "18446744073709551615"
            .parse::<OperationId>()
            .unwrap()
            .as_u64(),
        u64::MAX
    );
}

#[test]
fn the_public_types_keep_their_auto_traits() {
    fn send_sync_unpin<T: Send + Sync + Unpin + std::panic::UnwindSafe + 'static>() {}
    send_sync_unpin::<Operation>();
    send_sync_unpin::<OperationRegistry>();
    send_sync_unpin::<cancel_token::OperationSnapshot>();
    fn send_sync_unpin_only<T: Send + Sync + Unpin + 'static>() {}
    send_sync_unpin_only::<cancel_token::Subscription>();
    let op = Operation::new("job", &CancelToken::new());
    drop(common::assert_send_static(op.clone().run_owned(async {})));
    drop(common::assert_send_static(
        op.track_stream_owned(stream::iter([1]), NonZeroU64::MIN),
    ));
}

#[test]
fn debug_shows_what_a_user_cares_about() {
    let registry = OperationRegistry::new();
    let op = registry.start("export", &CancelToken::new());
    op.set_total(4);
    op.advance(1);
    let debug = format!("{op:?}");
    assert!(
        debug.contains("export") && debug.contains("Running") && debug.contains("done: 1"),
        "{debug}"
    );
    let debug = format!("{registry:?}");
    assert!(debug.contains("running: 1"), "{debug}");
    assert_eq!(op.status().to_string(), "running");
    assert_eq!(op.progress().to_string(), "1/4 (25%)");
}

#[test]
fn a_cancel_by_id_stops_a_spawned_run_which_then_records_the_reason() {
    common::within(common::LIMIT, || {
        let runtime = common::multi_thread_runtime();
        let registry = OperationRegistry::new();
        let op = registry.start("download", &CancelToken::new());
        let id = op.id();
        let task = runtime.spawn(op.run_owned(std::future::pending::<()>()));
        assert_eq!(registry.snapshot(id).unwrap().status, StatusKind::Running);
        assert!(registry.cancel(id, "cancelled from the dashboard"));
        let outcome = runtime.block_on(task).unwrap();
        assert_eq!(
            outcome.unwrap_err().reason().message(),
            Some("cancelled from the dashboard")
        );
        let snapshot = registry.snapshot(id).unwrap();
        assert_eq!(snapshot.status, StatusKind::Cancelled);
        assert_eq!(
            snapshot.message.as_deref(),
            Some("cancelled from the dashboard")
        );
        assert!(registry.is_empty());
    });
}

#[test]
fn a_panicking_callback_of_a_dropped_operation_still_finishes_it() {
    let registry = OperationRegistry::new();
    let op = registry.start("job", &CancelToken::new());
    op.token().on_cancel(|_| panic!("callback")).detach();
    let id = op.id();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(op)));
    assert!(
        caught.is_err(),
        "the callback's panic propagates from the drop"
    );
    assert!(registry.is_empty(), "finished before the panic was resumed");
    assert_eq!(
        registry.snapshot(id).unwrap().reason_kind,
        Some(ReasonKind::Dropped)
    );
}
