//! The firers: threads that run the triggers of due deadlines, so that user code (wakers,
//! callbacks, the drops of whatever a token owned) never runs on the dispatcher.
//!
//! A trigger may block for any length of time, even forever, and no other deadline may wait
//! behind it for more than about [`STALL`]. A free firer takes the next job at once. Jobs that
//! outnumber the free firers get one more firer, unless the pool shows progress: a job was taken,
//! or a firer spawned, within the last `STALL`; the dispatcher looks again when that expires. So
//! a blocked firer holds up the jobs behind it for one `STALL`, and the pool spawns at most one
//! thread per `STALL`. Spawning as soon as the jobs outnumber the free firers would spare even
//! that delay, but a burst of quick triggers then gets a thread for nearly every job (ten
//! thousand deadlines spread over 200 ms made 1,600 threads). A firer beyond the first that
//! stays idle for [`IDLE_EXIT`] exits, so a burst of blocked callbacks leaves no threads behind
//! for good. When no thread can be spawned, the dispatcher runs the jobs that have no free firer
//! itself: late, and exposed to a blocking callback, but not lost.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::{lock, Expire};

/// How long the pool may go without taking a job while jobs wait before it presumes its busy
/// firers blocked and spawns another. Longer than a quick trigger, and than most pauses of a
/// descheduled thread; short enough that a deadline behind a blocked callback is barely late.
pub(super) const STALL: Duration = Duration::from_millis(2);

/// How long a firer beyond the first stays idle before it exits. Long enough that steady
/// traffic does not spawn a thread per deadline, short enough that a burst is soon forgotten.
pub(super) const IDLE_EXIT: Duration = Duration::from_secs(10);

pub(super) struct Pool {
    jobs: Mutex<Jobs>,
    /// Signalled once for each job that a waiting firer may have to take.
    work: Condvar,
    idle_exit: Duration,
    /// Makes every spawn fail, to exercise the fallback.
    #[cfg(test)]
    refuse_spawns: bool,
}

struct Jobs {
    queue: VecDeque<Weak<dyn Expire>>,
    /// Firers that are not running a trigger: waiting for work, about to look for it, or not
    /// started yet. Each will take a queued job, if there is one, without delay.
    free: usize,
    /// Every firer that has not exited, busy or not.
    alive: usize,
    /// When a firer last took a job or was spawned.
    progress: Option<Instant>,
}

impl Pool {
    pub(super) fn new(idle_exit: Duration) -> Arc<Pool> {
        Arc::new(Pool {
            jobs: Mutex::new(Jobs {
                queue: VecDeque::new(),
                free: 0,
                alive: 0,
                progress: None,
            }),
            work: Condvar::new(),
            idle_exit,
            #[cfg(test)]
            refuse_spawns: false,
        })
    }

    /// Queues every target in `due` (leaving it empty) and makes sure the queue is served.
    ///
    /// Returns when the pool must be looked at again, with an empty `due` if nothing else came
    /// due: jobs still outnumber the free firers, and the pool will presume its busy firers
    /// blocked then unless they take another job first. Jobs that could get no firer because no
    /// thread could be spawned have run on this thread by the time it returns.
    #[must_use]
    pub(super) fn hand_over(self: &Arc<Self>, due: &mut Vec<Weak<dyn Expire>>) -> Option<Instant> {
        let mut jobs = lock(&self.jobs);
        // A new firer looks at the queue before it first waits; only the free ones need waking.
        for _ in 0..due.len().min(jobs.free) {
            self.work.notify_one();
        }
        jobs.queue.extend(due.drain(..));
        loop {
            if jobs.queue.len() <= jobs.free {
                return None;
            }
            let now = Instant::now();
            if jobs.free > 0 {
                // Free firers are about to take jobs: progress, unless what they take blocks.
                return Some(now + STALL);
            }
            let look_again = jobs.progress.map(|progress| progress + STALL);
            if let Some(at) = look_again.filter(|at| *at > now) {
                return Some(at);
            }
            // Counted before it exists, so that the next look does not spawn it again.
            let before = jobs.progress.replace(now);
            jobs.free += 1;
            jobs.alive += 1;
            drop(jobs);
            let spawned = self.spawn();
            jobs = lock(&self.jobs);
            if !spawned {
                jobs.free -= 1;
                jobs.alive -= 1;
                if jobs.progress == Some(now) {
                    jobs.progress = before;
                }
                if let Some(job) = jobs.queue.pop_front() {
                    drop(jobs);
                    fire(job);
                    jobs = lock(&self.jobs);
                }
            }
        }
    }

