//! The `tokio-util` feature: bridges between a [`CancelToken`] and tokio-util's
//! [`CancellationToken`], in either direction, with no runtime, so that code can move from one
//! to the other a module at a time.
//!
//! Ownership runs one way, from this crate's side to tokio-util's, so no bridge can form a
//! cycle and nothing outlives the token that needs it:
//!
//! - **tokio-util → ours** ([`CancelToken::from_tokio_util`], the incoming half of
//!   [`CancelToken::link_tokio_util`]). Our token keeps, as one of its callbacks, a
//!   `cancelled_owned()` future of theirs, polled once, right away, with a waker (a [`Relay`])
//!   whose wake triggers our token. That future *is* the registration (tokio's intrusive
//!   waiter-list entry): the callback drops it when our token triggers, and the node drops it
//!   when our token is dropped. The relay knows our token only through a `WeakCancelToken`.
//!   No executor is involved: tokio-util's `cancel()` wakes the relay on its own thread, after
//!   releasing its locks.
//! - **ours → tokio-util** ([`CancelToken::to_tokio_util`]). tokio-util cannot tell anyone when
//!   a token of its is dropped, so a callback per returned token would stay registered until
//!   our token triggers. Instead our token keeps one hidden tokio-util token, the mirror, in
//!   its cold state, with one callback that cancels it, and every call returns a new child of
//!   the mirror, which tokio-util unlinks when its last handle is dropped. The mirror of a
//!   `child()` is a tokio-util child of its parent's mirror: when our child is dropped,
//!   tokio-util hands the tokens made from its mirror to the parent's, as it does with its own
//!   children, so they keep following the parent though nothing of ours can reach them.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::callback::{self, CallbackGuard};
use crate::node::Node;
use crate::reason::{Reason, ReasonKind};
use crate::walk::drop_payload;
use crate::{CancelToken, WeakCancelToken};

/// The message a token gets when the tokio-util token it is bridged from fires: tokio-util's
/// tokens carry no reason.
const MESSAGE: &str = "tokio-util token cancelled";

fn reason() -> Reason {
    Reason::with_message(ReasonKind::Manual, MESSAGE)
}

/// A registration on a tokio-util token: its `cancelled_owned()` future, already polled with a
/// [`Relay`]. Dropping it removes the relay from the tokio-util token's waiter list.
type Watch = Pin<Box<WaitForCancellationFutureOwned>>;

/// The waker a tokio-util token holds for one of our tokens: its wake triggers that token.
struct Relay {
    /// Weak: the token owns the future that owns this waker.
    target: WeakCancelToken,
    /// To tell a real cancellation from a spurious wake.
    source: CancellationToken,
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    /// Runs inside tokio-util's `cancel()`, with none of its locks held. A panicking callback
    /// of ours must not cut that call short (its other waiters would never be woken), so the
    /// panic is dropped here, as the timer threads drop theirs; the panic hook has reported it.
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.source.is_cancelled() {
            return;
        }
        if let Some(target) = self.target.upgrade() {
            let triggered = panic::catch_unwind(AssertUnwindSafe(|| target.trigger_with(reason())));
            if let Err(payload) = triggered {
                drop_payload(payload);
            }
        }
    }
}

impl Relay {
    fn new(target: WeakCancelToken, source: CancellationToken) -> Relay {
        #[cfg(test)]
        tests::RELAYS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Relay { target, source }
    }
}

