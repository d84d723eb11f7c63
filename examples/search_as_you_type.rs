//! Search as you type: every keystroke starts a new search and supersedes the previous one.
//!
//! A `CancelSlot` holds the token of the search in flight. `replace()` cancels it with
//! `ReasonKind::Superseded` and hands out a guard with a fresh token for the new query, so only
//! the search for the final text runs to completion, and a slow, stale result can never
//! overwrite a newer one. Each task holds its guard until it ends, which finishes the search:
//! the slot never keeps the token of a search that is over.
//!
//! Run it with `cargo run --example search_as_you_type`.

use std::time::{Duration, Instant};

use cancel_token::{CancelSlot, CancelToken};

/// A pretend search backend: slower for shorter (broader) queries.
async fn search(query: String) -> Vec<String> {
    let cost = Duration::from_millis(200 / query.len() as u64 + 60);
    smol::Timer::after(cost).await;
    ["rust", "rustacean", "rustdoc", "trust", "crust"]
        .iter()
        .filter(|word| word.contains(query.as_str()))
        .map(|word| word.to_string())
        .collect()
}

fn main() {
    let shutdown = CancelToken::named("shutdown");
    let searches = CancelSlot::with_parent(&shutdown);
    let started = Instant::now();

    smol::block_on(async {
        let mut tasks = Vec::new();
        // The user types "rust", one key every 40 ms.
        for end in 1..="rust".len() {
            let query = "rust"[..end].to_string();
            let current = searches.replace();
            println!("{:>4} ms typed {query:?}", started.elapsed().as_millis());
            tasks.push(smol::spawn(async move {
                // `current` lives until the task ends, and dropping it finishes the search.
                let outcome = current.token().run(search(query.clone())).await;
                let at = started.elapsed().as_millis();
                match outcome {
                    Ok(results) => println!(
                        "{at:>4} ms {query:?}: {} results {results:?}",
                        results.len()
                    ),
                    Err(cancelled) => {
                        println!("{at:>4} ms {query:?}: dropped ({})", cancelled.reason())
                    }
                }
            }));
            smol::Timer::after(Duration::from_millis(40)).await;
        }
        for task in tasks {
            task.await;
        }
    });

    // Every search is over: the superseded ones were cancelled, the last one finished.
    assert!(searches.current().is_none());

    // A search still running at shutdown is cancelled through the slot's parent.
    let last = searches.replace();
    shutdown.trigger_with("window closed");
    assert!(last.token().is_triggered());
}
