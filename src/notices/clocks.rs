//! Regulatory notification clocks.
//!
//! The rules are data: `runbooks/notices/rules.yaml`, one rule per
//! (jurisdiction, recipient) obligation, each with its source. This module
//! loads that table with located diagnostics, says which rules apply to an
//! exposure, and computes when each notice is due. Everything here is pure:
//! "now" is always passed in.
//!
//! How deadlines are counted:
//! - hours are elapsed time: 72h is 72 real hours, whatever the wall clocks do;
//! - calendar days (`30d`) end at the same local wall-clock time N days later
//!   in the jurisdiction's zone, so a DST change in between moves the instant
//!   by an hour;
//! - business days (`3bd`) skip Saturdays, Sundays and the jurisdiction's
//!   listed public holidays (`holidays:` in the table), also at the same
//!   local time;
//! - a local time that falls in a DST gap moves forward by the gap; one that
//!   occurs twice is the earlier;
//! - on rules that allow a law-enforcement delay, the time paused after the
//!   start pushes the due time back by as much.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde_yaml::Value;

use crate::runbook::check::{kind_of, show, Checker};
use crate::runbook::diagnostic::{did_you_mean, Diagnostics};
use crate::runbook::load::is_id;
use crate::runbook::yaml::{YPath, YamlDoc};

/// Where the bundled table lives, for diagnostics.
pub const FILE: &str = "runbooks/notices/rules.yaml";
/// The bundled table.
pub const BUNDLED: &str = include_str!("../../runbooks/notices/rules.yaml");

/// The data elements a runbook can report as exposed (DESIGN.md).
pub const DATA_ELEMENTS: &[&str] = &[
    "name",
    "email",
    "phone",
    "postal_address",
    "purchase_history",
    "credentials",
    "ssn",
    "government_id",
    "financial_account",
    "payment_card",
    "health",
    "biometric",
    "precise_location",
];

/// A moment an incident records, from which a clock may start.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Moment {
    /// The breach happened.
    Occurred,
    /// The organisation discovered it (defaults to the declaration time).
    Discovered,
    /// Reasonably certain personal data was compromised, GDPR-style
    /// (defaults to the declaration time).
    Aware,
    /// New York: the written determination that the exposure was an
    /// inadvertent disclosure unlikely to cause misuse (GBL 899-aa(2)(a)).
    NyInadvertentDisclosureDetermined,
    /// Texas: the determination that a breach occurred (521.053(b)).
    TxBreachDetermined,
    /// Canada: the belief that the breach creates a real risk of
    /// significant harm (PIPEDA s. 10.1(1)).
    PipedaRealRiskDetermined,
    /// Australia: reasonable grounds to believe an eligible data breach
    /// happened (Privacy Act s. 26WK).
    AuEligibleBreachBelieved,
    /// Confirmed that personal data was affected (Brazil).
    Confirmed,
    /// The notifiability assessment was made (Singapore).
    Assessed,
    /// California residents were notified: the US-CA customers notice was
    /// recorded as sent (or the moment noted). California's AG copy runs
    /// from here (Civ. Code 1798.82(f) as amended by SB 446).
    UsCaResidentsNotified,
    /// A HIPAA covered entity notified the US Secretary of Health and Human
    /// Services; New York's AG copy runs from here (GBL 899-aa(9)).
    UsHhsNotified,
}

impl Moment {
    pub const ALL: [Moment; 11] = [
        Moment::Occurred,
        Moment::Discovered,
        Moment::Aware,
        Moment::NyInadvertentDisclosureDetermined,
        Moment::TxBreachDetermined,
        Moment::PipedaRealRiskDetermined,
        Moment::AuEligibleBreachBelieved,
        Moment::Confirmed,
        Moment::Assessed,
        Moment::UsCaResidentsNotified,
        Moment::UsHhsNotified,
    ];

    /// The four laws' own determinations, which one `determined` moment
    /// used to stand for.
    pub const DETERMINATIONS: [Moment; 4] = [
        Moment::NyInadvertentDisclosureDetermined,
        Moment::TxBreachDetermined,
        Moment::PipedaRealRiskDetermined,
        Moment::AuEligibleBreachBelieved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Moment::Occurred => "occurred",
            Moment::Discovered => "discovered",
            Moment::Aware => "aware",
            Moment::NyInadvertentDisclosureDetermined => "ny_inadvertent_disclosure_determined",
            Moment::TxBreachDetermined => "tx_breach_determined",
            Moment::PipedaRealRiskDetermined => "pipeda_real_risk_determined",
            Moment::AuEligibleBreachBelieved => "au_eligible_breach_believed",
            Moment::Confirmed => "confirmed",
            Moment::Assessed => "assessed",
            Moment::UsCaResidentsNotified => "us_ca_residents_notified",
            Moment::UsHhsNotified => "us_hhs_notified",
        }
    }

    pub fn parse(s: &str) -> Option<Moment> {
        Moment::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The moments a stored record stands for: incidents recorded before
    /// the determinations were told apart wrote `determined`, which meant
    /// all four, and keeps meaning that for them.
    pub fn recorded(s: &str) -> Vec<Moment> {
        match s {
            "determined" => Moment::DETERMINATIONS.to_vec(),
            other => Moment::parse(other).into_iter().collect(),
        }
    }
}

impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who receives the notice or report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Recipient {
    Authority,
    Individuals,
    AttorneyGeneral,
    ConsumerReportingAgencies,
    /// A duty with no recipient, such as an assessment.
    Internal,
}

impl Recipient {
    pub const ALL: [Recipient; 5] = [
        Recipient::Authority,
        Recipient::Individuals,
        Recipient::AttorneyGeneral,
        Recipient::ConsumerReportingAgencies,
        Recipient::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Recipient::Authority => "authority",
            Recipient::Individuals => "individuals",
            Recipient::AttorneyGeneral => "attorney_general",
            Recipient::ConsumerReportingAgencies => "consumer_reporting_agencies",
            Recipient::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<Recipient> {
        Recipient::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long after its start a notice is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    Hours(u32),
    Days(u32),
    BusinessDays(u32),
    /// No fixed deadline ("without undue delay", "as soon as practicable").
    Asap,
}

impl Deadline {
    /// `72h`, `30d`, `3bd` or `asap`.
    pub fn parse(s: &str) -> Option<Deadline> {
        if s == "asap" {
            return Some(Deadline::Asap);
        }
        let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
        let n: u32 = n.parse().ok()?;
        match unit {
            "h" => Some(Deadline::Hours(n)),
            "d" => Some(Deadline::Days(n)),
            "bd" => Some(Deadline::BusinessDays(n)),
            _ => None,
        }
    }

    /// When this deadline, counted from `start` in zone `tz`, falls; `None`
    /// for `asap` (and for dates past chrono's range). Business days skip
    /// weekends and `holidays` (local dates).
    pub fn due(
        self,
        start: DateTime<Utc>,
        tz: Tz,
        holidays: &BTreeSet<NaiveDate>,
    ) -> Option<DateTime<Utc>> {
        let local = start.with_timezone(&tz).naive_local();
        let end = match self {
            Deadline::Asap => return None,
            Deadline::Hours(h) => return start.checked_add_signed(TimeDelta::hours(h.into())),
            Deadline::Days(d) => local.checked_add_days(Days::new(d.into()))?,
            Deadline::BusinessDays(n) => {
                let mut t = local;
                for _ in 0..n {
                    t = t.checked_add_days(Days::new(1))?;
                    while matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
                        || holidays.contains(&t.date())
                    {
                        t = t.checked_add_days(Days::new(1))?;
                    }
                }
                t
            }
        };
        at_local(tz, end)
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deadline::Hours(n) => write!(f, "{n}h"),
            Deadline::Days(n) => write!(f, "{n}d"),
            Deadline::BusinessDays(n) => write!(f, "{n}bd"),
            Deadline::Asap => f.write_str("asap"),
        }
    }
}

/// The instant a local wall-clock time names in `tz`: the earlier one in a
/// DST fold; in a DST gap, the time moved forward by the (one-hour) gap.
fn at_local(tz: Tz, t: NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&t)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(t + TimeDelta::hours(1)))
                .earliest()
        })
        .map(|d| d.with_timezone(&Utc))
}

/// Which exposures start a rule's clock.
#[derive(Debug, Clone, PartialEq)]
pub enum Triggers {
    /// Any personal data at all (GDPR-family laws).
    AnyPersonalData,
    /// Matches when any one group does (US state laws list data elements).
    Groups(Vec<TriggerGroup>),
}

