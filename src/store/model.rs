//! What the store keeps: incidents, step runs, item runs, timeline events,
//! notice drafts. Plain serde records, JSON-encoded in sled.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Running,
    Waiting,
    Completed,
    Failed,
}

impl IncidentStatus {
    pub fn name(self) -> &'static str {
        match self {
            IncidentStatus::Running => "running",
            IncidentStatus::Waiting => "waiting",
            IncidentStatus::Completed => "completed",
            IncidentStatus::Failed => "failed",
        }
    }
    pub fn is_open(self) -> bool {
        matches!(self, IncidentStatus::Running | IncidentStatus::Waiting)
    }
}

/// How bad an incident is, sev1 (worst) to sev4; stored and shown as
/// `sev1`..`sev4`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Sev1,
    #[default]
    Sev2,
    Sev3,
    Sev4,
}

impl Severity {
    /// Turns per round on a limit incidents share: a sev1's calls go out
    /// 8 for a sev4's 1, and every incident gets a turn each round.
    pub fn weight(self) -> u32 {
        match self {
            Severity::Sev1 => 8,
            Severity::Sev2 => 4,
            Severity::Sev3 => 2,
            Severity::Sev4 => 1,
        }
    }

    pub const ALL: [Severity; 4] = [
        Severity::Sev1,
        Severity::Sev2,
        Severity::Sev3,
        Severity::Sev4,
    ];
    pub const NAMES: [&'static str; 4] = ["sev1", "sev2", "sev3", "sev4"];

    pub fn name(self) -> &'static str {
        Severity::NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.name() == s)
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Severity, String> {
        Severity::parse(s)
            .ok_or_else(|| format!("\"{s}\" is not one of {}", Severity::NAMES.join(", ")))
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub runbook: String,
    pub title: String,
    pub status: IncidentStatus,
    pub declared_at: DateTime<Utc>,
    pub declared_by: String,
    pub severity: Severity,
    pub inputs: Json,
    pub drill: bool,
    /// The runbook as declared, so a resume runs the same steps even if the
    /// file changed since.
    pub runbook_file: String,
    pub runbook_source: String,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Skipped,
}

impl StepStatus {
    pub fn name(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Failed | StepStatus::Skipped
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRun {
    pub status: StepStatus,
    pub attempts: u32,
    /// Number of for_each items, when the step fans out.
    pub items: Option<u32>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub output: Json,
    pub error: Option<String>,
    /// When a durable `wait` ends, so a resume sleeps only what is left.
    pub wake_at: Option<DateTime<Utc>>,
    /// A fan-out's items below this index may have started; none at or
    /// above it has. Written before the items it admits start (a fan-out
    /// writes no record per item before its call), so after a crash an
    /// item below it with no outcome may have made its call, which is
    /// sent again with the same idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_below: Option<u32>,
    /// The store's own: set on a stored record whose `output` is kept in a
    /// record of its own (`store::apart`), never on a run the store hands
    /// out. Last, so the stored form ends with it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_apart: bool,
}

impl Default for StepRun {
    fn default() -> Self {
        StepRun {
            status: StepStatus::Pending,
            attempts: 0,
            items: None,
            started_at: None,
            finished_at: None,
            output: Json::Null,
            error: None,
            wake_at: None,
            started_below: None,
            output_apart: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemRun {
    pub status: StepStatus,
    pub attempts: u32,
    pub idempotency_key: String,
    pub output: Json,
    pub error: Option<String>,
    pub already_done: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// As [`StepRun::output_apart`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_apart: bool,
}

impl ItemRun {
    /// An item not yet attempted, with the key every attempt sends.
    pub fn pending(idempotency_key: String) -> Self {
        ItemRun {
            status: StepStatus::Pending,
            attempts: 0,
            idempotency_key,
            output: Json::Null,
            error: None,
            already_done: false,
            started_at: None,
            finished_at: None,
            output_apart: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<u32>,
    pub actor: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Json::is_null")]
    pub data: Json,
}

/// An event before the store gives it a sequence number.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: super::EventKind,
    pub step: Option<String>,
    pub item: Option<u32>,
    pub actor: String,
    pub message: String,
    pub data: Json,
}

impl NewEvent {
    pub fn new(kind: super::EventKind, actor: &str, message: impl Into<String>) -> Self {
        NewEvent {
            kind,
            step: None,
            item: None,
            actor: actor.to_string(),
            message: message.into(),
            data: Json::Null,
        }
    }
    pub fn step(mut self, step: &str) -> Self {
        self.step = Some(step.to_string());
        self
    }
    pub fn item(mut self, item: Option<u32>) -> Self {
        self.item = item;
        self
    }
    pub fn data(mut self, data: Json) -> Self {
        self.data = data;
        self
    }
    /// Which credential the request came with, for the record: its label
    /// (`sha256:3f2a9c1b07de`, `QUENCH_API_TOKEN`, `slack`), never the credential.
    pub fn token(mut self, label: Option<&str>) -> Self {
        if let Some(label) = label {
            if !self.data.is_object() {
                self.data = Json::Object(Default::default());
            }
            self.data["token"] = Json::String(label.to_string());
        }
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoticeDraft {
    pub incident: String,
    pub step: String,
    pub audience: String,
    pub jurisdiction: Option<String>,
    pub template: String,
    pub version: u32,
    pub body: String,
    pub drafted_at: DateTime<Utc>,
    pub drafted_by: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
}

/// Everything recorded about one incident.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub incident: Incident,
    pub steps: BTreeMap<String, StepRun>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_severity_is_stored_and_read_as_the_text_it_always_was() {
        for s in Severity::ALL {
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(text, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<Severity>(&text).unwrap(), s);
            assert_eq!(s.name().parse::<Severity>(), Ok(s));
        }
        assert_eq!(Severity::default(), Severity::Sev2);
        assert!(Severity::Sev1 < Severity::Sev3, "sev1 is the most severe");
        assert_eq!(
            "sev5".parse::<Severity>(),
            Err("\"sev5\" is not one of sev1, sev2, sev3, sev4".to_string())
        );
    }
}
