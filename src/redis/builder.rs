//! [`Builder`]: the settings of a [`RedisRegistry`] and the connection that starts it.

use std::fmt;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::{CancelRegistry, CancelToken};

use super::error::ConnectError;
use super::shared::{Settings, Shared};
use super::{commands, subscriber, Owner, RedisRegistry};

/// The longest connect timeout, back-off pause or heartbeat: an hour.
const LONGEST: Duration = Duration::from_secs(3600);

/// The settings of a [`RedisRegistry`], from [`RedisRegistry::builder`].
///
/// Every registry that should reach the others must use the same Redis and the same
/// [`namespace`](Self::namespace).
///
/// # Examples
///
/// (Not run here: it needs a Redis server on localhost. `examples/redis_workers.rs` starts one
/// and runs these steps; `tests/redis*.rs` check each setting.)
///
/// ```no_run
/// use std::time::Duration;
/// use cancel_token::redis::RedisRegistry;
///
/// let jobs = RedisRegistry::builder("redis://127.0.0.1:6379/")
///     .namespace("billing")
///     .record_ttl(Duration::from_secs(600))
///     .connect_timeout(Duration::from_secs(2))
///     .connect()?;
/// let (_token, _registration) = jobs.register("invoice-9").unwrap();
/// # Ok::<(), cancel_token::redis::ConnectError>(())
/// ```
#[must_use = "a builder does nothing until `connect` is called"]
pub struct Builder {
    url: String,
    namespace: String,
    parent: Option<CancelToken>,
    record_ttl: Duration,
    connect_timeout: Duration,
    backoff: (Duration, Duration),
    heartbeat: Duration,
}

impl Builder {
    pub(crate) fn new(url: &str) -> Builder {
        Builder {
            url: url.to_owned(),
            namespace: "cancel-token".to_owned(),
            parent: None,
            record_ttl: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(5),
            backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            heartbeat: Duration::from_secs(1),
        }
    }

    /// The prefix of the channel (`<namespace>:cancel`) and of the records
    /// (`<namespace>:cancelled:<id>`); `"cancel-token"` by default. Registries hear only the
    /// cancels of their namespace, so one Redis can serve several independent systems.
    pub fn namespace(mut self, namespace: &str) -> Builder {
        namespace.clone_into(&mut self.namespace);
        self
    }

    /// Makes every token of the registry a child of `parent`: triggering it cancels every
    /// operation registered (in this process only).
    pub fn parent(mut self, parent: &CancelToken) -> Builder {
        self.parent = Some(parent.clone());
        self
    }

    /// How long the record of a cancel lives in Redis; one hour by default (at least a
    /// millisecond; longer than about 146 million years counts as that). A process away for
    /// longer, or a job that registers later than that, misses the cancel.
    pub fn record_ttl(mut self, ttl: Duration) -> Builder {
        self.record_ttl = ttl;
        self
    }

    /// How long a connection attempt, and any later round trip, may take before it counts
    /// as failed; five seconds by default (from a millisecond to an hour). A URL with a password or
    /// a database number adds set-up commands (`AUTH`, `SELECT`), each of which may wait that
    /// long on a server that accepts connections but does not answer.
    pub fn connect_timeout(mut self, timeout: Duration) -> Builder {
        self.connect_timeout = timeout.clamp(Duration::from_millis(1), LONGEST);
        self
    }

    /// The pauses between reconnect attempts: from `min`, doubling up to `max`, each with
    /// random jitter in its upper half (never under `min`); 50 ms to 5 s by default. Both are
    /// kept between a millisecond and an hour; `max` below `min` counts as `min`.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Builder {
        let min = min.clamp(Duration::from_millis(1), LONGEST);
        self.backoff = (min, max.clamp(min, LONGEST));
        self
    }

    /// How long the subscription may stay quiet before a `PING` checks that Redis is still
    /// there; one second by default (from a millisecond to an hour). It bounds how long a vanished peer (one that never closed
    /// the socket) goes unnoticed, to about the heartbeat plus the connect timeout.
    pub fn heartbeat(mut self, every: Duration) -> Builder {
        self.heartbeat = every.clamp(Duration::from_millis(1), LONGEST);
        self
    }

    /// Connects to Redis and starts the registry: its two helper threads, one subscribed to
    /// the channel and one for commands.
    ///
    /// # Blocking
    ///
    /// This blocks the calling thread until both connections are made (at the same time) and
    /// the subscription is confirmed, for at most about the connect timeout. In async code,
    /// call it before the runtime starts or on a blocking-task thread.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] if the URL is invalid, Redis does not answer in time, or the system
    /// cannot start a thread; no thread is left behind.
    pub fn connect(self) -> Result<RedisRegistry, ConnectError> {
        let client = redis::Client::open(self.url.as_str()).map_err(ConnectError::invalid_url)?;
        let addr = client.get_connection_info().addr.to_string();
        let settings = Settings {
            channel: format!("{}:cancel", self.namespace),
            key_prefix: format!("{}:cancelled:", self.namespace),
            record_ttl: self.record_ttl,
            connect_timeout: self.connect_timeout,
            backoff_min: self.backoff.0,
            backoff_max: self.backoff.1,
            heartbeat: self.heartbeat,
        };
        let tokens = match &self.parent {
            Some(parent) => CancelRegistry::with_parent(parent),
            None => CancelRegistry::new(),
        };
        let shared = Arc::new(Shared::new(tokens, client, settings));
        // Both connections at once: the subscriber's on its thread, the command connection
        // here, so that an unreachable server costs one connect timeout, not two.
        let (ready, subscribed) = mpsc::channel();
        let listening = spawn("cancel-token-redis-sub", {
            let shared = Arc::clone(&shared);
            move || subscriber::run(shared, ready)
        })
        .map_err(|error| ConnectError::unreachable(addr.clone(), error.into()))?;
        let timeout = self.connect_timeout;
        let commanding = shared
            .client
            .get_connection_with_timeout(timeout)
            .and_then(|con| {
                con.set_read_timeout(Some(timeout))?;
                con.set_write_timeout(Some(timeout))?;
                Ok(con)
            });
        // The thread answers once it is subscribed or has given up (its reads and writes are
        // bounded by the connect timeout); a thread that died says nothing.
        let outcome = subscribed.recv().unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::ClientError,
                "the subscriber thread ended before it subscribed",
            )))
        });
        let commanding = match outcome.and(commanding) {
            Ok(commanding) => commanding,
            Err(error) => {
                shared.stop();
                let _ = listening.join();
                return Err(ConnectError::unreachable(addr, error));
            }
        };
        let commanding = spawn("cancel-token-redis-cmd", {
            let shared = Arc::clone(&shared);
            move || commands::run(shared, Some(commanding))
        });
        let commanding = match commanding {
            Ok(thread) => thread,
            Err(error) => {
                shared.stop();
                let _ = listening.join();
                return Err(ConnectError::unreachable(addr, error.into()));
            }
        };
        let threads = vec![listening, commanding];
        Ok(RedisRegistry {
            owner: Arc::new(Owner::new(shared, threads, addr)),
        })
    }
}

/// Spawns a helper thread; an error if the system cannot.
fn spawn(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: only the rest is shown.
        f.debug_struct("Builder")
            .field("namespace", &self.namespace)
            .field("parent", &self.parent)
            .field("record_ttl", &self.record_ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("backoff", &self.backoff)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}
