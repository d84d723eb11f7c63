//! The two wire formats a remaining time travels in, and their typed parse error: gRPC's
//! `grpc-timeout` (at most eight digits and a unit) and a plain count of milliseconds (as
//! Connect's `Connect-Timeout-Ms`). Encoding always rounds down, so a callee is never told it
//! has more time than the caller had left; parsing is strict and never panics.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

/// The most digits a `grpc-timeout` value may have, by the gRPC spec.
const GRPC_DIGITS: usize = 8;
const GRPC_MAX: u64 = 99_999_999;
/// The most digits a milliseconds header may have (Connect's limit for `Connect-Timeout-Ms`).
const MILLIS_DIGITS: usize = 10;
const MILLIS_MAX: u64 = 9_999_999_999;

/// The `grpc-timeout` units, finest first, with their length in nanoseconds.
const GRPC_UNITS: [(u8, u128); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60_000_000_000),
    (b'H', 3_600_000_000_000),
];

/// Encodes `timeout` as a `grpc-timeout` value: the finest unit whose count fits the spec's
/// eight digits, rounded down.
///
/// Rounding down means the callee never gets more time than is left: 1.9999 s becomes
/// `1999900u`, 10 minutes and a nanosecond become `600000m`. A timeout beyond the format's
/// largest value (99,999,999 hours, over 11,000 years) is sent as that value.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::http::encode_grpc_timeout;
///
/// assert_eq!(encode_grpc_timeout(Duration::from_millis(250)), "250000u");
/// assert_eq!(encode_grpc_timeout(Duration::from_secs(3600)), "3600000m");
/// assert_eq!(encode_grpc_timeout(Duration::from_nanos(1_999_999_999)), "1999999u");
/// assert_eq!(encode_grpc_timeout(Duration::ZERO), "0n");
/// assert_eq!(encode_grpc_timeout(Duration::MAX), "99999999H");
/// ```
pub fn encode_grpc_timeout(timeout: Duration) -> HeaderValue {
    let nanos = timeout.as_nanos();
    let (count, unit) = GRPC_UNITS
        .iter()
        .map(|&(unit, length)| (nanos / length, unit))
        .find(|&(count, _)| count <= u128::from(GRPC_MAX))
        .unwrap_or((u128::from(GRPC_MAX), b'H'));
    let text = format!("{count}{}", char::from(unit));
    HeaderValue::from_str(&text).expect("digits and a letter are a valid header value")
}

/// Parses a `grpc-timeout` value: one to eight ASCII digits and a unit (`H`, `M`, `S`, `m`,
/// `u`, `n`), nothing else.
///
/// # Errors
///
/// A [`HeaderError`] whose [`kind`](HeaderError::kind) says what was wrong: an empty value,
/// bytes that are not ASCII, a sign, no unit or an unknown one, a non-digit, or more than
/// eight digits. Whitespace is not allowed anywhere.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::http::{parse_grpc_timeout, HeaderErrorKind};
/// use http::HeaderValue;
///
/// let timeout = parse_grpc_timeout(&HeaderValue::from_static("250m")).unwrap();
/// assert_eq!(timeout, Duration::from_millis(250));
///
/// let err = parse_grpc_timeout(&HeaderValue::from_static("123456789S")).unwrap_err();
/// assert_eq!(err.kind(), HeaderErrorKind::TooManyDigits);
/// let err = parse_grpc_timeout(&HeaderValue::from_static("-1S")).unwrap_err();
/// assert_eq!(err.kind(), HeaderErrorKind::Negative);
/// assert_eq!(err.to_string(), r#"invalid grpc-timeout header "-1S": the timeout is negative"#);
/// ```
pub fn parse_grpc_timeout(value: &HeaderValue) -> Result<Duration, HeaderError> {
    parse_grpc(value.as_bytes()).map_err(|kind| HeaderError::new(kind, GRPC, value))
}

fn parse_grpc(bytes: &[u8]) -> Result<Duration, HeaderErrorKind> {
    let (&unit, digits) = bytes.split_last().ok_or(HeaderErrorKind::Empty)?;
    check_text(bytes)?;
    let length = match GRPC_UNITS.iter().find(|&&(known, _)| known == unit) {
        Some(&(_, length)) => length,
        None if unit.is_ascii_digit() => return Err(HeaderErrorKind::MissingUnit),
        None => return Err(HeaderErrorKind::UnknownUnit),
    };
    let count = parse_digits(digits, GRPC_DIGITS)?;
    let nanos = u128::from(count) * length;
    // At most 99,999,999 hours, about 3.6e11 seconds: the casts cannot truncate.
    Ok(Duration::new(
        (nanos / 1_000_000_000) as u64,
        (nanos % 1_000_000_000) as u32,
    ))
}