#[cfg(test)]
impl Drop for Relay {
    fn drop(&mut self) {
        tests::RELAYS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Registers `target` to be triggered when `source` is cancelled. `None` if `source` already
/// is: then `target` has been triggered here, and there is nothing to keep.
fn watch(source: &CancellationToken, target: &CancelToken) -> Option<Watch> {
    let relay = Relay::new(target.downgrade(), source.clone());
    let waker = Waker::from(Arc::new(relay));
    let mut watch = Box::pin(source.clone().cancelled_owned());
    match watch.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Pending => Some(watch),
        Poll::Ready(()) => {
            target.trigger_with(reason());
            None
        }
    }
}

/// The mirror of `token`: a tokio-util token cancelled when `token` is triggered, made and
/// registered by the first call. The mirror of a `child()` is a tokio-util child of its
/// parent's mirror, so that, when the child is dropped, tokio-util moves the tokens made from
/// its mirror under the parent's, as it does with its own children: they keep following the
/// parent's triggers. The ancestors without a mirror yet get one, from the top down, in a loop
/// (a chain can be a million deep).
fn mirror(token: &CancelToken) -> CancellationToken {
    let mut unmirrored = Vec::new();
    let mut node = Arc::clone(token.node());
    let mut above = loop {
        if let Some(mirror) = node.links().mirror.clone() {
            break Some(mirror);
        }
        if node.is_triggered() {
            break Some(cancelled());
        }
        let parent = node.parent.as_ref().map(|link| Arc::clone(&link.node));
        unmirrored.push(node);
        match parent {
            Some(parent) => node = parent,
            // A root, or a token with several sources (`chain`, `any`, `all`): tokio-util's
            // tokens have one parent at most.
            None => break None,
        }
    };
    while let Some(node) = unmirrored.pop() {
        let mirror = match &above {
            Some(above) => above.child_token(),
            None => CancellationToken::new(),
        };
        above = Some(install(&node, mirror));
    }
    above.unwrap_or_else(cancelled)
}

/// Makes `mirror` the mirror of `node`, with the callback that cancels it, unless another
/// thread installed one first (which is returned instead) or `node` is triggered (then
/// `mirror` is returned cancelled, and nothing is kept).
fn install(node: &Node, mirror: CancellationToken) -> CancellationToken {
    // Made before the lock is taken, and dropped after it is released if unused.
    let cancel = mirror.clone();
    let callback = callback::entry(move |_: &Reason| cancel.cancel());
    let mut links = node.links();
    if let Some(existing) = links.mirror.clone() {
        drop(links);
        return existing;
    }
    if node.is_triggered() {
        drop(links);
        mirror.cancel();
        return mirror;
    }
    links.callbacks.insert(callback);
    links.mirror = Some(mirror.clone());
    drop(links);
    mirror
}

fn cancelled() -> CancellationToken {
    let token = CancellationToken::new();
    token.cancel();
    token
}

#[cfg_attr(docsrs, doc(cfg(feature = "tokio-util")))]
impl CancelToken {
    /// A new token triggered when `source`, a tokio-util `CancellationToken`, is cancelled;
    /// born triggered if it already is.
    ///
    /// The reason is [`ReasonKind::Manual`] with the message `"tokio-util token cancelled"`
    /// (tokio-util's tokens carry no reason). It is one way, like [`child`](Self::child):
    /// triggering the new token leaves `source` alone. Use it where code that speaks
    /// tokio-util calls code that takes a [`CancelToken`]; for both ways, see
    /// [`link_tokio_util`](Self::link_tokio_util).
    ///
    /// No runtime is involved: `source.cancel()` triggers the new token on its own thread
    /// before it returns, so the new token's waiters are woken and its callbacks have run by
    /// then.
    ///
    /// # Ownership
    ///
    /// The new token keeps one registration on `source` (an entry in its waiter list, and a
    /// handle, which keeps `source` linked to its own parents), and `source` keeps nothing of
    /// the new token. Dropping the new token's last handle removes the registration, and so does
    /// a trigger of the new token, so any number of short-lived tokens made from one long-lived
    /// tokio-util token leave its memory flat.
    ///
    /// # Panics
    ///
    /// Never. A callback of the new token that panics when `source` is cancelled does not
    /// reach tokio-util's `cancel()`, which must still wake its other waiters: the panic is
    /// dropped, after the panic hook has reported it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, ReasonKind};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let shutdown = CancellationToken::new(); // from code that still uses tokio-util
    /// let token = CancelToken::from_tokio_util(&shutdown);
    ///
    /// let worker = {
    ///     let token = token.clone();
    ///     std::thread::spawn(move || token.wait_blocking()) // no runtime anywhere
    /// };
    /// shutdown.cancel();
    /// worker.join().unwrap();
    /// let reason = token.reason().unwrap();
    /// assert_eq!(reason.kind(), ReasonKind::Manual);
    /// assert_eq!(reason.message(), Some("tokio-util token cancelled"));
    /// ```
    pub fn from_tokio_util(source: &CancellationToken) -> CancelToken {
        let token = CancelToken::new();
        if let Some(watch) = watch(source, &token) {
            // Kept as long as the token, released at once when it triggers.
            token.on_cancel(move |_| drop(watch)).detach();
        }
        token
    }