/// Every element of `all`, at least one of `any` (when not empty), and at
/// least `min_affected` people.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TriggerGroup {
    pub all: Vec<String>,
    pub any: Vec<String>,
    pub min_affected: u64,
    /// A named decision the team recorded (`note --exception NAME`): for
    /// criteria no data element expresses (Brazil's children's data, legal
    /// secrecy, large scale).
    pub decision: Option<String>,
}

impl Triggers {
    pub fn matches(
        &self,
        elements: &BTreeSet<String>,
        affected: u64,
        decided: &BTreeSet<String>,
    ) -> bool {
        if elements.is_empty() {
            return false;
        }
        match self {
            Triggers::AnyPersonalData => true,
            Triggers::Groups(groups) => groups.iter().any(|g| {
                g.all.iter().all(|e| elements.contains(e))
                    && (g.any.is_empty() || g.any.iter().any(|e| elements.contains(e)))
                    && affected >= g.min_affected
                    && g.decision.as_ref().is_none_or(|d| decided.contains(d))
            }),
        }
    }

    /// The decisions its groups may name.
    pub fn decisions(&self) -> impl Iterator<Item = &str> {
        let groups: &[TriggerGroup] = match self {
            Triggers::Groups(g) => g,
            Triggers::AnyPersonalData => &[],
        };
        groups.iter().filter_map(|g| g.decision.as_deref())
    }
}

/// A later report under the same obligation (GDPR Art. 33(4), Japan's final
/// report, China's 30-day summary), counted from the rule's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub deadline: Deadline,
    pub note: Option<String>,
}

/// One (jurisdiction, recipient) obligation.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub jurisdiction: String,
    pub recipient: Recipient,
    pub title: String,
    pub start: Moment,
    pub deadline: Deadline,
    pub phases: Vec<Phase>,
    /// Applies only when at least this many people are affected.
    pub min_affected: u64,
    pub triggers: Triggers,
    /// A law-enforcement delay pauses this clock.
    pub law_enforcement_delay: bool,
    /// When the runbook decides this named exception applies, the rule does not.
    pub exception: Option<String>,
    /// The rule applies only when this named exception applies.
    pub on_exception: Option<String>,
    /// The rule applies only when this boolean runbook input is true: a
    /// fact about the organisation (DFS-regulated, HIPAA covered entity).
    pub when_input: Option<String>,
    /// The duty binds the organisation wherever the affected people live
    /// (NY DFS 500.17), so no resident of the jurisdiction is needed.
    pub any_residence: bool,
    /// The rule applies only when the incident must also be notified to a
    /// government body under another rule (NY DFS 500.1(g)(1)).
    pub with_government_notice: bool,
    pub effective_from: Option<NaiveDate>,
    pub effective_until: Option<NaiveDate>,
    pub source: String,
    pub note: Option<String>,
    /// The jurisdiction's zone, in which days are counted.
    pub timezone: Tz,
    /// The jurisdiction's public holidays, skipped by business days.
    pub holidays: std::sync::Arc<BTreeSet<NaiveDate>>,
}

/// What an incident exposed, as the runbook learned it.
#[derive(Debug, Clone, Default)]
pub struct Exposure {
    /// Jurisdiction codes where affected people live.
    pub jurisdictions: BTreeSet<String>,
    /// Data element names (see [`DATA_ELEMENTS`]).
    pub data_elements: BTreeSet<String>,
    /// Approximate number of people affected.
    pub affected: u64,
    /// Named exceptions the runbook decided apply (e.g. `inadvertent_disclosure`).
    pub exceptions: BTreeSet<String>,
    /// People affected per jurisdiction (input `residents`); a
    /// jurisdiction without one counts `affected`.
    pub residents: std::collections::BTreeMap<String, u64>,
    /// The runbook's boolean inputs that are true (`when_input`).
    pub flags: BTreeSet<String>,
}

impl Exposure {
    /// How many people a jurisdiction's thresholds count, and where the
    /// number comes from: its residents, else the total.
    pub fn count_for(&self, jurisdiction: &str) -> (u64, &'static str) {
        match self.residents.get(jurisdiction) {
            Some(n) => (*n, "residents"),
            None => (self.affected, "records"),
        }
    }
}

impl Rule {
    /// Whether the rule is in force on `on` (both bounds inclusive).
    pub fn in_force(&self, on: NaiveDate) -> bool {
        self.effective_from.is_none_or(|d| d <= on) && self.effective_until.is_none_or(|d| on <= d)
    }

    /// The jurisdiction's date of this rule's start moment (else of the
    /// declaration), against which its effective dates are compared.
    pub fn local_date(&self, moments: &Moments) -> NaiveDate {
        let at = moments.get(self.start).unwrap_or(moments.declared_at);
        at.with_timezone(&self.timezone).date_naive()
    }

    /// Whether the rule applies to an exposure on the date `on`.
    pub fn applies(&self, e: &Exposure, on: NaiveDate) -> bool {
        let (count, _) = e.count_for(&self.jurisdiction);
        (self.any_residence || e.jurisdictions.contains(&self.jurisdiction))
            && self.when_input.as_ref().is_none_or(|f| e.flags.contains(f))
            && self.in_force(on)
            && count >= self.min_affected
            && self
                .exception
                .as_ref()
                .is_none_or(|x| !e.exceptions.contains(x))
            && self
                .on_exception
                .as_ref()
                .is_none_or(|x| e.exceptions.contains(x))
            && self
                .triggers
                .matches(&e.data_elements, count, &e.exceptions)
    }

    /// This rule's clock for an incident at `now`.
    pub fn clock(&self, moments: &Moments, pauses: &[Pause], now: DateTime<Utc>) -> Clock<'_> {
        let Some(start) = moments.get(self.start) else {
            return Clock {
                rule: self,
                status: Status::NotStarted,
                start: None,
                due: None,
                left: None,
                paused: TimeDelta::zero(),
                phases: self
                    .phases
                    .iter()
                    .map(|phase| PhaseClock {
                        phase,
                        due: None,
                        left: None,
                        overdue: false,
                    })
                    .collect(),
            };
        };
        let pauses: &[Pause] = if self.law_enforcement_delay {
            pauses
        } else {
            &[]
        };
        let due_of = |d: Deadline| {
            d.due(start, self.timezone, &self.holidays)
                .map(|due| extend(start, due, pauses, now))
        };
        let main = due_of(self.deadline);
        let phases = self
            .phases
            .iter()
            .map(|phase| {
                let due = due_of(phase.deadline).map(|(d, _)| d);
                PhaseClock {
                    phase,
                    due,
                    left: due.map(|d| d - now),
                    overdue: due.is_some_and(|d| now > d),
                }
            })
            .collect();
        let (due, paused) = match main {
            Some((due, paused)) => (Some(due), paused),
            None => (None, TimeDelta::zero()),
        };
        let paused_now = pauses
            .iter()
            .any(|p| p.from <= now && p.until.is_none_or(|u| now < u));
        let status = match due {
            None => Status::Open,
            Some(d) if now > d => Status::Overdue,
            Some(_) if paused_now => Status::Paused,
            Some(_) => Status::Running,
        };
        Clock {
            rule: self,
            status,
            start: Some(start),
            due,
            left: due.map(|d| d - now),
            paused,
            phases,
        }
    }
}

/// `due` pushed back by the time paused between `start` and it, and that time.
/// An open pause counts until `now`; overlapping pauses count once.
fn extend(
    start: DateTime<Utc>,
    mut due: DateTime<Utc>,
    pauses: &[Pause],
    now: DateTime<Utc>,
) -> (DateTime<Utc>, TimeDelta) {
    let mut spans: Vec<_> = pauses
        .iter()
        .map(|p| (p.from.max(start), p.until.unwrap_or(now)))
        .collect();
    spans.sort();
    let mut paused = TimeDelta::zero();
    let mut counted_until = start;
    for (from, until) in spans {
        let from = from.max(counted_until);
        if from >= due {
            break;
        }
        if until > from {
            due += until - from;
            paused += until - from;
            counted_until = until;
        }
    }
    (due, paused)
}

/// The moments an incident has recorded. `discovered` and `aware` default
/// to the declaration time.
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    pub declared_at: DateTime<Utc>,
    pub recorded: BTreeMap<Moment, DateTime<Utc>>,
}

impl Moments {
    pub fn new(declared_at: DateTime<Utc>) -> Self {
        Moments {
            declared_at,
            recorded: BTreeMap::new(),
        }
    }

    pub fn with(mut self, moment: Moment, at: DateTime<Utc>) -> Self {
        self.recorded.insert(moment, at);
        self
    }

    pub fn get(&self, moment: Moment) -> Option<DateTime<Utc>> {
        match (self.recorded.get(&moment), moment) {
            (Some(t), _) => Some(*t),
            (None, Moment::Discovered | Moment::Aware) => Some(self.declared_at),
            (None, _) => None,
        }
    }
}

