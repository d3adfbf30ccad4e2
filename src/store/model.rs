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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub runbook: String,
    pub title: String,
    pub status: IncidentStatus,
    pub declared_at: DateTime<Utc>,
    pub declared_by: String,
    pub severity: String,
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
    pub kind: &'static str,
    pub step: Option<String>,
    pub item: Option<u32>,
    pub actor: String,
    pub message: String,
    pub data: Json,
}

impl NewEvent {
    pub fn new(kind: &'static str, actor: &str, message: impl Into<String>) -> Self {
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