    fn spawn(self: &Arc<Self>) -> bool {
        #[cfg(test)]
        if self.refuse_spawns {
            return false;
        }
        let pool = Arc::clone(self);
        thread::Builder::new()
            .name("cancel-token-timer-fire".into())
            .spawn(move || pool.serve())
            .is_ok()
    }

    /// A firer's loop: take a job, run it with no lock held, repeat; exit after a long idle
    /// spell unless this is the last firer.
    fn serve(&self) {
        let mut jobs = lock(&self.jobs);
        let mut idle_since = Instant::now();
        loop {
            if let Some(job) = jobs.queue.pop_front() {
                jobs.free -= 1;
                jobs.progress = Some(Instant::now());
                drop(jobs);
                fire(job);
                jobs = lock(&self.jobs);
                jobs.free += 1;
                idle_since = Instant::now();
                continue;
            }
            if jobs.alive == 1 {
                // The last firer stays, so that the next deadline does not pay for a spawn.
                jobs = self.work.wait(jobs).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let idle = idle_since.elapsed();
            if idle >= self.idle_exit {
                jobs.free -= 1;
                jobs.alive -= 1;
                return;
            }
            jobs = self
                .work
                .wait_timeout(jobs, self.idle_exit - idle)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// `(alive, free)` firers, for the tests.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let jobs = lock(&self.jobs);
        (jobs.alive, jobs.free)
    }
}

/// Expires `job` if its target still exists. Expiring, and dropping what may be the last strong
/// reference, run user code; a panic there must not take the firer down (nor the dispatcher, in
/// the fallback), and the panic hook has already reported it.
fn fire(job: Weak<dyn Expire>) {
    let outcome = panic::catch_unwind(AssertUnwindSafe(move || {
        if let Some(target) = job.upgrade() {
            target.expire();
        }
    }));
    if let Err(payload) = outcome {
        // The payload is a user value too, and its drop may panic in turn; that one is leaked.
        if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::mpsc;
    use std::thread::ThreadId;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(60);

    /// A job that runs a closure.
    struct Job<F>(F);

    impl<F: Fn() + Send + Sync> Expire for Job<F> {
        fn expire(self: Arc<Self>) {
            (self.0)()
        }
    }

    fn job(f: impl Fn() + Send + Sync + 'static) -> Arc<dyn Expire> {
        Arc::new(Job(f))
    }

    /// Holds back the jobs that pass through it until the test opens it.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
    }

    impl Gate {
        fn pass(&self) {
            let mut open = lock(&self.open);
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
        }

        fn open(&self) {
            *lock(&self.open) = true;
            self.opened.notify_all();
        }
    }

    /// A job that reports it has started, then waits at `gate`.
    fn blocking(gate: &Arc<Gate>, entered: &mpsc::Sender<ThreadId>) -> Arc<dyn Expire> {
        let (gate, entered) = (Arc::clone(gate), entered.clone());
        job(move || {
            let _ = entered.send(thread::current().id());
            gate.pass();
        })
    }

    /// A job that reports the thread it ran on.
    fn reporting(tx: &mpsc::Sender<(ThreadId, Option<String>)>) -> Arc<dyn Expire> {
        let tx = tx.clone();
        job(move || {
            let current = thread::current();
            let _ = tx.send((current.id(), current.name().map(str::to_owned)));
        })
    }

    /// Hands `jobs` over, then looks again whenever asked to, as the dispatcher does.
    fn hand(pool: &Arc<Pool>, jobs: &[&Arc<dyn Expire>]) {
        let mut due = jobs.iter().map(|job| Arc::downgrade(job)).collect();
        while let Some(at) = pool.hand_over(&mut due) {
            assert!(due.is_empty());
            thread::sleep(at.saturating_duration_since(Instant::now()));
        }
    }

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < LIMIT, "gave up waiting for {what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_job_handed_over_while_the_firer_blocks_gets_a_new_firer_and_extras_exit_when_idle() {
        let idle_exit = Duration::from_millis(50);
        let pool = Pool::new(idle_exit);
        let gate = Arc::new(Gate::default());
        let (entered_tx, entered_rx) = mpsc::channel();
        let blocker = blocking(&gate, &entered_tx);
        hand(&pool, &[&blocker]);
        entered_rx.recv_timeout(LIMIT).expect("the job never ran");
        assert_eq!(pool.counts(), (1, 0), "one firer, busy");

        let (ran_tx, ran_rx) = mpsc::channel();
        let quick = reporting(&ran_tx);
        hand(&pool, &[&quick]);
        assert_eq!(pool.counts().0, 2, "a second firer, spawned at once");
        let (_, name) = ran_rx
            .recv_timeout(LIMIT)
            .expect("the job waited behind the blocked one");
        assert_eq!(name.as_deref(), Some("cancel-token-timer-fire"));

        gate.open();
        wait_for("the extra firer to exit", || pool.counts() == (1, 1));
        thread::sleep(idle_exit * 3);
        assert_eq!(pool.counts(), (1, 1), "the last firer stays");

        hand(&pool, &[&quick]);
        ran_rx.recv_timeout(LIMIT).expect("the last firer stopped");
        assert_eq!(pool.counts().0, 1, "no spawn while a firer is free");
    }

    #[test]
    fn a_burst_of_quick_jobs_does_not_get_a_thread_each() {
        const JOBS: usize = 1_000;
        let pool = Pool::new(Duration::from_secs(3600));
        let (ran_tx, ran_rx) = mpsc::channel();
        let burst: Vec<_> = (0..JOBS).map(|_| reporting(&ran_tx)).collect();
        hand(&pool, &burst.iter().collect::<Vec<_>>());
        for _ in 0..JOBS {
            ran_rx.recv_timeout(LIMIT).expect("a job never ran");
        }
        let (alive, _) = pool.counts();
        // One while the first firer keeps taking jobs; more only when it stalls for `STALL`.
        assert!(alive <= 100, "{alive} firers for {JOBS} quick jobs");
    }

    #[test]
    fn each_blocking_job_of_a_burst_gets_a_firer_of_its_own() {
        let pool = Pool::new(Duration::from_secs(3600));
        let gate = Arc::new(Gate::default());
        let (entered_tx, entered_rx) = mpsc::channel();
        let burst: Vec<_> = (0..4).map(|_| blocking(&gate, &entered_tx)).collect();
        hand(&pool, &burst.iter().collect::<Vec<_>>());
        // All four block at once, which only four threads can do.
        let threads: HashSet<ThreadId> = (0..4)
            .map(|_| entered_rx.recv_timeout(LIMIT).expect("a job waited"))
            .collect();
        assert_eq!(threads.len(), 4);
        assert_eq!(pool.counts(), (4, 0));
        gate.open();
        wait_for("every firer to be free", || pool.counts() == (4, 4));
    }

    #[test]
    fn a_panicking_job_leaves_its_firer_serving() {
        let pool = Pool::new(Duration::from_secs(3600));
        let (entered_tx, entered_rx) = mpsc::channel();
        let panicking = job(move || {
            let _ = entered_tx.send(());
            panic!("a job panics on purpose")
        });
        let (ran_tx, ran_rx) = mpsc::channel();
        let after = reporting(&ran_tx);
        hand(&pool, &[&panicking]);
        entered_rx.recv_timeout(LIMIT).expect("the job never ran");
        wait_for("the panic to be caught", || pool.counts() == (1, 1));
        hand(&pool, &[&after]);
        ran_rx.recv_timeout(LIMIT).expect("the firer died");
        assert_eq!(pool.counts().0, 1);
    }

    #[test]
    fn when_no_firer_can_be_spawned_the_caller_runs_the_jobs() {
        let mut pool = Pool::new(IDLE_EXIT);
        Arc::get_mut(&mut pool).unwrap().refuse_spawns = true;
        let (ran_tx, ran_rx) = mpsc::channel();
        let jobs: Vec<_> = (0..3).map(|_| reporting(&ran_tx)).collect();
        let gone = Arc::downgrade(&job(|| unreachable!("a dropped target is not expired")));
        let mut due: Vec<Weak<dyn Expire>> = jobs.iter().map(Arc::downgrade).collect();
        due.push(gone);
        assert_eq!(pool.hand_over(&mut due), None, "nothing left to look at");
        let here = thread::current().id();
        let ran: Vec<_> = ran_rx.try_iter().map(|(id, _)| id).collect();
        assert_eq!(ran, [here; 3], "all ran here before hand_over returned");
        assert_eq!(pool.counts(), (0, 0));
    }
}
