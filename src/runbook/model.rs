//! The checked runbook model (format version 1).
//!
//! Built from YAML by `runbook::load`; only valid runbooks reach this shape,
//! so the engine never re-checks it.

use std::time::Duration;

use serde_json::Value as Json;

#[derive(Debug, Clone)]
pub struct Runbook {
    pub name: String,
    pub title: String,
    pub inputs: Vec<InputDecl>,
    pub steps: Vec<Step>,
}

impl Runbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The action steps, with the integration and action each calls.
    pub fn action_steps(&self) -> impl Iterator<Item = (&Step, &str, &str)> {
        self.steps.iter().filter_map(|s| match &s.kind {
            StepKind::Action {
                integration,
                action,
            } => Some((s, integration.as_str(), action.as_str())),
            _ => None,
        })
    }

    pub fn input(&self, name: &str) -> Option<&InputDecl> {
        self.inputs.iter().find(|i| i.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    String,
    Integer,
    Boolean,
    List,
    Timestamp,
}

impl InputType {
    pub const NAMES: [&'static str; 5] = ["string", "integer", "boolean", "list", "timestamp"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => InputType::String,
            "integer" => InputType::Integer,
            "boolean" => InputType::Boolean,
            "list" => InputType::List,
            "timestamp" => InputType::Timestamp,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Boolean => "boolean",
            InputType::List => "list",
            InputType::Timestamp => "timestamp",
        }
    }
}

#[derive(Debug, Clone)]
pub struct InputDecl {
    pub name: String,
    pub ty: InputType,
    pub required: bool,
    pub default: Option<Json>,
    pub description: Option<String>,
    /// The longest text (or list item) accepted, in characters; default
    /// `DEFAULT_MAX_LENGTH`.
    pub max_length: Option<usize>,
    /// The values it may take (each list item, or the string), when fixed.
    pub values: Option<Vocabulary>,
}

/// A closed set of values an input takes: listed in the runbook, or one
/// the rule table defines (`jurisdictions`, `data_elements`), by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    /// The rule table's vocabulary it names, if it names one.
    pub name: Option<String>,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Contain,
    Notify,
    Recover,
}

impl Phase {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "contain" => Some(Phase::Contain),
            "notify" => Some(Phase::Notify),
            "recover" => Some(Phase::Recover),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Phase::Contain => "contain",
            Phase::Notify => "notify",
            Phase::Recover => "recover",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Abort,
    Continue,
}

/// How often and how patiently an action is attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// The five kinds of step; a step is exactly one of them.
#[derive(Debug, Clone)]
pub enum StepKind {
    Action {
        integration: String,
        action: String,
    },
    Notice(NoticeSpec),
    Approval {
        approvers: Vec<String>,
        prompt: Option<String>,
    },
    Manual {
        assignee: Option<String>,
        instructions: String,
    },
    Wait(Duration),
}

impl StepKind {
    pub const KEYS: [&'static str; 5] = ["action", "notice", "approval", "manual", "wait"];

    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Action { .. } => "action",
            StepKind::Notice(_) => "notice",
            StepKind::Approval { .. } => "approval",
            StepKind::Manual { .. } => "manual",
            StepKind::Wait(_) => "wait",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NoticeSpec {
    pub audience: String,
    /// A context path (`inputs.jurisdictions`) or a literal list of codes.
    pub jurisdictions: Option<Jurisdictions>,
    /// Forces one template for every draft.
    pub template: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Jurisdictions {
    Path(String),
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    pub needs: Vec<String>,
    /// A dotted context path that must resolve to a list.
    pub for_each: Option<String>,
    pub concurrency: usize,
    pub with: Json,
    pub when: Option<String>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    pub on_failure: OnFailure,
    pub phase: Option<Phase>,
    pub description: Option<String>,
    /// An action step that re-reads a platform to prove containment.
    pub verify: Option<Verify>,
}

/// What a verification step checks in what it re-read: every item (of a
/// list, or of the lists a fan-out re-read) for which `remains` renders
/// true is access or a send that containment should have removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Verify {
    /// Per item: true when the item is still the tool's.
    pub remains: String,
    /// Per item: how to name it when it remains (default: its `id`).
    pub shows: Option<String>,
    /// What was verified, for people ("keys of {{inputs.tool}}").
    pub label: Option<String>,
}