/// A law-enforcement delay; `until: None` while it lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pause {
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The start moment is not recorded yet (e.g. `determined`).
    NotStarted,
    /// Started, with no fixed deadline (`asap`).
    Open,
    Running,
    /// A law-enforcement delay holds the clock now.
    Paused,
    Overdue,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::NotStarted => "not started",
            Status::Open => "open",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Overdue => "overdue",
        })
    }
}

/// A rule's clock at some "now".
#[derive(Debug, Clone, PartialEq)]
pub struct Clock<'r> {
    pub rule: &'r Rule,
    pub status: Status,
    pub start: Option<DateTime<Utc>>,
    /// `None` when not started, or for `asap` rules.
    pub due: Option<DateTime<Utc>>,
    /// `due - now`: negative once overdue.
    pub left: Option<TimeDelta>,
    /// Paused time that pushed `due` back.
    pub paused: TimeDelta,
    pub phases: Vec<PhaseClock<'r>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhaseClock<'r> {
    pub phase: &'r Phase,
    pub due: Option<DateTime<Utc>>,
    pub left: Option<TimeDelta>,
    pub overdue: bool,
}

impl Clock<'_> {
    pub fn overdue(&self) -> bool {
        self.status == Status::Overdue
    }

    /// One line for people: status, time left, due time in the
    /// jurisdiction's zone.
    pub fn describe(&self) -> String {
        let local = |d: DateTime<Utc>| {
            d.with_timezone(&self.rule.timezone)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string()
        };
        match (self.status, self.due, self.left) {
            (Status::NotStarted, ..) => format!("not started (no `{}` recorded)", self.rule.start),
            (Status::Open, ..) => "open: no fixed deadline, as soon as possible".into(),
            (Status::Overdue, Some(due), Some(left)) => {
                format!("overdue by {}, was due {}", span(-left), local(due))
            }
            (Status::Paused, Some(due), Some(left)) => format!(
                "paused (law-enforcement delay): at least {} left, due {} or later",
                span(left),
                local(due)
            ),
            (_, Some(due), Some(left)) => format!("{} left, due {}", span(left), local(due)),
            (status, ..) => status.to_string(),
        }
    }
}

