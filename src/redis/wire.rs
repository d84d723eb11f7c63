//! The wire format of the `redis` module: how a cancel travels on the channel and how its
//! record is stored, and the strict parser that turns anything else into "malformed".
//!
//! A message is `v1 <id> <kind> <message>`: four fields and single spaces. A record (the value
//! of the cancelled-id key) is `<kind> <message>`. The id and the message are escaped: `%`,
//! space, control bytes and DEL become `%XX` (uppercase hex) and any other UTF-8 stays as it
//! is, so no field ever holds a space or a line break. A reason with no message is sent as `-`
//! (a message that is exactly `-` goes as `%2D`). The kind is [`ReasonKind::as_str`].

use std::fmt::Write as _;

use crate::reason::{Reason, ReasonKind};

/// The longest id, in bytes (unescaped), that a registry registers or cancels.
pub const MAX_ID_LEN: usize = 1024;

/// The longest reason message, in bytes (unescaped), that travels: a longer one is cut at a
/// character boundary before it is sent.
pub const MAX_MESSAGE_LEN: usize = 8192;

/// The longest payload the parser looks at: every field at its longest, fully escaped.
const MAX_PAYLOAD_LEN: usize = 3 * (MAX_ID_LEN + MAX_MESSAGE_LEN) + 32;

const VERSION: &str = "v1";

/// A cancel that came off the channel.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) id: String,
    pub(crate) reason: Reason,
}

/// Appends `text` to `out`, escaped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '%' | ' ' | '\u{0}'..='\u{1f}' | '\u{7f}' => {
                // Infallible: writing to a String.
                let _ = write!(out, "%{:02X}", c as u32);
            }
            _ => out.push(c),
        }
    }
}