/// Encodes `timeout` as a whole number of milliseconds, rounded down (as
/// `Connect-Timeout-Ms` carries it); at most ten digits, so a longer timeout is sent as
/// 9,999,999,999 ms (about 115 days).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::http::encode_timeout_ms;
///
/// assert_eq!(encode_timeout_ms(Duration::from_micros(2_999)), "2");
/// assert_eq!(encode_timeout_ms(Duration::from_secs(30)), "30000");
/// assert_eq!(encode_timeout_ms(Duration::MAX), "9999999999");
/// ```
pub fn encode_timeout_ms(timeout: Duration) -> HeaderValue {
    let millis = timeout.as_millis().min(u128::from(MILLIS_MAX));
    HeaderValue::from(millis as u64)
}

/// Parses a milliseconds value: one to ten ASCII digits, nothing else.
///
/// # Errors
///
/// A [`HeaderError`] for an empty value, bytes that are not ASCII, a sign, a non-digit or
/// more than ten digits.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::http::{parse_timeout_ms, HeaderErrorKind};
/// use http::HeaderValue;
///
/// assert_eq!(parse_timeout_ms(&HeaderValue::from_static("1500")).unwrap(), Duration::from_millis(1500));
/// let err = parse_timeout_ms(&HeaderValue::from_static("1.5")).unwrap_err();
/// assert_eq!(err.kind(), HeaderErrorKind::NotADigit);
/// ```
pub fn parse_timeout_ms(value: &HeaderValue) -> Result<Duration, HeaderError> {
    parse_millis(value.as_bytes()).map_err(|kind| HeaderError::new(kind, MILLIS, value))
}

fn parse_millis(bytes: &[u8]) -> Result<Duration, HeaderErrorKind> {
    if bytes.is_empty() {
        return Err(HeaderErrorKind::Empty);
    }
    check_text(bytes)?;
    parse_digits(bytes, MILLIS_DIGITS).map(Duration::from_millis)
}

/// The checks both formats share, on the whole value: ASCII, and no sign.
fn check_text(bytes: &[u8]) -> Result<(), HeaderErrorKind> {
    if !bytes.is_ascii() {
        return Err(HeaderErrorKind::NotAscii);
    }
    match bytes.first() {
        Some(b'-') => Err(HeaderErrorKind::Negative),
        _ => Ok(()),
    }
}

fn parse_digits(digits: &[u8], most: usize) -> Result<u64, HeaderErrorKind> {
    if digits.is_empty() {
        return Err(HeaderErrorKind::MissingNumber);
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(HeaderErrorKind::NotADigit);
    }
    if digits.len() > most {
        return Err(HeaderErrorKind::TooManyDigits);
    }
    // At most ten digits: no overflow.
    Ok(digits
        .iter()
        .fold(0, |count, &digit| count * 10 + u64::from(digit - b'0')))
}

/// The header a [`HeaderError`] is about, when it came from one of the two parse functions
/// rather than a named header.
const GRPC: &str = "grpc-timeout";
const MILLIS: &str = "milliseconds";

/// What was wrong with a deadline header; see [`HeaderError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderErrorKind {
    /// The value is empty.
    Empty,
    /// The value has bytes that are not ASCII.
    NotAscii,
    /// The value starts with a minus sign.
    Negative,
    /// A `grpc-timeout` value has no unit letter.
    MissingUnit,
    /// A `grpc-timeout` value ends in a letter that is not `H`, `M`, `S`, `m`, `u` or `n`.
    UnknownUnit,
    /// There is no number before the unit.
    MissingNumber,
    /// The number has something other than ASCII digits (a sign, a point, whitespace).
    NotADigit,
    /// The number has more digits than the format allows (8 for `grpc-timeout`, 10 for
    /// milliseconds).
    TooManyDigits,
    /// The header appears more than once, so which value holds is ambiguous.
    Repeated,
}