    /// A new tokio-util `CancellationToken` cancelled when this token is triggered; born
    /// cancelled if it already is.
    ///
    /// It is one way, like tokio-util's `child_token`: cancelling the returned token triggers
    /// neither this token nor any other token this returned. Use it to hand a token to a
    /// library built on tokio-util. The returned token carries no reason (tokio-util has
    /// none): keep a handle of this token to read it.
    ///
    /// # Ownership
    ///
    /// The first call makes a hidden tokio-util token, the mirror, that this token keeps for
    /// its life with one callback that cancels it; every call returns a new child of the
    /// mirror, which tokio-util unlinks when its last handle is dropped. So calling this for
    /// every request on a long-lived token adds one registration to it in all, and memory
    /// stays flat on both sides. The returned token keeps nothing of this one.
    ///
    /// The mirror of a [`child`](Self::child) is a tokio-util child of its parent's mirror
    /// (made as needed, up to the root), so, as with tokio-util's own child tokens, the
    /// returned token still follows the parent's triggers after this token's last handle is
    /// gone. Anything else reaches the returned token only while this token is alive: its own
    /// [`trigger`](Self::trigger), deadline or condition, and the sources of a
    /// [`chain`](Self::chain), [`any`](Self::any) or [`all`](Self::all) token. Keep a handle
    /// of this token for as long as the returned one is in use.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// // A library built on tokio-util.
    /// async fn fetch(cancel: CancellationToken) -> Option<&'static str> {
    ///     cancel.run_until_cancelled(std::future::pending()).await
    /// }
    ///
    /// let token = CancelToken::new();
    /// let request = std::thread::spawn({
    ///     let cancel = token.to_tokio_util();
    ///     move || futures_lite::future::block_on(fetch(cancel))
    /// });
    /// token.trigger_with("user pressed stop");
    /// assert_eq!(request.join().unwrap(), None);
    /// ```
    pub fn to_tokio_util(&self) -> CancellationToken {
        mirror(self).child_token()
    }

