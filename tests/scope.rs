//! `cancel_token::scope` in the core, with no feature: a future's token fires with
//! `ReasonKind::Dropped` when the future is dropped unfinished (also on a real runtime, when a
//! spawned task is aborted), stays alone when it completes, and follows its parent.

use std::time::Duration;

use cancel_token::{scope, CancelToken, ReasonKind, Scope};

#[test]
fn a_dropped_scope_triggers_its_token_and_a_completed_one_does_not() {
    let parent = CancelToken::named("parent");
    let (tx, rx) = std::sync::mpsc::channel();

    let unfinished: Scope<_> = scope(&parent, |token| {
        tx.send(token).unwrap();
        std::future::pending::<()>()
    });
    let token = rx.recv().unwrap();
    assert!(
        !token.is_triggered(),
        "armed, not fired, while the future lives"
    );
    drop(unfinished);
    let reason = token.reason().unwrap();
    assert_eq!(reason.kind(), ReasonKind::Dropped);
    assert!(reason.to_string().contains("dropped before it finished"));
    assert!(!parent.is_triggered(), "a scope never triggers its parent");

    let tx2 = tx.clone();
    let finished = scope(&parent, move |token| async move {
        tx2.send(token).unwrap();
        7
    });
    assert_eq!(futures_lite::future::block_on(finished), 7);
    let token = rx.recv().unwrap();
    assert!(!token.is_triggered());
    parent.trigger_with("shutdown");
    assert_eq!(token.triggered_token(), Some(parent));
}

#[tokio::test]
async fn an_aborted_task_triggers_the_scope_token() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(scope(&CancelToken::new(), move |token| async move {
        tx.send(token).unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }));
    let token = rx.recv().await.unwrap();
    task.abort();
    let waited = tokio::time::timeout(Duration::from_secs(60), token.wait()).await;
    assert!(waited.is_ok(), "the aborted task's token never fired");
    assert_eq!(token.reason().unwrap().kind(), ReasonKind::Dropped);
}