impl HeaderErrorKind {
    fn describe(self) -> &'static str {
        match self {
            HeaderErrorKind::Empty => "the value is empty",
            HeaderErrorKind::NotAscii => "the value is not ASCII",
            HeaderErrorKind::Negative => "the timeout is negative",
            HeaderErrorKind::MissingUnit => "the unit is missing",
            HeaderErrorKind::UnknownUnit => "the unit is not one of H, M, S, m, u, n",
            HeaderErrorKind::MissingNumber => "the number is missing",
            HeaderErrorKind::NotADigit => "the number has a character that is not a digit",
            HeaderErrorKind::TooManyDigits => "the number has too many digits",
            HeaderErrorKind::Repeated => "the header appears more than once",
        }
    }
}

/// A deadline header that could not be read: which header, its value (escaped, and cut
/// short if long, so it is safe to log) and what was wrong with it.
///
/// A server maps it to `400 Bad Request` ([`status`](Self::status)), or ignores the header,
/// as its [`DeadlinePolicy`](super::DeadlinePolicy) says.
///
/// # Examples
///
/// ```
/// use cancel_token::http::{parse_timeout_ms, HeaderErrorKind};
/// use http::HeaderValue;
///
/// let err = parse_timeout_ms(&HeaderValue::from_static("12345678901")).unwrap_err();
/// assert_eq!(err.kind(), HeaderErrorKind::TooManyDigits);
/// assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
/// assert_eq!(err.value(), "12345678901");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderError {
    kind: HeaderErrorKind,
    header: String,
    value: String,
}

/// The most characters of a bad value an error keeps.
const SHOWN: usize = 40;

impl HeaderError {
    fn new(kind: HeaderErrorKind, header: &str, value: &HeaderValue) -> Self {
        let text = String::from_utf8_lossy(value.as_bytes());
        let mut shown: String = text.chars().take(SHOWN).collect();
        if text.chars().nth(SHOWN).is_some() {
            shown.push('…');
        }
        HeaderError {
            kind,
            header: header.to_owned(),
            value: shown,
        }
    }

    /// The same error, about the header called `name`.
    pub(super) fn named(mut self, name: &HeaderName) -> Self {
        name.as_str().clone_into(&mut self.header);
        self
    }

    pub(super) fn repeated(name: &HeaderName, value: &HeaderValue) -> Self {
        HeaderError::new(HeaderErrorKind::Repeated, name.as_str(), value)
    }

    /// What was wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{parse_grpc_timeout, HeaderErrorKind};
    /// use http::HeaderValue;
    ///
    /// let err = parse_grpc_timeout(&HeaderValue::from_static("5s")).unwrap_err();
    /// assert_eq!(err.kind(), HeaderErrorKind::UnknownUnit, "seconds are a capital S");
    /// ```
    pub fn kind(&self) -> HeaderErrorKind {
        self.kind
    }

    /// The header's name, lowercase (`"milliseconds"` from [`parse_timeout_ms`], which does
    /// not know the header's name).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::parse_grpc_timeout;
    /// use http::HeaderValue;
    ///
    /// let err = parse_grpc_timeout(&HeaderValue::from_static("")).unwrap_err();
    /// assert_eq!(err.header(), "grpc-timeout");
    /// ```
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The bad value as text: bytes that are not UTF-8 replaced, and cut after 40 characters.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::parse_grpc_timeout;
    /// use http::HeaderValue;
    ///
    /// let err = parse_grpc_timeout(&HeaderValue::from_static("1 S")).unwrap_err();
    /// assert_eq!(err.value(), "1 S");
    /// ```
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The status a server answers a request with this header: `400 Bad Request`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::parse_timeout_ms;
    /// use http::HeaderValue;
    ///
    /// let err = parse_timeout_ms(&HeaderValue::from_static("-5")).unwrap_err();
    /// assert_eq!(err.status().as_u16(), 400);
    /// ```
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::BAD_REQUEST
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} header {:?}: {}",
            self.header,
            self.value,
            self.kind.describe()
        )
    }
}