    /// Links this token and an existing tokio-util `CancellationToken` both ways until the
    /// returned guard is dropped: triggering this token cancels `other`, and cancelling `other`
    /// triggers this token (with [`ReasonKind::Manual`] and the message
    /// `"tokio-util token cancelled"`). If either is cancelled already, the other is before
    /// this returns, and the guard is inert.
    ///
    /// The link is a callback on this token that holds `other` and a registration on it, as
    /// [`from_tokio_util`](Self::from_tokio_util) makes. Dropping the guard unlinks the
    /// tokens, releasing both; [`detach`](CallbackGuard::detach) keeps the link for this
    /// token's life (and `other` alive with it).
    ///
    /// # Panics
    ///
    /// If `other` is already cancelled, this triggers this token, and a panic of one of its
    /// callbacks propagates from here, as from [`trigger`](Self::trigger). Later, when `other`
    /// is cancelled, such a panic is dropped, as for
    /// [`from_tokio_util`](Self::from_tokio_util).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let ours = CancelToken::named("jobs");
    /// let theirs = CancellationToken::new();
    /// let link = ours.link_tokio_util(&theirs);
    ///
    /// theirs.cancel(); // either side
    /// assert!(ours.is_triggered());
    ///
    /// let (ours, theirs) = (CancelToken::new(), CancellationToken::new());
    /// let link2 = ours.link_tokio_util(&theirs);
    /// ours.trigger(); // or the other
    /// assert!(theirs.is_cancelled());
    /// # drop((link, link2));
    /// ```
    pub fn link_tokio_util(&self, other: &CancellationToken) -> CallbackGuard {
        let watch = watch(other, self);
        let other = other.clone();
        self.on_cancel(move |_| {
            // Our registration goes first, so that cancelling `other` does not call back here.
            drop(watch);
            other.cancel();
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use super::*;

    /// Relays alive: each is held by a registration on a tokio-util token (or being made).
    pub(crate) static RELAYS: AtomicUsize = AtomicUsize::new(0);

    /// The tests that count relays run one at a time.
    fn serial() -> MutexGuard<'static, ()> {
        static SERIAL: Mutex<()> = Mutex::new(());
        SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn relays() -> usize {
        RELAYS.load(Ordering::SeqCst)
    }

    #[test]
    fn dropping_a_bridged_token_releases_its_registration_on_the_tokio_util_token() {
        let _serial = serial();
        let source = CancellationToken::new();
        let token = CancelToken::from_tokio_util(&source);
        assert_eq!(relays(), 1, "registered on the source");
        assert_eq!(token.registrations(), (0, 1), "held by one callback");
        drop(token);
        assert_eq!(relays(), 0, "the source no longer holds our waker");
        source.cancel();
    }

    #[test]
    fn a_trigger_of_the_bridged_token_releases_its_registration_at_once() {
        let _serial = serial();
        let source = CancellationToken::new();
        let token = CancelToken::from_tokio_util(&source);
        token.trigger();
        assert_eq!(relays(), 0);
        assert!(!source.is_cancelled(), "one way");
        assert_eq!(token.registrations(), (0, 0));
    }

    #[test]
    fn a_source_cancelled_already_leaves_no_registration() {
        let _serial = serial();
        let source = CancellationToken::new();
        source.cancel();
        let token = CancelToken::from_tokio_util(&source);
        assert!(token.is_triggered());
        assert_eq!(relays(), 0);
        assert_eq!(token.registrations(), (0, 0));
    }

    #[test]
    fn many_bridged_tokens_made_and_dropped_leave_no_registration() {
        let _serial = serial();
        let source = CancellationToken::new();
        let kept = CancelToken::from_tokio_util(&source);
        for _ in 0..100_000 {
            drop(CancelToken::from_tokio_util(&source));
        }
        assert_eq!(relays(), 1, "only the live token's");
        source.cancel();
        assert!(kept.is_triggered());
        assert_eq!(relays(), 0, "the trigger released it");
    }

    #[test]
    fn to_tokio_util_keeps_one_registration_however_many_tokens_it_returns() {
        let token = CancelToken::new();
        let kept = token.to_tokio_util();
        for _ in 0..100_000 {
            drop(token.to_tokio_util());
        }
        assert_eq!(
            token.registrations(),
            (0, 1),
            "one callback, for the mirror"
        );
        token.trigger();
        assert!(kept.is_cancelled());
        assert_eq!(token.registrations(), (0, 0));
        assert!(token.to_tokio_util().is_cancelled(), "born cancelled");
    }

    #[test]
    fn per_request_children_bridged_out_leave_one_registration_on_the_parent() {
        let parent = CancelToken::new();
        let kept = parent.child().to_tokio_util();
        for _ in 0..100_000 {
            let request = parent.child();
            drop(request.to_tokio_util());
            drop(request);
        }
        assert_eq!(
            parent.registrations(),
            (0, 1),
            "one callback, no child links"
        );
        parent.trigger();
        assert!(kept.is_cancelled(), "handed to the parent's mirror");
    }

    #[test]
    fn a_dropped_link_guard_releases_both_registrations() {
        let _serial = serial();
        let ours = CancelToken::new();
        let theirs = CancellationToken::new();
        for _ in 0..1_000 {
            drop(ours.link_tokio_util(&theirs));
        }
        assert_eq!(relays(), 0);
        assert_eq!(ours.registrations(), (0, 0));
        theirs.cancel();
        assert!(!ours.is_triggered(), "unlinked");
    }
}
