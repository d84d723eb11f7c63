//! The command thread's connection to Redis, made (again) when needed, and how its errors are
//! told apart: Redis out of reach (or saying "not now"), or Redis refusing.

use super::shared::Shared;

/// Why a round trip failed.
pub(crate) enum Failure {
    /// No connection, a broken one, no answer in time, or "not now" (loading its data, no
    /// master, try again): try again later, the same way.
    Unreachable,
    /// Redis answered with an error and means it.
    Refused(redis::RedisError),
}

/// The command connection.
pub(crate) struct Link {
    con: Option<redis::Connection>,
}

impl Link {
    pub(crate) fn new(con: Option<redis::Connection>) -> Link {
        Link { con }
    }

    /// Runs `pipe`; a connection found broken is made again at once and the pipeline sent
    /// again, once (Redis closes idle clients: the first cancel after a quiet spell should not
    /// wait for a back-off).
    pub(crate) fn query<T: redis::FromRedisValue>(
        &mut self,
        shared: &Shared,
        pipe: &redis::Pipeline,
    ) -> Result<T, Failure> {
        let fresh = self.con.is_none();
        match self.try_query(shared, pipe) {
            Err(Failure::Unreachable) if !fresh => self.try_query(shared, pipe),
            outcome => outcome,
        }
    }

    fn try_query<T: redis::FromRedisValue>(
        &mut self,
        shared: &Shared,
        pipe: &redis::Pipeline,
    ) -> Result<T, Failure> {
        if self.con.is_none() {
            self.con = connect(shared);
        }
        let con = self.con.as_mut().ok_or(Failure::Unreachable)?;
        pipe.query(con).map_err(|error| {
            if answered(&error) {
                Failure::Refused(error)
            } else {
                if !matches!(error.retry_method(), redis::RetryMethod::WaitAndRetry) {
                    self.con = None;
                }
                Failure::Unreachable
            }
        })
    }
}

/// A new command connection, or `None` if Redis does not answer.
fn connect(shared: &Shared) -> Option<redis::Connection> {
    let timeout = shared.settings.connect_timeout;
    let con = shared.client.get_connection_with_timeout(timeout).ok()?;
    con.set_read_timeout(Some(timeout)).ok()?;
    con.set_write_timeout(Some(timeout)).ok()?;
    Some(con)
}

/// Whether Redis answered with this error and means it: not a broken or silent connection,
/// and not "not now" (loading its data, no master, try again), which is waited out.
fn answered(error: &redis::RedisError) -> bool {
    !(error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
        || matches!(error.retry_method(), redis::RetryMethod::WaitAndRetry))
}