/// A duration for people: `2d 3h`, `5h 12m`, `40m`.
pub fn span(d: TimeDelta) -> String {
    let m = d.num_minutes().max(0);
    let (days, hours, mins) = (m / 1440, m / 60 % 24, m % 60);
    match (days, hours) {
        (0, 0) => format!("{mins}m"),
        (0, _) => format!("{hours}h {mins}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// The checked rule table.
#[derive(Debug, Clone)]
pub struct RuleTable {
    pub rules: Vec<Rule>,
}

impl RuleTable {
    /// The table compiled into the binary.
    pub fn bundled() -> Result<RuleTable, Diagnostics> {
        RuleTable::load(FILE, BUNDLED)
    }

    /// Loads and checks a table; every problem comes back located.
    pub fn load(file: &str, src: &str) -> Result<RuleTable, Diagnostics> {
        let doc = YamlDoc::parse(file, src).map_err(|d| Diagnostics(vec![d]))?;
        let mut c = Checker::new(&doc);
        let table = read_table(&mut c);
        match table {
            Some(t) if c.diags.is_empty() => Ok(t),
            _ => Err(Diagnostics(c.diags).sorted()),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// A jurisdiction's zone (every jurisdiction has rules, so it has one).
    pub fn zone(&self, jurisdiction: &str) -> Option<Tz> {
        self.rules
            .iter()
            .find(|r| r.jurisdiction == jurisdiction)
            .map(|r| r.timezone)
    }

    /// The rules that apply to an exposure on the date `on`, in table order.
    pub fn applicable(&self, e: &Exposure, on: NaiveDate) -> Vec<&Rule> {
        self.select(e, |_| on)
    }

    /// The rules that apply, each judged on its own date; a rule that needs
    /// another government notice (`with_government_notice`) applies when a
    /// rule that does not need one notifies an authority or attorney general.
    fn select(&self, e: &Exposure, on: impl Fn(&Rule) -> NaiveDate) -> Vec<&Rule> {
        let applying: Vec<&Rule> = self.rules.iter().filter(|r| r.applies(e, on(r))).collect();
        let notified = applying.iter().any(|r| {
            !r.with_government_notice
                && matches!(
                    r.recipient,
                    Recipient::Authority | Recipient::AttorneyGeneral
                )
        });
        applying
            .into_iter()
            .filter(|r| notified || !r.with_government_notice)
            .collect()
    }

    /// The clock of every rule that applies. Whether a rule is in force is
    /// judged on the jurisdiction's own date of the rule's start moment (a
    /// California breach found 2025-12-31 at 17:00 PST is under the 2025
    /// rule, although it is 2026 in UTC); a start not yet recorded counts
    /// from the declaration.
    pub fn clocks(
        &self,
        e: &Exposure,
        moments: &Moments,
        pauses: &[Pause],
        now: DateTime<Utc>,
    ) -> Vec<Clock<'_>> {
        self.select(e, |r| r.local_date(moments))
            .into_iter()
            .map(|r| r.clock(moments, pauses, now))
            .collect()
    }
}

const TOP_KEYS: &[&str] = &["version", "timezones", "holidays", "rules"];
const RULE_KEYS: &[&str] = &[
    "id",
    "jurisdiction",
    "recipient",
    "title",
    "start",
    "deadline",
    "phases",
    "min_affected",
    "triggers",
    "law_enforcement_delay",
    "exception",
    "on_exception",
    "when_input",
    "any_residence",
    "with_government_notice",
    "effective_from",
    "effective_until",
    "source",
    "note",
];
const RULE_REQUIRED: &[&str] = &[
    "id",
    "jurisdiction",
    "recipient",
    "title",
    "start",
    "deadline",
    "triggers",
    "source",
];
const PHASE_KEYS: &[&str] = &["name", "deadline", "note"];
const GROUP_KEYS: &[&str] = &["all", "any", "min_affected", "decision"];
const DEADLINE_HINT: &str = "write 72h, 30d, 3bd (business days) or asap";

fn jurisdiction_codes() -> Vec<&'static str> {
    super::JURISDICTIONS.iter().map(|(c, _)| *c).collect()
}

fn read_table(c: &mut Checker) -> Option<RuleTable> {
    let doc = c.doc;
    let root = YPath::root();
    let top = c.map(
        &root,
        &doc.value,
        "the rule table",
        TOP_KEYS,
        &["version", "timezones", "rules"],
    )?;
    if let Some(v) = top.get("version") {
        if v.as_u64() != Some(1) {
            c.error(
                &root.key("version"),
                format!("unsupported version {}, expected 1", show(v)),
            );
        }
    }
    let zones = top
        .get("timezones")
        .map(|v| read_zones(c, &root.key("timezones"), v))
        .unwrap_or_default();
    let holidays = top
        .get("holidays")
        .map(|v| read_holidays(c, &root.key("holidays"), v))
        .unwrap_or_default();
    let mut rules = Vec::new();
    let p = root.key("rules");
    match top.get("rules") {
        Some(Value::Sequence(items)) => {
            let mut ids = BTreeSet::new();
            for (i, v) in items.iter().enumerate() {
                let Some(mut r) = read_rule(c, &p.index(i), v, &zones) else {
                    continue;
                };
                if let Some(h) = holidays.get(&r.jurisdiction) {
                    r.holidays = h.clone();
                }
                if !ids.insert(r.id.clone()) {
                    c.error(
                        &p.index(i).key("id"),
                        format!("rule id \"{}\" is used twice", r.id),
                    );
                }
                rules.push(r);
            }
        }
        Some(other) => c.error(
            &p,
            format!("`rules` must be a list, found {}", kind_of(other)),
        ),
        None => {}
    }
    Some(RuleTable { rules })
}

fn read_zones(c: &mut Checker, path: &YPath, v: &Value) -> BTreeMap<String, Tz> {
    let codes = jurisdiction_codes();
    let mut zones = BTreeMap::new();
    let Some(m) = c.map(path, v, "`timezones`", &codes, &[]) else {
        return zones;
    };
    for (k, v) in m {
        let Value::String(code) = k else { continue };
        let p = path.key(code);
        let Some(name) = c.string(&p, v, "a time zone") else {
            continue;
        };
        match name.parse::<Tz>() {
            Ok(tz) => {
                zones.insert(code.clone(), tz);
            }
            Err(_) => {
                c.error_hint(
                    &p,
                    format!("unknown time zone \"{name}\""),
                    "use an IANA zone name such as Europe/Brussels",
                );
                // A stand-in, so the rules of this jurisdiction raise no
                // second error; the table fails to load anyway.
                zones.insert(code.clone(), Tz::UTC);
            }
        }
    }
    zones
}

/// `holidays: {CODE: {source, dates: [YYYY-MM-DD, ...]}}`.
fn read_holidays(
    c: &mut Checker,
    path: &YPath,
    v: &Value,
) -> BTreeMap<String, std::sync::Arc<BTreeSet<NaiveDate>>> {
    let codes = jurisdiction_codes();
    let mut out = BTreeMap::new();
    let Some(m) = c.map(path, v, "`holidays`", &codes, &[]) else {
        return out;
    };
    for (k, v) in m {
        let Value::String(code) = k else { continue };
        let p = path.key(code);
        let Some(cal) = c.map(
            &p,
            v,
            "a holiday calendar",
            &["source", "dates"],
            &["source", "dates"],
        ) else {
            continue;
        };
        if let Some(src) = cal.get("source") {
            c.string(&p.key("source"), src, "a source URL");
        }
        let mut dates = BTreeSet::new();
        match cal.get("dates") {
            Some(Value::Sequence(items)) => {
                for (i, d) in items.iter().enumerate() {
                    if let Some(d) = read_date(c, &p.key("dates").index(i), d) {
                        dates.insert(d);
                    }
                }
            }
            Some(other) => c.error(
                &p.key("dates"),
                format!(
                    "`dates` must be a list of YYYY-MM-DD, found {}",
                    kind_of(other)
                ),
            ),
            None => {}
        }
        out.insert(code.clone(), std::sync::Arc::new(dates));
    }
    out
}

/// A string that must be one of `allowed`.
fn choice<'l>(
    c: &mut Checker,
    path: &YPath,
    v: &Value,
    what: &str,
    allowed: &[&'l str],
) -> Option<&'l str> {
    let s = c.string(path, v, what)?;
    if let Some(found) = allowed.iter().find(|a| **a == s) {
        return Some(found);
    }
    let hint = match did_you_mean(&s, allowed.iter().copied()) {
        Some(m) => format!("did you mean `{m}`?"),
        None => format!("one of: {}", allowed.join(", ")),
    };
    c.error_hint(path, format!("unknown {what} \"{s}\""), hint);
    None
}

fn read_deadline(c: &mut Checker, path: &YPath, v: &Value) -> Option<Deadline> {
    let s = c.string(path, v, "a deadline")?;
    let d = Deadline::parse(&s);
    if d.is_none() {
        c.error_hint(path, format!("invalid deadline \"{s}\""), DEADLINE_HINT);
    }
    d
}

fn read_date(c: &mut Checker, path: &YPath, v: &Value) -> Option<NaiveDate> {
    let s = c.string(path, v, "a date")?;
    let d = NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok();
    if d.is_none() {
        c.error_hint(path, format!("invalid date \"{s}\""), "write YYYY-MM-DD");
    }
    d
}

fn read_name(c: &mut Checker, path: &YPath, v: &Value, what: &str) -> Option<String> {
    let s = c.string(path, v, what)?;
    if s.is_empty() || !s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_') {
        c.error(path, format!("{what} \"{s}\" must use only a-z and _"));
        return None;
    }
    Some(s)
}

fn read_rule(
    c: &mut Checker,
    path: &YPath,
    v: &Value,
    zones: &BTreeMap<String, Tz>,
) -> Option<Rule> {
    let m = c.map(path, v, "a rule", RULE_KEYS, RULE_REQUIRED)?;
    let codes = jurisdiction_codes();
    let moments = Moment::ALL.map(Moment::as_str);
    let recipients = Recipient::ALL.map(Recipient::as_str);
    let at = |k: &str| (m.get(k), path.key(k));

    let id = match at("id") {
        (Some(v), p) => c.string(&p, v, "a rule id").filter(|id| {
            let ok = is_id(id);
            if !ok {
                c.error(&p, format!("rule id \"{id}\" must use only a-z, 0-9 and -"));
            }
            ok
        }),
        _ => None,
    };
    let jurisdiction = match at("jurisdiction") {
        (Some(v), p) => choice(c, &p, v, "jurisdiction", &codes),
        _ => None,
    };
    let timezone = jurisdiction.and_then(|j| {
        let tz = zones.get(j).copied();
        if tz.is_none() {
            c.error(
                &path.key("jurisdiction"),
                format!("jurisdiction {j} has no entry under `timezones`"),
            );
        }
        tz
    });
    let recipient = match at("recipient") {
        (Some(v), p) => choice(c, &p, v, "recipient", &recipients).and_then(Recipient::parse),
        _ => None,
    };
    let title = match at("title") {
        (Some(v), p) => c.string(&p, v, "`title`"),
        _ => None,
    };
    let start = match at("start") {
        (Some(v), p) => choice(c, &p, v, "start moment", &moments).and_then(Moment::parse),
        _ => None,
    };
    let deadline = match at("deadline") {
        (Some(v), p) => read_deadline(c, &p, v),
        _ => None,
    };
    let phases = match at("phases") {
        (Some(v), p) => read_phases(c, &p, v),
        _ => Vec::new(),
    };
    let min_affected = match at("min_affected") {
        (Some(v), p) => c.uint(&p, v, "`min_affected`").unwrap_or(0),
        _ => 0,
    };
    let triggers = match at("triggers") {
        (Some(v), p) => read_triggers(c, &p, v),
        _ => None,
    };
    let law_enforcement_delay = match at("law_enforcement_delay") {
        (Some(v), p) => c.boolean(&p, v, "`law_enforcement_delay`").unwrap_or(false),
        _ => false,
    };
    let exception = match at("exception") {
        (Some(v), p) => read_name(c, &p, v, "an exception name"),
        _ => None,
    };
    let on_exception = match at("on_exception") {
        (Some(v), p) => read_name(c, &p, v, "an exception name"),
        _ => None,
    };
    let when_input = match at("when_input") {
        (Some(v), p) => read_name(c, &p, v, "an input name"),
        _ => None,
    };
    let any_residence = match at("any_residence") {
        (Some(v), p) => c.boolean(&p, v, "`any_residence`").unwrap_or(false),
        _ => false,
    };
    let with_government_notice = match at("with_government_notice") {
        (Some(v), p) => c
            .boolean(&p, v, "`with_government_notice`")
            .unwrap_or(false),
        _ => false,
    };
    let effective_from = match at("effective_from") {
        (Some(v), p) => read_date(c, &p, v),
        _ => None,
    };
    let effective_until = match at("effective_until") {
        (Some(v), p) => read_date(c, &p, v),
        _ => None,
    };
    if let (Some(from), Some(until)) = (effective_from, effective_until) {
        if until < from {
            c.error(
                &path.key("effective_until"),
                format!("`effective_until` {until} is before `effective_from` {from}"),
            );
        }
    }
    let source = match at("source") {
        (Some(v), p) => c.string(&p, v, "`source`").filter(|s| {
            let ok = s.starts_with("https://") || s.starts_with("http://");
            if !ok {
                c.error_hint(
                    &p,
                    "`source` must be a URL",
                    "cite the statute or regulator page",
                );
            }
            ok
        }),
        _ => None,
    };
    let note = match at("note") {
        (Some(v), p) => c.string(&p, v, "`note`"),
        _ => None,
    };
    Some(Rule {
        id: id?,
        jurisdiction: jurisdiction?.to_string(),
        recipient: recipient?,
        title: title?,
        start: start?,
        deadline: deadline?,
        phases,
        min_affected,
        triggers: triggers?,
        law_enforcement_delay,
        exception,
        on_exception,
        when_input,
        any_residence,
        with_government_notice,
        effective_from,
        effective_until,
        source: source?,
        note,
        timezone: timezone?,
        holidays: Default::default(),
    })
}

fn read_phases(c: &mut Checker, path: &YPath, v: &Value) -> Vec<Phase> {
    let Value::Sequence(items) = v else {
        c.error(
            path,
            format!("`phases` must be a list, found {}", kind_of(v)),
        );
        return Vec::new();
    };
    let mut phases: Vec<Phase> = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(m) = c.map(&p, v, "a phase", PHASE_KEYS, &["name", "deadline"]) else {
            continue;
        };
        let name = m
            .get("name")
            .and_then(|v| read_name(c, &p.key("name"), v, "a phase name"));
        let deadline = m
            .get("deadline")
            .and_then(|v| read_deadline(c, &p.key("deadline"), v));
        let note = m
            .get("note")
            .and_then(|v| c.string(&p.key("note"), v, "`note`"));
        if let (Some(name), Some(deadline)) = (name, deadline) {
            if phases.iter().any(|ph| ph.name == name) {
                c.error(&p.key("name"), format!("phase \"{name}\" is listed twice"));
            }
            phases.push(Phase {
                name,
                deadline,
                note,
            });
        }
    }
    phases
}

