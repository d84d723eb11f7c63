//! TEMPORARY stand-ins for `cancel_token::http::{encode_grpc_timeout, parse_grpc_timeout,
//! HeaderError}`, which are being written on `main`. Same signatures and behaviour as agreed;
//! this file goes away when they land and the `grpc` module uses the real ones.

use std::fmt;
use std::time::Duration;

use http::HeaderValue;

/// The units of `grpc-timeout`, finest first, with their length in nanoseconds.
const UNITS: [(u8, u128); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60_000_000_000),
    (b'H', 3_600_000_000_000),
];

/// At most eight digits, says the gRPC spec.
const MAX_VALUE: u128 = 99_999_999;

/// `timeout` as a `grpc-timeout` value: rounded down to the finest unit that fits in eight
/// digits; capped at `99999999H`.
pub(crate) fn encode_grpc_timeout(timeout: Duration) -> HeaderValue {
    let nanos = timeout.as_nanos();
    let (value, unit) = UNITS
        .iter()
        .map(|&(unit, len)| (nanos / len, unit))
        .find(|&(value, _)| value <= MAX_VALUE)
        .unwrap_or((MAX_VALUE, b'H'));
    let mut text = value.to_string();
    text.push(char::from(unit));
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("99999999H"))
}

/// Parses a `grpc-timeout` value: one to eight ASCII digits and a unit, nothing else.
pub(crate) fn parse_grpc_timeout(value: &HeaderValue) -> Result<Duration, HeaderError> {
    let bytes = value.as_bytes();
    let Some((&unit, digits)) = bytes.split_last() else {
        return Err(HeaderError("the value is empty"));
    };
    let len = UNITS
        .iter()
        .find(|&&(known, _)| known == unit)
        .map(|&(_, len)| len)
        .ok_or(if unit.is_ascii_digit() {
            HeaderError("the value has no unit")
        } else {
            HeaderError("the unit is not one of n, u, m, S, M, H")
        })?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HeaderError("the amount is not a number of ASCII digits"));
    }
    if digits.len() > 8 {
        return Err(HeaderError("the amount has more than 8 digits"));
    }
    let amount = digits
        .iter()
        .fold(0u128, |acc, digit| acc * 10 + u128::from(digit - b'0'));
    let nanos = amount * len;
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let subsec = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, subsec))
}

/// Why a `grpc-timeout` value did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeaderError(&'static str);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for HeaderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (timeout, text) in [
            (Duration::ZERO, "0n"),
            (Duration::from_millis(250), "250000u"),
            (Duration::from_secs(10), "10000000u"),
            (Duration::from_secs(1000), "1000000m"),
            (Duration::MAX, "99999999H"),
        ] {
            let value = encode_grpc_timeout(timeout);
            assert_eq!(value, text);
            assert!(parse_grpc_timeout(&value).unwrap() <= timeout);
        }
        for bad in ["", "5", "5x", "123456789n", "-5m", " 5m", "5 m", "m"] {
            assert!(
                parse_grpc_timeout(&HeaderValue::from_str(bad).unwrap()).is_err(),
                "{bad:?}"
            );
        }
        let non_ascii = HeaderValue::from_bytes("5µ".as_bytes()).unwrap();
        assert!(parse_grpc_timeout(&non_ascii).is_err());
    }
}
