//! The `tracing` feature under a real `tracing-subscriber` registry, with a layer that records
//! every span and event: the operation's span and its fields, the started, completed, failed
//! and cancelled events (with the reason), progress events throttled to whole percents (or
//! leading digits with no total), child spans under their parent's, and `span()` usable to
//! instrument work.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use cancel_token::{CancelToken, Operation, OperationRegistry, ReasonKind};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Field name -> value as text (strings without quotes).
type Fields = BTreeMap<String, String>;

#[derive(Default)]
struct Fieldset(Fields);

impl Visit for Fieldset {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[derive(Clone, Debug)]
struct SpanRecord {
    name: &'static str,
    target: String,
    fields: Fields,
    /// The fields of the span's parent span, if it has one.
    parent: Option<Fields>,
}

#[derive(Clone, Debug)]
struct EventRecord {
    level: tracing::Level,
    target: String,
    fields: Fields,
    /// The fields of the span the event is in, if any.
    span: Option<Fields>,
}

impl EventRecord {
    fn message(&self) -> &str {
        &self.fields["message"]
    }
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
    events: Arc<Mutex<Vec<EventRecord>>>,
}

impl Capture {
    fn events(&self) -> Vec<EventRecord> {
        self.events.lock().unwrap().clone()
    }
    fn spans(&self) -> Vec<SpanRecord> {
        self.spans.lock().unwrap().clone()
    }
    fn with_message(&self, message: &str) -> Vec<EventRecord> {
        self.events()
            .into_iter()
            .filter(|event| event.message() == message)
            .collect()
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fieldset::default();
        attrs.record(&mut fields);
        let span = ctx.span(id).unwrap();
        let parent = span
            .parent()
            .and_then(|parent| parent.extensions().get::<Fields>().cloned());
        span.extensions_mut().insert(fields.0.clone());
        self.spans.lock().unwrap().push(SpanRecord {
            name: attrs.metadata().name(),
            target: attrs.metadata().target().into(),
            fields: fields.0,
            parent,
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fieldset::default();
        event.record(&mut fields);
        let span = ctx
            .event_span(event)
            .and_then(|span| span.extensions().get::<Fields>().cloned());
        self.events.lock().unwrap().push(EventRecord {
            level: *event.metadata().level(),
            target: event.metadata().target().into(),
            fields: fields.0,
            span,
        });
    }
}

/// Runs `f` with a subscriber (all levels) whose layer records into the returned capture.
fn captured(f: impl FnOnce()) -> Capture {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, f);
    capture
}

#[test]
fn a_span_per_operation_with_its_id_name_and_parent() {
    let (mut parent_id, mut child_id) = (0, 0);
    let capture = captured(|| {
        let registry = OperationRegistry::new();
        let parent = registry.start("batch", &CancelToken::new());
        let child = parent.child("item 1");
        (parent_id, child_id) = (parent.id().as_u64(), child.id().as_u64());
        assert_eq!(parent.span().metadata().unwrap().name(), "operation");
        child.complete();
        parent.complete();
    });
    let spans = capture.spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let (parent, child) = (&spans[0], &spans[1]);
    assert_eq!(parent.name, "operation");
    assert_eq!(parent.target, "cancel_token::operation");
    assert_eq!(parent.fields["id"], parent_id.to_string());
    assert_eq!(parent.fields["name"], "batch");
    assert!(
        !parent.fields.contains_key("parent_id"),
        "a root has no parent_id"
    );
    assert_eq!(parent.parent, None);
    assert_eq!(child.fields["id"], child_id.to_string());
    assert_eq!(child.fields["name"], "item 1");
    assert_eq!(child.fields["parent_id"], parent_id.to_string());
    assert_eq!(
        child.parent.as_ref(),
        Some(&parent.fields),
        "a child operation's span is in its parent's"
    );
}

#[test]
fn started_and_completed_events_are_info_in_the_span() {
    let capture = captured(|| {
        Operation::new("upload", &CancelToken::new()).complete();
    });
    let events = capture.events();
    let messages: Vec<_> = events.iter().map(EventRecord::message).collect();
    assert_eq!(messages, ["operation started", "operation completed"]);
    for event in &events {
        assert_eq!(event.level, tracing::Level::INFO);
        assert_eq!(event.target, "cancel_token::operation");
        assert_eq!(event.span.as_ref().unwrap()["name"], "upload");
    }
    let elapsed: f64 = events[1].field("elapsed_ms").unwrap().parse().unwrap();
    assert!(elapsed >= 0.0);
}

#[test]
fn a_failure_is_a_warning_with_its_error() {
    let capture = captured(|| {
        Operation::new("parse", &CancelToken::new()).fail("unexpected end of input");
    });
    let failed = capture.with_message("operation failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].level, tracing::Level::WARN);
    assert_eq!(failed[0].field("error"), Some("unexpected end of input"));
    assert!(failed[0].field("elapsed_ms").is_some());
    assert!(capture.with_message("operation completed").is_empty());
}

#[test]
fn a_cancellation_carries_its_reason_kind_and_message() {
    let capture = captured(|| {
        let op = Operation::new("export", &CancelToken::new());
        op.token().trigger_with("user clicked stop");
        drop(op); // the work stopped: cancelled with the token's reason

        let timed_out = Operation::new("slow", &CancelToken::new());
        timed_out.abort(ReasonKind::Timeout);
    });
    let cancelled = capture.with_message("operation cancelled");
    assert_eq!(cancelled.len(), 2, "{cancelled:?}");
    assert_eq!(cancelled[0].level, tracing::Level::INFO);
    assert_eq!(cancelled[0].span.as_ref().unwrap()["name"], "export");
    assert_eq!(cancelled[0].field("reason_kind"), Some("manual"));
    assert_eq!(cancelled[0].field("reason"), Some("user clicked stop"));
    assert_eq!(cancelled[1].span.as_ref().unwrap()["name"], "slow");
    assert_eq!(cancelled[1].field("reason_kind"), Some("timeout"));
    assert_eq!(
        cancelled[1].field("reason"),
        None,
        "a reason without a message"
    );
}

#[test]
fn a_million_advances_over_a_total_of_a_million_log_a_hundred_progress_events() {
    let capture = captured(|| {
        let registry = OperationRegistry::new();
        let op = registry.start("copy", &CancelToken::new());
        op.set_total(1_000_000);
        op.set_message("copying");
        for _ in 0..1_000_000 {
            op.advance(1);
        }
        op.complete();
    });
    let progress = capture.with_message("operation progress");
    assert!(progress.len() <= 101, "{} progress events", progress.len());
    assert_eq!(progress.len(), 100, "one per whole percent, 1% to 100%");
    for (i, event) in progress.iter().enumerate() {
        let percent = i as u64 + 1;
        assert_eq!(event.level, tracing::Level::DEBUG);
        assert_eq!(event.field("percent"), Some(&*percent.to_string()));
        assert_eq!(event.field("done"), Some(&*(percent * 10_000).to_string()));
        assert_eq!(event.field("total"), Some("1000000"));
        assert_eq!(event.field("detail"), Some("copying"));
        assert_eq!(event.span.as_ref().unwrap()["name"], "copy");
    }
}

#[test]
fn batches_and_threads_log_each_percent_once() {
    let capture = captured(|| {
        let op = Operation::new("hash", &CancelToken::new());
        op.set_total(1000);
        op.advance(5); // 0% -> 0%: nothing
        op.advance(300); // 0% -> 30%: one event
        op.set_done(999); // -> 99%
        op.set_done(999); // no change
        op.advance(1); // -> 100%
        op.advance(1); // over the total: still 100%
        op.complete();
    });
    let percents: Vec<_> = capture
        .with_message("operation progress")
        .iter()
        .map(|event| event.field("percent").unwrap().to_string())
        .collect();
    assert_eq!(percents, ["30", "99", "100"]);

    let capture = Capture::default();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(capture.clone()));
    let op = tracing::dispatcher::with_default(&dispatch, || {
        Operation::new("parallel", &CancelToken::new())
    });
    op.set_total(40_000);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    for _ in 0..10_000 {
                        op.advance(1);
                    }
                })
            });
        }
    });
    let mut percents: Vec<u64> = capture
        .with_message("operation progress")
        .iter()
        .map(|event| event.field("percent").unwrap().parse().unwrap())
        .collect();
    percents.sort_unstable();
    assert_eq!(percents, (1..=100).collect::<Vec<_>>(), "each percent once");
}