fn read_triggers(c: &mut Checker, path: &YPath, v: &Value) -> Option<Triggers> {
    let items = match v {
        Value::String(s) if s == "any_personal_data" => return Some(Triggers::AnyPersonalData),
        Value::Sequence(items) if !items.is_empty() => items,
        _ => {
            c.error_hint(
                path,
                format!("invalid `triggers` {}", show(v)),
                "write any_personal_data, or a list of {all: [...], any: [...], min_affected: N}",
            );
            return None;
        }
    };
    let mut groups = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(m) = c.map(&p, v, "a trigger group", GROUP_KEYS, &[]) else {
            continue;
        };
        if m.is_empty() {
            c.error(
                &p,
                "a trigger group needs `all`, `any`, `min_affected` or `decision`",
            );
        }
        let mut elements = |key: &str| -> Vec<String> {
            let Some(v) = m.get(key) else {
                return Vec::new();
            };
            let kp = p.key(key);
            let Value::Sequence(list) = v else {
                c.error(&kp, format!("`{key}` must be a list, found {}", kind_of(v)));
                return Vec::new();
            };
            list.iter()
                .enumerate()
                .filter_map(|(j, e)| choice(c, &kp.index(j), e, "data element", DATA_ELEMENTS))
                .map(str::to_string)
                .collect()
        };
        let all = elements("all");
        let any = elements("any");
        let min_affected = m
            .get("min_affected")
            .and_then(|v| c.uint(&p.key("min_affected"), v, "`min_affected`"))
            .unwrap_or(0);
        let decision = m
            .get("decision")
            .and_then(|v| read_name(c, &p.key("decision"), v, "a decision name"));
        groups.push(TriggerGroup {
            all,
            any,
            min_affected,
            decision,
        });
    }
    Some(Triggers::Groups(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RuleTable {
        match RuleTable::bundled() {
            Ok(t) => t,
            Err(d) => panic!("bundled rule table does not load:\n{d}"),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    fn exposure(jurisdictions: &[&str], elements: &[&str], affected: u64) -> Exposure {
        Exposure {
            residents: Default::default(),
            jurisdictions: jurisdictions.iter().map(|s| s.to_string()).collect(),
            data_elements: elements.iter().map(|s| s.to_string()).collect(),
            affected,
            exceptions: BTreeSet::new(),
            flags: BTreeSet::new(),
        }
    }

    fn ids(rules: &[&Rule]) -> Vec<String> {
        rules.iter().map(|r| r.id.clone()).collect()
    }

    fn jurisdictions_of(rules: &[&Rule]) -> BTreeSet<String> {
        rules.iter().map(|r| r.jurisdiction.clone()).collect()
    }

    const ALL: &[&str] = &[
        "EU", "UK", "US-CA", "US-NY", "US-TX", "CA", "BR", "CN", "SG", "AU", "JP", "IN",
    ];
    const MARKETING_LIST: &[&str] = &["name", "email", "purchase_history"];

    #[test]
    fn bundled_table_loads_and_every_rule_has_a_source() {
        let t = table();
        assert!(t.rules.len() >= 20, "{} rules", t.rules.len());
        for r in &t.rules {
            assert!(r.source.starts_with("http"), "{}: {}", r.id, r.source);
            assert!(!r.title.is_empty(), "{}", r.id);
        }
        for (code, _) in crate::notices::JURISDICTIONS {
            assert!(
                t.rules.iter().any(|r| r.jurisdiction == *code),
                "no rule for {code}"
            );
        }
        let gdpr = t.get("eu-gdpr-authority").expect("GDPR Art. 33 rule");
        assert_eq!(gdpr.deadline, Deadline::Hours(72));
        assert_eq!(gdpr.start, Moment::Aware);
        assert_eq!(gdpr.timezone, chrono_tz::Europe::Brussels);
    }

    #[test]
    fn load_errors_are_located() {
        let src = "version: 1\ntimezones:\n  EU: Europe/Brusels\nrules:\n  - id: eu-x\n    jurisdiction: EU\n    recipient: authorty\n    title: t\n    start: aware\n    deadline: 3w\n    triggers:\n      - { all: [name], any: [ssn, pasport] }\n    sorce: https://example.org\n";
        let err = RuleTable::load("rules.yaml", src).expect_err("broken table");
        let text = err.to_string();
        assert!(!text.contains("no entry under `timezones`"), "{text}");
        for want in [
            "rules.yaml:3:7: error: unknown time zone \"Europe/Brusels\"",
            "rules.yaml:7:16: error: unknown recipient \"authorty\"",
            "rules.yaml:10:15: error: invalid deadline \"3w\"",
            "rules.yaml:12:35: error: unknown data element \"pasport\"",
            "rules.yaml:13:5: error: unknown key `sorce` in a rule",
            "missing the required key `source`",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(text.contains("did you mean `authority`?"), "{text}");
    }

    #[test]
    fn marketing_list_triggers_gdpr_family_but_not_us_states() {
        let t = table();
        let e = exposure(ALL, MARKETING_LIST, 100);
        let got = jurisdictions_of(&t.applicable(&e, date("2026-06-01")));
        for j in ["EU", "UK", "CA", "AU", "CN"] {
            assert!(got.contains(j), "{j} missing from {got:?}");
        }
        // US states list data elements; JP needs scale or sensitive data;
        // Brazil needs relevant risk (ANPD Res. 15/2024 art. 4); India's
        // rule is not in force yet.
        for j in ["US-CA", "US-NY", "US-TX", "JP", "BR", "IN"] {
            assert!(!got.contains(j), "{j} should not apply: {got:?}");
        }
        // Singapore: assess every breach, notify the PDPC only at scale.
        let sg = ids(&t.applicable(&exposure(&["SG"], MARKETING_LIST, 100), date("2026-06-01")));
        assert_eq!(sg, ["sg-pdpa-assessment"]);
        // Nothing exposed, nothing to notify.
        assert!(t
            .applicable(&exposure(ALL, &[], 100), date("2026-06-01"))
            .is_empty());
    }

    #[test]
    fn ssn_or_credentials_trigger_us_state_laws() {
        let t = table();
        let mut elements = MARKETING_LIST.to_vec();
        elements.push("ssn");
        let got = ids(&t.applicable(&exposure(ALL, &elements, 100), date("2026-06-01")));
        for id in [
            "us-ca-individuals",
            "us-ny-individuals",
            "us-tx-individuals",
        ] {
            assert!(got.iter().any(|g| g == id), "{id} missing from {got:?}");
        }
        // Username/email plus password alone is enough in CA and NY, not in TX.
        let e = exposure(&["US-CA", "US-NY", "US-TX"], &["email", "credentials"], 10);
        let got = jurisdictions_of(&t.applicable(&e, date("2026-06-01")));
        assert_eq!(got, ["US-CA", "US-NY"].map(String::from).into());
        // An SSN without a name does not trigger the "name plus" laws.
        let e = exposure(&["US-TX"], &["ssn"], 10);
        assert!(t.applicable(&e, date("2026-06-01")).is_empty());
    }

    #[test]
    fn new_york_and_texas_need_no_name() {
        let t = table();
        let on = date("2026-06-01");
        // New York: an email or a phone number identifies the person.
        for elements in [
            &["email", "ssn"][..],
            &["phone", "health"],
            &["email", "biometric"],
        ] {
            let got = ids(&t.applicable(&exposure(&["US-NY"], elements, 10), on));
            assert!(
                got.iter().any(|g| g == "us-ny-individuals"),
                "{elements:?}: {got:?}"
            );
        }
        // Texas: identifying health information alone.
        let got = ids(&t.applicable(&exposure(&["US-TX"], &["health"], 10), on));
        assert!(got.iter().any(|g| g == "us-tx-individuals"), "{got:?}");
        // Neither fires on a marketing list, nor Texas on an email and an
        // SSN (its (a)(2)(A) needs the name).
        assert!(t
            .applicable(&exposure(&["US-NY", "US-TX"], MARKETING_LIST, 10_000), on)
            .is_empty());
        assert!(t
            .applicable(&exposure(&["US-TX"], &["email", "ssn"], 10), on)
            .is_empty());
    }

    #[test]
    fn singapore_deems_harm_for_prescribed_classes_only() {
        let t = table();
        let on = date("2026-06-01");
        let sg = |elements: &[&str], n: u64| {
            ids(&t.applicable(&exposure(&["SG"], elements, n), on))
                .into_iter()
                .filter(|i| i != "sg-pdpa-assessment")
                .collect::<Vec<_>>()
        };
        // An identification number alone is no prescribed class.
        assert!(sg(&["government_id"], 10).is_empty());
        assert!(sg(&["health"], 10).is_empty(), "health with no identifier");
        for notifiable in [
            &["name", "health"][..],
            &["government_id", "financial_account"],
            &["email", "credentials"],
        ] {
            assert_eq!(
                sg(notifiable, 10),
                ["sg-pdpa-authority", "sg-pdpa-individuals"],
                "{notifiable:?}"
            );
        }
        // Significant scale: the PDPC, not the individuals.
        assert_eq!(sg(MARKETING_LIST, 500), ["sg-pdpa-authority"]);
        assert!(sg(MARKETING_LIST, 499).is_empty());
        // s26D(6): a direction not to notify suppresses the individuals' notice only.
        let mut e = exposure(&["SG"], &["name", "health"], 10);
        e.exceptions.insert("sg_notification_prohibited".into());
        let got = ids(&t.applicable(&e, on));
        assert!(got.iter().any(|g| g == "sg-pdpa-authority"), "{got:?}");
        assert!(!got.iter().any(|g| g == "sg-pdpa-individuals"), "{got:?}");
    }

    #[test]
    fn resident_thresholds_count_each_jurisdictions_own_residents() {
        let t = table();
        let on = date("2026-06-01");
        let ca_ag = |e: &Exposure| {
            ids(&t.applicable(e, on))
                .iter()
                .any(|i| i == "us-ca-attorney-general")
        };
        let mut e = exposure(&["EU", "US-CA"], &["name", "ssn"], 10_020);
        // 10,000 EU customers and 20 Californians: no California AG sample.
        e.residents = [("EU".to_string(), 10_000), ("US-CA".to_string(), 20)].into();
        assert!(!ca_ag(&e));
        assert_eq!(e.count_for("US-CA"), (20, "residents"));
        e.residents.insert("US-CA".into(), 600);
        assert!(ca_ag(&e));
        // A jurisdiction without its own count falls back to the total.
        e.residents.remove("US-CA");
        assert_eq!(e.count_for("US-CA"), (10_020, "records"));
        assert!(ca_ag(&e));
    }

    #[test]
    fn effective_dates_are_the_jurisdictions_own_dates_of_the_start() {
        let t = table();
        let ids_at = |e: &Exposure, m: &Moments| -> Vec<String> {
            t.clocks(e, m, &[], m.declared_at)
                .iter()
                .map(|c| c.rule.id.clone())
                .collect()
        };
        // Found 2025-12-31 17:00 in California: 2026-01-01 01:00 UTC.
        let found = utc("2026-01-01T01:00:00Z");
        let ca = exposure(&["US-CA"], &["name", "ssn"], 600);
        let got = ids_at(&ca, &Moments::new(found));
        assert!(
            got.iter().any(|i| i == "us-ca-individuals-pre-sb446"),
            "{got:?}"
        );
        assert!(
            got.iter().any(|i| i == "us-ca-attorney-general-pre-sb446"),
            "{got:?}"
        );
        assert!(
            !got.iter().any(|i| i == "us-ca-attorney-general"),
            "{got:?}"
        );
        // An hour after local midnight, the 2026 rules.
        let got = ids_at(&ca, &Moments::new(utc("2026-01-01T09:00:00Z")));
        assert!(got.iter().any(|i| i == "us-ca-attorney-general"), "{got:?}");
        assert!(
            !got.iter().any(|i| i == "us-ca-attorney-general-pre-sb446"),
            "{got:?}"
        );
        // India: aware 2027-05-13 02:00 IST is 2027-05-12 20:30 UTC, and
        // already under Rule 7.
        let india = exposure(&["IN"], MARKETING_LIST, 10);
        let got = ids_at(&india, &Moments::new(utc("2027-05-12T20:30:00Z")));
        assert!(got.iter().any(|i| i == "in-dpdp-authority"), "{got:?}");
        let got = ids_at(&india, &Moments::new(utc("2027-05-12T18:00:00Z")));
        assert!(!got.iter().any(|i| i == "in-dpdp-authority"), "{got:?}");
    }

    #[test]
    fn californias_ag_copy_runs_15_days_from_the_residents_notice() {
        let t = table();
        let found = utc("2026-03-02T17:00:00Z");
        let ag = t.get("us-ca-attorney-general").expect("rule");
        let m = Moments::new(found);
        let c = ag.clock(&m, &[], found);
        assert_eq!(c.status, Status::NotStarted);
        assert_eq!(
            c.describe(),
            "not started (no `us_ca_residents_notified` recorded)"
        );
        let sent = utc("2026-03-20T16:00:00Z");
        let c = ag.clock(&m.with(Moment::UsCaResidentsNotified, sent), &[], sent);
        assert_eq!(c.status, Status::Running);
        assert_eq!(
            c.due,
            Some(utc("2026-04-04T16:00:00Z")),
            "15 calendar days, same local time"
        );
    }

    #[test]
    fn new_york_dfs_binds_a_regulated_entity_wherever_customers_live() {
        let t = table();
        let on = date("2026-06-01");
        let dfs = |e: &Exposure| {
            t.applicable(e, on)
                .iter()
                .any(|r| r.id == "us-ny-dfs-superintendent")
        };
        // An EU marketing list must go to a supervisory authority, so at a
        // DFS covered entity it is a cybersecurity incident (500.1(g)(1)).
        let mut e = exposure(&["EU"], MARKETING_LIST, 100);
        assert!(!dfs(&e), "not DFS-regulated");
        e.flags.insert("dfs_regulated".into());
        assert!(dfs(&e));
        let rule = t.get("us-ny-dfs-superintendent").expect("rule");
        assert_eq!(rule.deadline, Deadline::Hours(72));
        // A Texan marketing list needs no government notice: no DFS clock.
        let mut e = exposure(&["US-TX"], MARKETING_LIST, 100);
        e.flags.insert("dfs_regulated".into());
        assert!(
            t.applicable(&e, on).is_empty(),
            "{:?}",
            ids(&t.applicable(&e, on))
        );
    }

    #[test]
    fn new_york_hipaa_copy_runs_five_business_days_from_the_hhs_notice() {
        let t = table();
        let on = date("2026-11-20");
        let mut e = exposure(&["US-NY"], &["health"], 10);
        let has = |e: &Exposure| {
            t.applicable(e, on)
                .iter()
                .any(|r| r.id == "us-ny-attorney-general-hipaa")
        };
        assert!(!has(&e), "not a covered entity");
        e.flags.insert("hipaa_covered_entity".into());
        assert!(has(&e), "health data alone, no name");
        let rule = t.get("us-ny-attorney-general-hipaa").expect("rule");
        let found = utc("2026-11-18T15:00:00Z");
        let m = Moments::new(found);
        let c = rule.clock(&m, &[], found);
        assert_eq!(c.status, Status::NotStarted, "waits for the HHS notice");
        // HHS told Friday 2026-11-20 10:00 in New York: Mon 23, Tue 24,
        // Wed 25, Fri 27 (Thanksgiving skipped), Mon 30.
        let hhs = utc("2026-11-20T15:00:00Z");
        let c = rule.clock(&m.with(Moment::UsHhsNotified, hhs), &[], hhs);
        assert_eq!(c.due, Some(utc("2026-11-30T15:00:00Z")));
    }

    #[test]
    fn brazil_needs_relevant_risk_not_any_personal_data() {
        let t = table();
        let on = date("2026-06-01");
        let br = |e: &Exposure| {
            ids(&t.applicable(e, on))
                .into_iter()
                .filter(|i| i.starts_with("br-"))
                .collect::<Vec<_>>()
        };
        // A small marketing list starts nothing by itself.
        assert!(br(&exposure(&["BR"], MARKETING_LIST, 300)).is_empty());
        // Sensitive, financial or authentication data meets a criterion.
        for elements in [
            &["name", "health"][..],
            &["email", "payment_card"],
            &["email", "credentials"],
        ] {
            assert_eq!(
                br(&exposure(&["BR"], elements, 10)),
                [
                    "br-lgpd-authority",
                    "br-lgpd-individuals",
                    "br-anpd-individuals-declaration"
                ],
                "{elements:?}"
            );
        }
        // The criteria no data element carries (children's data, legal
        // secrecy, large scale) are the team's recorded decision.
        let mut e = exposure(&["BR"], MARKETING_LIST, 300);
        e.exceptions.insert("br_relevant_risk".into());
        assert_eq!(
            br(&e),
            [
                "br-lgpd-authority",
                "br-lgpd-individuals",
                "br-anpd-individuals-declaration"
            ]
        );
        // And a recorded finding of no significant effect stops the clocks.
        let mut e = exposure(&["BR"], &["name", "health"], 10);
        e.exceptions.insert("br_no_relevant_risk".into());
        assert!(br(&e).is_empty());
    }

    #[test]
    fn thresholds_decide_regulator_notices() {
        let t = table();
        let on = date("2026-06-01");
        let has = |e: &Exposure, id: &str| t.applicable(e, on).iter().any(|r| r.id == id);
        let ssn = ["name", "ssn"];
        assert!(!has(
            &exposure(&["US-CA"], &ssn, 500),
            "us-ca-attorney-general"
        ));
        assert!(has(
            &exposure(&["US-CA"], &ssn, 501),
            "us-ca-attorney-general"
        ));
        assert!(!has(
            &exposure(&["US-TX"], &ssn, 249),
            "us-tx-attorney-general"
        ));
        assert!(has(
            &exposure(&["US-TX"], &ssn, 250),
            "us-tx-attorney-general"
        ));
        // Singapore: a marketing list is notifiable at significant scale.
        assert!(!has(
            &exposure(&["SG"], MARKETING_LIST, 499),
            "sg-pdpa-authority"
        ));
        assert!(has(
            &exposure(&["SG"], MARKETING_LIST, 500),
            "sg-pdpa-authority"
        ));
        // Japan: more than 1,000 people, or card data for any number.
        assert!(has(
            &exposure(&["JP"], MARKETING_LIST, 1001),
            "jp-appi-authority"
        ));
        assert!(has(
            &exposure(&["JP"], &["payment_card"], 1),
            "jp-appi-authority"
        ));
        // China: the CAC 4-hour report is for incidents of 1 million people or more.
        assert!(!has(
            &exposure(&["CN"], MARKETING_LIST, 999_999),
            "cn-cac-incident-report"
        ));
        assert!(has(
            &exposure(&["CN"], MARKETING_LIST, 1_000_000),
            "cn-cac-incident-report"
        ));
    }

    #[test]
    fn effective_dates_are_honoured() {
        let t = table();
        let e = exposure(&["IN", "US-CA"], &["name", "ssn"], 10);
        let before = ids(&t.applicable(&e, date("2027-05-12")));
        assert!(!before.iter().any(|id| id.starts_with("in-")), "{before:?}");
        let after = ids(&t.applicable(&e, date("2027-05-13")));
        assert!(
            after.contains(&"in-dpdp-authority".to_string()),
            "{after:?}"
        );
        // SB 446's 30 days replaced "most expedient time" on 2026-01-01.
        let old = ids(&t.applicable(&e, date("2025-12-31")));
        assert_eq!(old, ["us-ca-individuals-pre-sb446"]);
        let new = ids(&t.applicable(&e, date("2026-01-01")));
        assert_eq!(new, ["us-ca-individuals"]);
    }

    #[test]
    fn new_york_inadvertent_disclosure_is_a_named_exception() {
        let t = table();
        let on = date("2026-06-01");
        let mut e = exposure(&["US-NY"], &["name", "ssn"], 600);
        let without = ids(&t.applicable(&e, on));
        assert!(without.contains(&"us-ny-individuals".to_string()));
        assert!(!without.contains(&"us-ny-inadvertent-disclosure-determination".to_string()));
        e.exceptions.insert("inadvertent_disclosure".into());
        let with = ids(&t.applicable(&e, on));
        assert_eq!(with, ["us-ny-inadvertent-disclosure-determination"]);
    }

    #[test]
    fn gdpr_is_72_hours_from_awareness() {
        let t = table();
        let rule = t.get("eu-gdpr-authority").expect("rule");
        let declared = utc("2026-03-02T09:00:00Z");
        // Aware defaults to the declaration time...
        let c = rule.clock(&Moments::new(declared), &[], declared);
        assert_eq!(c.start, Some(declared));
        assert_eq!(c.due, Some(utc("2026-03-05T09:00:00Z")));
        assert_eq!(c.left, Some(TimeDelta::hours(72)));
        assert_eq!(c.status, Status::Running);
        // ...and a recorded awareness moment wins.
        let m = Moments::new(declared).with(Moment::Aware, utc("2026-03-01T18:30:00Z"));
        let c = rule.clock(&m, &[], utc("2026-03-04T12:00:00Z"));
        assert_eq!(c.due, Some(utc("2026-03-04T18:30:00Z")));
        assert_eq!(c.left, Some(TimeDelta::minutes(390)));
        assert_eq!(c.describe(), "6h 30m left, due 2026-03-04 19:30 CET");
    }

    #[test]
    fn brazil_counts_business_days_across_a_weekend() {
        let t = table();
        let rule = t.get("br-lgpd-authority").expect("rule");
        // Friday 15:00 in São Paulo (UTC-3): due Wednesday 15:00.
        let confirmed = utc("2026-03-13T18:00:00Z");
        let m = Moments::new(confirmed).with(Moment::Confirmed, confirmed);
        let c = rule.clock(&m, &[], confirmed);
        assert_eq!(c.due, Some(utc("2026-03-18T18:00:00Z")));
        // Confirmed on a Saturday: Monday, Tuesday, Wednesday.
        let saturday = utc("2026-03-14T13:00:00Z");
        assert_eq!(
            Deadline::BusinessDays(3).due(saturday, rule.timezone, &rule.holidays),
            Some(utc("2026-03-18T13:00:00Z"))
        );
        // Saturday 23:00 in São Paulo is Sunday in UTC: the local date counts.
        let late = utc("2026-03-15T02:00:00Z");
        assert_eq!(
            Deadline::BusinessDays(1).due(late, rule.timezone, &rule.holidays),
            Some(utc("2026-03-17T02:00:00Z"))
        );
    }

    #[test]
    fn brazils_declaration_that_individuals_were_told_is_3_business_days_after_theirs() {
        let t = table();
        // Confirmed Thursday 2026-06-11 10:00 in Sao Paulo (13:00 UTC).
        let confirmed = utc("2026-06-11T13:00:00Z");
        let m = Moments::new(confirmed).with(Moment::Confirmed, confirmed);
        let due = |id: &str| t.get(id).expect("rule").clock(&m, &[], confirmed).due;
        // Individuals: Fri, Mon, Tue -> Tuesday 16 June; the declaration
        // three business days later: Wed, Thu, Fri -> Friday 19 June.
        assert_eq!(
            due("br-lgpd-individuals"),
            Some(utc("2026-06-16T13:00:00Z"))
        );
        assert_eq!(
            due("br-anpd-individuals-declaration"),
            Some(utc("2026-06-19T13:00:00Z"))
        );
    }

    #[test]
    fn brazil_skips_its_national_holidays() {
        let t = table();
        let rule = t.get("br-lgpd-authority").expect("rule");
        // Tuesday 22 Dec 2026, 10:00 in São Paulo: Wed 23, Thu 24, then
        // Christmas (Fri 25) and the weekend are skipped: Monday 28.
        let confirmed = utc("2026-12-22T13:00:00Z");
        let m = Moments::new(confirmed).with(Moment::Confirmed, confirmed);
        assert_eq!(
            rule.clock(&m, &[], confirmed).due,
            Some(utc("2026-12-28T13:00:00Z"))
        );
        // Without the calendar it would have been Christmas Day.
        assert_eq!(
            Deadline::BusinessDays(3).due(confirmed, rule.timezone, &BTreeSet::new()),
            Some(utc("2026-12-25T13:00:00Z"))
        );
        // Good Friday 2027 (26 March) and Tiradentes (21 April) are listed.
        assert!(rule.holidays.contains(&date("2027-03-26")));
        assert!(rule.holidays.contains(&date("2027-04-21")));
        // Other jurisdictions keep no calendar yet.
        assert!(t
            .get("eu-gdpr-authority")
            .expect("rule")
            .holidays
            .is_empty());
    }

    #[test]
    fn a_bad_holiday_date_is_located() {
        let src = "version: 1\ntimezones:\n  BR: America/Sao_Paulo\nholidays:\n  BR:\n    source: https://example.org\n    dates: [2026-12-25, 2026-13-01]\nrules: []\n";
        let err = RuleTable::load("rules.yaml", src).expect_err("invalid");
        let text = err.to_string();
        assert!(
            text.contains("rules.yaml:7:25: error: invalid date \"2026-13-01\""),
            "{text}"
        );
    }

    #[test]
    fn calendar_days_keep_local_time_across_us_dst_end() {
        let t = table();
        let rule = t.get("us-ca-individuals").expect("rule");
        // 10:00 PDT on 20 Oct; DST ends 1 Nov; due 10:00 PST on 19 Nov.
        let discovered = utc("2026-10-20T17:00:00Z");
        let m = Moments::new(discovered);
        let c = rule.clock(&m, &[], discovered);
        assert_eq!(c.due, Some(utc("2026-11-19T18:00:00Z")));
        assert_eq!(c.left, Some(TimeDelta::days(30) + TimeDelta::hours(1)));
        assert!(
            c.describe().ends_with("due 2026-11-19 10:00 PST"),
            "{}",
            c.describe()
        );
        // And the spring change in the other direction (8 Mar 2026).
        let feb = utc("2026-02-20T17:00:00Z"); // 09:00 PST
        assert_eq!(
            Deadline::Days(30).due(feb, rule.timezone, &rule.holidays),
            Some(utc("2026-03-22T16:00:00Z")) // 09:00 PDT
        );
    }

    #[test]
    fn eu_deadlines_across_the_late_october_change() {
        let brussels = chrono_tz::Europe::Brussels;
        // 12:00 CEST on Friday 23 Oct; clocks go back on Sunday 25 Oct.
        let aware = utc("2026-10-23T10:00:00Z");
        // Hours are elapsed time: 72h later is 11:00 CET on the wall clock.
        let due = Deadline::Hours(72)
            .due(aware, brussels, &BTreeSet::new())
            .expect("due");
        assert_eq!(due, utc("2026-10-26T10:00:00Z"));
        assert_eq!(
            due.with_timezone(&brussels).format("%H:%M %Z").to_string(),
            "11:00 CET"
        );
        // Days keep the wall-clock time: 12:00 CET on 30 Oct.
        assert_eq!(
            Deadline::Days(7).due(aware, brussels, &BTreeSet::new()),
            Some(utc("2026-10-30T11:00:00Z"))
        );
        // Business days too: Mon 26, Tue 27, Wed 28 at 12:00 CET.
        assert_eq!(
            Deadline::BusinessDays(3).due(aware, brussels, &BTreeSet::new()),
            Some(utc("2026-10-28T11:00:00Z"))
        );
        // A wall-clock time that does not exist (02:30 on 29 Mar) moves on an hour.
        let before_gap = utc("2026-03-28T01:30:00Z"); // 02:30 CET
        assert_eq!(
            Deadline::Days(1).due(before_gap, brussels, &BTreeSet::new()),
            Some(utc("2026-03-29T01:30:00Z")) // 03:30 CEST
        );
    }

    #[test]
    fn a_law_enforcement_pause_extends_the_deadline() {
        let t = table();
        let rule = t.get("us-ca-individuals").expect("rule");
        let discovered = utc("2026-04-01T16:00:00Z");
        let m = Moments::new(discovered);
        let base = utc("2026-05-01T16:00:00Z");
        let pause = Pause {
            from: utc("2026-04-10T00:00:00Z"),
            until: Some(utc("2026-04-15T00:00:00Z")),
        };
        let now = utc("2026-04-20T00:00:00Z");
        let c = rule.clock(&m, &[pause], now);
        assert_eq!(c.paused, TimeDelta::days(5));
        assert_eq!(c.due, Some(base + TimeDelta::days(5)));
        assert_eq!(c.status, Status::Running);
        // Overlapping pauses count once; time paused before the start not at all.
        let early = Pause {
            from: utc("2026-03-25T00:00:00Z"),
            until: Some(utc("2026-04-12T00:00:00Z")),
        };
        let c = rule.clock(&m, &[pause, early], now);
        assert_eq!(c.paused, utc("2026-04-15T00:00:00Z") - discovered);
        // A pause still open holds the clock: it counts until now.
        let open = Pause {
            from: utc("2026-04-10T00:00:00Z"),
            until: None,
        };
        let c = rule.clock(&m, &[open], now);
        assert_eq!(c.status, Status::Paused);
        assert_eq!(c.due, Some(base + TimeDelta::days(10)));
        // GDPR has no law-enforcement delay: the pause is ignored.
        let gdpr = t.get("eu-gdpr-authority").expect("rule");
        let c = gdpr.clock(&m, &[open], now);
        assert_eq!(c.due, Some(discovered + TimeDelta::hours(72)));
        assert_eq!(c.status, Status::Overdue);
    }

    #[test]
    fn overdue_once_now_is_past_due() {
        let t = table();
        let rule = t.get("uk-ico-authority").expect("rule");
        let declared = utc("2026-06-01T08:00:00Z");
        let m = Moments::new(declared);
        let at_due = rule.clock(&m, &[], utc("2026-06-04T08:00:00Z"));
        assert_eq!(at_due.status, Status::Running);
        assert!(!at_due.overdue());
        let late = rule.clock(&m, &[], utc("2026-06-04T13:15:00Z"));
        assert!(late.overdue());
        assert_eq!(late.left, Some(-TimeDelta::minutes(315)));
        assert_eq!(
            late.describe(),
            "overdue by 5h 15m, was due 2026-06-04 09:00 BST"
        );
    }

    #[test]
    fn clocks_wait_for_their_start_moment_and_asap_is_open() {
        let t = table();
        let declared = utc("2026-06-01T08:00:00Z");
        let m = Moments::new(declared);
        let tx = t.get("us-tx-individuals").expect("rule");
        let c = tx.clock(&m, &[], declared);
        assert_eq!((c.status, c.start, c.due), (Status::NotStarted, None, None));
        assert_eq!(
            c.describe(),
            "not started (no `tx_breach_determined` recorded)"
        );
        // Another law's determination does not start Texas's clock.
        let other = m.clone().with(
            Moment::PipedaRealRiskDetermined,
            utc("2026-06-03T15:00:00Z"),
        );
        assert_eq!(tx.clock(&other, &[], declared).status, Status::NotStarted);
        let m = m.with(Moment::TxBreachDetermined, utc("2026-06-03T15:00:00Z"));
        let c = tx.clock(&m, &[], declared);
        assert_eq!(c.status, Status::Running);
        assert_eq!(c.due, Some(utc("2026-08-02T15:00:00Z")));
        let art34 = t.get("eu-gdpr-individuals").expect("rule");
        let c = art34.clock(&m, &[], declared);
        assert_eq!((c.status, c.due), (Status::Open, None));
    }

    #[test]
    fn phased_reports_have_their_own_deadlines() {
        let t = table();
        let aware = utc("2026-07-01T00:00:00Z"); // 09:00 in Tokyo
        let m = Moments::new(aware);
        let jp = t.get("jp-appi-authority").expect("rule");
        let now = utc("2026-07-10T00:00:00Z");
        let c = jp.clock(&m, &[], now);
        assert_eq!(c.due, Some(utc("2026-07-04T00:00:00Z")));
        assert!(c.overdue());
        let final_report = &c.phases[0];
        assert_eq!(final_report.phase.name, "final");
        assert_eq!(final_report.due, Some(utc("2026-07-31T00:00:00Z")));
        assert!(!final_report.overdue);
        assert_eq!(final_report.left, Some(TimeDelta::days(21)));

        let cn = t.get("cn-cac-incident-report").expect("rule");
        let c = cn.clock(&m, &[], aware + TimeDelta::hours(5));
        assert_eq!(c.due, Some(aware + TimeDelta::hours(4)));
        assert!(c.overdue());
        assert_eq!(c.phases[0].phase.name, "summary");
        assert_eq!(c.phases[0].due, Some(aware + TimeDelta::days(30)));

        // GDPR's follow-up information has no fixed deadline.
        let gdpr = t.get("eu-gdpr-authority").expect("rule");
        let c = gdpr.clock(&m, &[], aware);
        assert_eq!(c.phases[0].phase.name, "follow_up");
        assert_eq!(c.phases[0].due, None);
    }

    #[test]
    fn table_clocks_follow_the_exposure() {
        let t = table();
        let declared = utc("2026-06-01T08:00:00Z");
        let e = exposure(&["EU", "US-CA"], MARKETING_LIST, 1000);
        let clocks = t.clocks(&e, &Moments::new(declared), &[], declared);
        let got: Vec<_> = clocks.iter().map(|c| c.rule.id.as_str()).collect();
        assert_eq!(got, ["eu-gdpr-authority", "eu-gdpr-individuals"]);
    }

    #[test]
    fn deadlines_parse_and_print() {
        for s in ["72h", "30d", "3bd", "asap"] {
            assert_eq!(Deadline::parse(s).map(|d| d.to_string()), Some(s.into()));
        }
        for s in ["", "h", "72", "3w", "-1d", "1.5d"] {
            assert_eq!(Deadline::parse(s), None, "{s}");
        }
        assert_eq!(span(TimeDelta::minutes(3 * 1440 + 125)), "3d 2h");
        assert_eq!(span(TimeDelta::minutes(40)), "40m");
    }
}
