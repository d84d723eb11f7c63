//! The errors of the `redis` module: [`ConnectError`] when a registry cannot start, and
//! [`IdError`] for an id that cannot travel.

use std::error::Error;
use std::fmt;

use super::wire::MAX_ID_LEN;

/// A [`RedisRegistry`](super::RedisRegistry) could not start: the URL is invalid, or Redis did
/// not answer within the connect timeout.
///
/// Its `Display` names the address (never a password from the URL) and the cause, which
/// [`source`](Error::source) also gives.
///
/// # Examples
///
/// ```
/// use cancel_token::redis::RedisRegistry;
///
/// let error = RedisRegistry::connect("http://not-redis").unwrap_err();
/// assert!(error.is_invalid_url());
/// assert!(error.to_string().starts_with("invalid Redis URL"));
/// ```
#[derive(Debug)]
pub struct ConnectError {
    addr: Option<String>,
    source: redis::RedisError,
}

impl ConnectError {
    pub(crate) fn invalid_url(source: redis::RedisError) -> ConnectError {
        ConnectError { addr: None, source }
    }

    pub(crate) fn unreachable(addr: String, source: redis::RedisError) -> ConnectError {
        ConnectError {
            addr: Some(addr),
            source,
        }
    }

    /// Whether the URL itself was wrong (no connection was tried).
    pub fn is_invalid_url(&self) -> bool {
        self.addr.is_none()
    }

    /// Whether Redis did not answer within the connect timeout.
    pub fn is_timeout(&self) -> bool {
        self.source.is_timeout()
    }

    /// The address tried, `host:port` or a socket path; `None` for an invalid URL.
    pub fn addr(&self) -> Option<&str> {
        self.addr.as_deref()
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            None => write!(f, "invalid Redis URL: {}", self.source),
            Some(addr) => write!(f, "could not connect to Redis at {addr}: {}", self.source),
        }
    }
}

impl Error for ConnectError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// An id a [`RedisRegistry`](super::RedisRegistry) cannot register or cancel: empty, or
/// longer than 1024 bytes.
///
/// # Examples
///
/// ```
/// use cancel_token::redis::IdError;
///
/// let error = IdError::check("").unwrap_err();
/// assert_eq!(error.to_string(), "an id must not be empty");
/// assert!(IdError::check(&"x".repeat(2000)).is_err());
/// assert!(IdError::check("job 42: résumé%").is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdError {
    len: usize,
}

impl IdError {
    /// Checks that `id` can travel: not empty and at most 1024 bytes. Any text is fine
    /// otherwise; spaces, `%`, line breaks and non-ASCII are escaped on the wire.
    pub fn check(id: &str) -> Result<(), IdError> {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            Err(IdError { len: id.len() })
        } else {
            Ok(())
        }
    }

    /// The length, in bytes, of the rejected id.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the rejected id was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 0 {
            f.write_str("an id must not be empty")
        } else {
            write!(
                f,
                "an id must be at most {MAX_ID_LEN} bytes long, this one has {}",
                self.len
            )
        }
    }
}

impl Error for IdError {}
