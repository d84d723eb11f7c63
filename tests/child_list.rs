//! The child list of a token under removals that move entries: every live child stays
//! linked, whatever order children are dropped in, from one thread or several. (Found by an
//! adversarial review of the dense child list; `src/link.rs` explains the list.)

use cancel_token::CancelToken;

/// A removal moves the list's last entry into its hole. When holes (left by a child dropped
/// while the last entry's child was itself being dropped) lie between the two, the entry must
/// still land in the hole: an earlier version popped the vacant tail first, lost the entry
/// with its key already rewritten, and the child was never triggered.
#[test]
fn a_moved_child_is_lost_when_holes_lie_above_the_removed_key() {
    let parent = CancelToken::new();
    let f = parent.child(); // key 0 (inline)
    let a = parent.child(); // key 1
    let b = parent.child(); // key 2
    let c = parent.child(); // key 3
                            // x is owned only by d; d = any([parent, x]) unlinks from x first (its last link), and
                            // tearing x down drops x's detached callback, whose capture is b's only handle. So b is
                            // removed while d's strong count is 0 and d's entry (the last) is still in the list.
    let x = CancelToken::new();
    x.on_cancel(move |_| drop(b)).detach();
    let d = CancelToken::any([&parent, &x]); // key 4
    drop(x);
    drop(d); // b removed (hole at 2, d dying), then d removes itself: [a, None, c]
    drop(a); // key 1: c is moved... into a slot that the vacant-tail pop just removed
    parent.trigger();
    assert!(f.is_triggered());
    assert!(
        c.is_triggered(),
        "c was dropped from its parent's child list"
    );
}

/// The same loss, seen from the stale key: the lost child's key aliased the next child
/// inserted there, and dropping the lost child unlinked that one.
#[test]
fn the_stale_key_unlinks_another_child() {
    let parent = CancelToken::new();
    let _f = parent.child();
    let a = parent.child();
    let b = parent.child();
    let c = parent.child();
    let x = CancelToken::new();
    x.on_cancel(move |_| drop(b)).detach();
    let d = CancelToken::any([&parent, &x]);
    drop(x);
    drop(d);
    drop(a);
    let e = parent.child(); // gets key 1, which c also holds now
    drop(c); // removes e's entry
    parent.trigger();
    assert!(e.is_triggered(), "e was unlinked by c's stale key");
}

/// The same loss with nothing but plain children created and dropped on two threads: under
/// contention a dying last child waits for the parent's lock, so removals leave holes, and a
/// later removal below them loses the moved child.
#[test]
fn plain_children_dropped_from_two_threads_are_never_lost() {
    for round in 0..200 {
        let parent = CancelToken::new();
        let kept: Vec<Vec<CancelToken>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..2u64)
                .map(|t| {
                    let parent = &parent;
                    s.spawn(move || {
                        let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ (t + 1) ^ (round << 8);
                        let mut next = || {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            rng
                        };
                        let mut live: Vec<CancelToken> = Vec::new();
                        for _ in 0..2_000 {
                            if live.len() < 8 || next() % 2 == 0 {
                                live.push(parent.child());
                            } else {
                                let i = (next() % live.len() as u64) as usize;
                                live.swap_remove(i);
                            }
                        }
                        live
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        parent.trigger();
        let lost = kept.iter().flatten().filter(|c| !c.is_triggered()).count();
        assert_eq!(lost, 0, "round {round}: {lost} live children not triggered");
    }
}