/// `text` escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Undoes [`escape`]; `None` for a bad escape, a byte that should have been escaped, or
/// bytes that are not UTF-8.
fn unescape(field: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&byte, tail)) = rest.split_first() {
        match byte {
            b'%' => {
                let [high, low, tail @ ..] = tail else {
                    return None;
                };
                let value = hex(*high)? << 4 | hex(*low)?;
                bytes.push(value);
                rest = tail;
            }
            b' ' | 0..=0x1f | 0x7f => return None,
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn kind_from_str(text: &[u8]) -> Option<ReasonKind> {
    [
        ReasonKind::Manual,
        ReasonKind::Timeout,
        ReasonKind::Dropped,
        ReasonKind::Superseded,
        ReasonKind::Signal,
        ReasonKind::Condition,
    ]
    .into_iter()
    .find(|kind| kind.as_str().as_bytes() == text)
}

/// The reason's message, cut to [`MAX_MESSAGE_LEN`] at a character boundary.
fn bounded_message(reason: &Reason) -> Option<&str> {
    let message = reason.message()?;
    let mut end = message.len().min(MAX_MESSAGE_LEN);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    Some(&message[..end])
}

/// `<kind> <message>`: the record, and the tail of a message.
pub(crate) fn encode_reason(reason: &Reason) -> String {
    let mut out = String::from(reason.kind().as_str());
    out.push(' ');
    match bounded_message(reason) {
        None => out.push('-'),
        Some("-") => out.push_str("%2D"),
        Some(message) => escape_into(&mut out, message),
    }
    out
}

/// `v1 <id> <kind> <message>`.
pub(crate) fn encode_message(id: &str, reason: &Reason) -> String {
    let mut out = String::from(VERSION);
    out.push(' ');
    escape_into(&mut out, id);
    out.push(' ');
    out.push_str(&encode_reason(reason));
    out
}

/// Parses `<kind> <message>`.
pub(crate) fn decode_reason(payload: &[u8]) -> Option<Reason> {
    let mut fields = payload.split(|&byte| byte == b' ');
    let (Some(kind), Some(message), None) = (fields.next(), fields.next(), fields.next()) else {
        return None;
    };
    let kind = kind_from_str(kind)?;
    if message == b"-" {
        return Some(Reason::new(kind));
    }
    let message = unescape(message)?;
    if message.len() > MAX_MESSAGE_LEN {
        return None;
    }
    Some(Reason::with_message(kind, message))
}

/// Parses `v1 <id> <kind> <message>`; `None` for anything else.
pub(crate) fn decode_message(payload: &[u8]) -> Option<Message> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return None;
    }
    let mut fields = payload.splitn(3, |&byte| byte == b' ');
    let (Some(version), Some(id), Some(reason)) = (fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    if version != VERSION.as_bytes() {
        return None;
    }
    let id = unescape(id)?;
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return None;
    }
    let reason = decode_reason(reason)?;
    Some(Message { id, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(id: &str, reason: Reason) {
        let payload = encode_message(id, &reason);
        assert!(
            !payload.contains('\n') && payload.split(' ').count() == 4,
            "{payload:?}"
        );
        assert_eq!(
            decode_message(payload.as_bytes()),
            Some(Message {
                id: id.to_owned(),
                reason
            }),
            "{payload:?}"
        );
    }

    #[test]
    fn ids_and_messages_of_any_text_round_trip() {
        round_trip("job-1", Reason::new(ReasonKind::Manual));
        round_trip(
            "a b%c\nd\r\t\u{7f}é🦀",
            Reason::with_message(ReasonKind::Timeout, "x y"),
        );
        round_trip("-", Reason::with_message(ReasonKind::Signal, "-"));
        round_trip("%2D", Reason::with_message(ReasonKind::Condition, "%2D"));
        round_trip("id", Reason::with_message(ReasonKind::Dropped, ""));
        round_trip("id", Reason::with_message(ReasonKind::Superseded, " -- "));
        round_trip(&"i".repeat(MAX_ID_LEN), Reason::new(ReasonKind::Manual));
        round_trip(
            &"%".repeat(MAX_ID_LEN),
            Reason::with_message(ReasonKind::Manual, "%".repeat(MAX_MESSAGE_LEN)),
        );
    }

    #[test]
    fn escaping_uses_uppercase_hex_for_what_it_escapes_only() {
        assert_eq!(escape("a b%\n\u{1}é"), "a%20b%25%0A%01é");
        assert_eq!(
            encode_message("j 1", &Reason::with_message(ReasonKind::Manual, "-")),
            "v1 j%201 manual %2D"
        );
        assert_eq!(
            encode_message("j", &Reason::new(ReasonKind::Timeout)),
            "v1 j timeout -"
        );
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE_LEN);
        let sent = decode_message(
            encode_message("j", &Reason::with_message(ReasonKind::Manual, long)).as_bytes(),
        )
        .unwrap();
        let message = sent.reason.message().unwrap();
        assert_eq!(message.len(), MAX_MESSAGE_LEN);
        assert!(message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn anything_else_is_malformed() {
        let bad: &[&[u8]] = &[
            b"",
            b"v1",
            b"v1 job",
            b"v1 job manual",
            b"v2 job manual -",
            b"V1 job manual -",
            b"v1  manual -",
            b"v1 job Manual -",
            b"v1 job exploded -",
            b"v1 job manual a b",
            b"v1 job manual - extra",
            b"v1 job%2 manual -",
            b"v1 job%zz manual -",
            b"v1 job%2a manual -",
            b"v1 job manual %",
            b"v1 jo\nb manual -",
            b"v1 job manual tab\there",
            b"v1 job\x7f manual -",
            b"v1 \xff\xfe manual -",
            b"v1 %FF manual -",
            b"v1 job manual \xc3",
            b" v1 job manual -",
            b"v1 job manual -\n",
        ];
        for payload in bad {
            assert_eq!(
                decode_message(payload),
                None,
                "{:?}",
                String::from_utf8_lossy(payload)
            );
        }
        let long_id = format!("v1 {} manual -", "i".repeat(MAX_ID_LEN + 1));
        assert_eq!(decode_message(long_id.as_bytes()), None);
        let long_message = format!("v1 j manual {}", "m".repeat(MAX_MESSAGE_LEN + 1));
        assert_eq!(decode_message(long_message.as_bytes()), None);
        let huge = vec![b'a'; 1 << 20];
        assert_eq!(decode_message(&huge), None);
    }

    #[test]
    fn records_hold_the_reason_alone() {
        let reason = Reason::with_message(ReasonKind::Timeout, "5 s passed");
        let record = encode_reason(&reason);
        assert_eq!(record, "timeout 5%20s%20passed");
        assert_eq!(decode_reason(record.as_bytes()), Some(reason));
        assert_eq!(decode_reason(b"timeout"), None);
        assert_eq!(decode_reason(b"late -"), None);
    }
}
