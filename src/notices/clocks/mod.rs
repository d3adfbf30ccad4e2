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

mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

use crate::source::check::Checker;
use crate::source::diagnostic::Diagnostics;
use crate::source::yaml::YamlDoc;

/// Where the bundled table lives, for diagnostics.
pub const FILE: &str = "runbooks/notices/rules.yaml";
/// The bundled table.
pub const BUNDLED: &str = include_str!("../../../runbooks/notices/rules.yaml");

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
        let table = read::read_table(&mut c);
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

#[cfg(test)]
mod tests;
