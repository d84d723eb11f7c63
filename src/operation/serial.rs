//! The `serde` feature for the two structs whose JSON shape is not their Rust shape:
//! [`Progress`] (which adds its `fraction`) and [`OperationSnapshot`] (whose times become
//! milliseconds). The plain types (`OperationId`, `StatusKind`, `ReasonKind`, `StatusCounts`)
//! derive theirs where they are defined. The shape is documented, with an example, on
//! [`OperationSnapshot`].
//!
//! Serializing borrows (no copy of the snapshot); deserializing reads a private mirror of the
//! JSON shape and checks the times it holds.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{Deserializer, Error as _};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::{OperationId, OperationSnapshot, Progress, StatusKind};
use crate::reason::ReasonKind;

impl Serialize for Progress {
    /// `{"done": 3, "total": 10, "fraction": 0.3, "message": "..."}`; `total`, `fraction`
    /// and `message` are `null` when absent.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Progress", 4)?;
        s.serialize_field("done", &self.done)?;
        s.serialize_field("total", &self.total)?;
        s.serialize_field("fraction", &self.fraction())?;
        s.serialize_field("message", &self.message)?;
        s.end()
    }
}

/// What [`Progress`] reads: `fraction` is derived, so it is ignored (as any unknown field).
#[derive(Deserialize)]
struct ProgressFields {
    done: u64,
    total: Option<u64>,
    message: Option<Cow<'static, str>>,
}

impl<'de> Deserialize<'de> for Progress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Progress, D::Error> {
        let fields = ProgressFields::deserialize(deserializer)?;
        Ok(Progress {
            done: fields.done,
            total: fields.total,
            message: fields.message,
        })
    }
}

impl Serialize for OperationSnapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("OperationSnapshot", 10)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("parent", &self.parent)?;
        s.serialize_field("status", &self.status)?;
        s.serialize_field("reason_kind", &self.reason_kind)?;
        s.serialize_field("message", &self.message)?;
        s.serialize_field("progress", &self.progress)?;
        s.serialize_field("started_at_ms", &unix_ms(self.started_at))?;
        s.serialize_field("elapsed_ms", &(self.elapsed.as_secs_f64() * 1e3))?;
        s.serialize_field("finished_at_ms", &self.finished_at.map(unix_ms))?;
        s.end()
    }
}

/// What [`OperationSnapshot`] reads: its JSON shape.
#[derive(Deserialize)]
struct SnapshotFields {
    id: OperationId,
    name: Cow<'static, str>,
    parent: Option<OperationId>,
    status: StatusKind,
    reason_kind: Option<ReasonKind>,
    message: Option<String>,
    progress: Progress,
    started_at_ms: u64,
    elapsed_ms: f64,
    finished_at_ms: Option<u64>,
}

impl<'de> Deserialize<'de> for OperationSnapshot {
    /// # Errors
    ///
    /// Besides a field missing or of the wrong type: an `elapsed_ms` that is negative, not a
    /// number or too large for a `Duration`, and a time too far after 1970 for a
    /// `SystemTime`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<OperationSnapshot, D::Error> {
        let fields = SnapshotFields::deserialize(deserializer)?;
        let elapsed = Duration::try_from_secs_f64(fields.elapsed_ms / 1e3)
            .map_err(|_| D::Error::custom("elapsed_ms is not a duration"))?;
        let time = |ms: u64| {
            UNIX_EPOCH
                .checked_add(Duration::from_millis(ms))
                .ok_or_else(|| D::Error::custom("a time out of range"))
        };
        Ok(OperationSnapshot {
            id: fields.id,
            name: fields.name,
            parent: fields.parent,
            status: fields.status,
            reason_kind: fields.reason_kind,
            message: fields.message,
            progress: fields.progress,
            started_at: time(fields.started_at_ms)?,
            elapsed,
            finished_at: fields.finished_at_ms.map(time).transpose()?,
        })
    }
}

/// Milliseconds since the Unix epoch, rounded down; 0 for a time before it.
fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}