#[test]
fn with_no_total_progress_is_logged_at_each_new_leading_digit() {
    let capture = captured(|| {
        let op = Operation::new("scan", &CancelToken::new());
        for _ in 0..250 {
            op.advance(1);
        }
        op.complete();
    });
    let done: Vec<_> = capture
        .with_message("operation progress")
        .iter()
        .map(|event| {
            assert_eq!(event.field("total"), None);
            assert_eq!(event.field("percent"), None);
            assert_eq!(event.field("detail"), None);
            event.field("done").unwrap().parse::<u64>().unwrap()
        })
        .collect();
    let expected: Vec<u64> = (1..10)
        .chain((1..10).map(|d| d * 10))
        .chain([100, 200])
        .collect();
    assert_eq!(done, expected);
}

#[test]
fn a_subscriber_that_does_not_want_debug_gets_no_progress() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(
        capture
            .clone()
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
    );
    tracing::subscriber::with_default(subscriber, || {
        let op = Operation::new("quiet", &CancelToken::new());
        op.set_total(10);
        op.advance(10);
        op.complete();
    });
    let messages: Vec<_> = capture
        .events()
        .iter()
        .map(|event| event.message().to_string())
        .collect();
    assert_eq!(messages, ["operation started", "operation completed"]);
}

#[test]
fn work_instrumented_with_the_span_logs_inside_it() {
    let capture = captured(|| {
        use tracing::Instrument;
        let op = Operation::new("index", &CancelToken::new());
        let work = async { tracing::info!(files = 3, "indexed") };
        futures_lite::future::block_on(work.instrument(op.span().clone()));
        op.complete();
    });
    let indexed = capture.with_message("indexed");
    assert_eq!(indexed.len(), 1);
    assert_eq!(indexed[0].span.as_ref().unwrap()["name"], "index");
    assert_eq!(indexed[0].field("files"), Some("3"));
}

#[test]
fn with_no_subscriber_nothing_breaks() {
    // (The span may or may not be disabled: other tests' subscribers, on other threads, set
    // tracing's global level filter.)
    let op = Operation::new("unobserved", &CancelToken::new());
    op.set_total(100);
    op.advance(100);
    assert!(op.complete());
}