impl Error for HeaderError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn grpc(text: &[u8]) -> Result<Duration, HeaderErrorKind> {
        parse_grpc(text)
    }

    #[test]
    fn grpc_units() {
        assert_eq!(grpc(b"7n"), Ok(Duration::from_nanos(7)));
        assert_eq!(grpc(b"7u"), Ok(Duration::from_micros(7)));
        assert_eq!(grpc(b"7m"), Ok(Duration::from_millis(7)));
        assert_eq!(grpc(b"7S"), Ok(Duration::from_secs(7)));
        assert_eq!(grpc(b"7M"), Ok(Duration::from_secs(420)));
        assert_eq!(grpc(b"7H"), Ok(Duration::from_secs(25_200)));
        assert_eq!(grpc(b"00000001S"), Ok(Duration::from_secs(1)));
        assert_eq!(grpc(b"99999999H"), Ok(Duration::from_secs(GRPC_MAX * 3600)));
    }

    #[test]
    fn grpc_bad_inputs() {
        use HeaderErrorKind::*;
        let cases: [(&[u8], HeaderErrorKind); 16] = [
            (b"", Empty),
            (b"S", MissingNumber),
            (b"100", MissingUnit),
            (b"5s", UnknownUnit),
            (b"5x", UnknownUnit),
            (b"5\xff", NotAscii),
            ("5µ".as_bytes(), NotAscii),
            (b"-5S", Negative),
            (b"+5S", NotADigit),
            (b"1.5S", NotADigit),
            (b" 5S", NotADigit),
            (b"5 S", NotADigit),
            (b"5S ", UnknownUnit),
            (b"123456789S", TooManyDigits),
            (b"99999999999999999999999999999999H", TooManyDigits),
            (b"0x5S", NotADigit),
        ];
        for (text, kind) in cases {
            assert_eq!(grpc(text), Err(kind), "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn grpc_round_trip_never_grows() {
        let samples = [
            Duration::ZERO,
            Duration::from_nanos(99_999_999),
            Duration::from_nanos(100_000_000),
            Duration::from_nanos(100_000_001),
            Duration::from_nanos(1_999_999_999),
            Duration::from_millis(99_999_999),
            Duration::from_millis(100_000_000),
            Duration::from_secs(99_999_999 * 60),
            Duration::from_secs(99_999_999 * 60 + 59),
            Duration::new(123_456, 789_012_345),
            Duration::MAX,
        ];
        for timeout in samples {
            let value = encode_grpc_timeout(timeout);
            assert!(value.len() <= GRPC_DIGITS + 1, "{value:?}");
            let back = parse_grpc_timeout(&value).unwrap();
            assert!(back <= timeout, "{timeout:?} came back as {back:?}");
        }
        // The finest unit that fits: nothing coarser than needed is lost.
        assert_eq!(
            encode_grpc_timeout(Duration::from_nanos(99_999_999)),
            "99999999n"
        );
        assert_eq!(
            encode_grpc_timeout(Duration::from_nanos(100_000_001)),
            "100000u"
        );
        assert_eq!(
            encode_grpc_timeout(Duration::from_secs(100_000_000)),
            "1666666M"
        );
    }

    #[test]
    fn millis_formats() {
        use HeaderErrorKind::*;
        assert_eq!(parse_millis(b"0"), Ok(Duration::ZERO));
        assert_eq!(
            parse_millis(b"9999999999"),
            Ok(Duration::from_millis(MILLIS_MAX))
        );
        let cases: [(&[u8], HeaderErrorKind); 7] = [
            (b"", Empty),
            (b"-1", Negative),
            (b"1e3", NotADigit),
            (b" 1", NotADigit),
            (b"10000000000", TooManyDigits),
            (b"18446744073709551616", TooManyDigits),
            ("１".as_bytes(), NotAscii),
        ];
        for (text, kind) in cases {
            assert_eq!(parse_millis(text), Err(kind), "{text:?}");
        }
        assert_eq!(encode_timeout_ms(Duration::from_nanos(999_999)), "0");
    }

    #[test]
    fn errors_escape_and_shorten_values() {
        let long = HeaderValue::from_bytes(&[b'7'; 200]).unwrap();
        let err = parse_timeout_ms(&long).unwrap_err();
        assert_eq!(err.value().chars().count(), SHOWN + 1);
        let odd = HeaderValue::from_bytes(b"\"5\xff\"").unwrap();
        let err = parse_grpc_timeout(&odd).unwrap_err();
        assert_eq!(err.kind(), HeaderErrorKind::NotAscii);
        // Quotes in the value are escaped by Display, so a log line stays one token.
        assert_eq!(
            err.to_string(),
            "invalid grpc-timeout header \"\\\"5\u{fffd}\\\"\": the value is not ASCII"
        );
    }
}
