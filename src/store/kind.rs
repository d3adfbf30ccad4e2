//! The kinds of timeline event: a closed set, so a writer cannot record a
//! kind no reader knows and a reader cannot test for one that is never
//! written. Stored and served as the text it always was (`TimelineEvent`
//! keeps the text, so a store holds exactly what it held before).

macro_rules! kinds {
    ($($variant:ident = $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind {
            $($variant,)*
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)*
                }
            }

            pub fn parse(s: &str) -> Option<EventKind> {
                match s {
                    $($name => Some(EventKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    ApprovalGranted = "approval.granted",
    ApprovalRefused = "approval.refused",
    ApprovalRejected = "approval.rejected",
    ApprovalRequested = "approval.requested",
    ClockPaused = "clock.paused",
    ClockResumed = "clock.resumed",
    ContainmentFailed = "containment.failed",
    ContainmentUnverified = "containment.unverified",
    ContainmentVerified = "containment.verified",
    DecisionLate = "decision.late",
    DrillRehearsal = "drill.rehearsal",
    ExceptionApplied = "exception.applied",
    IncidentCompleted = "incident.completed",
    IncidentDeclared = "incident.declared",
    IncidentFailed = "incident.failed",
    IncidentResumed = "incident.resumed",
    IncidentWaiting = "incident.waiting",
    ItemAttempt = "item.attempt",
    ItemFailed = "item.failed",
    ItemRetry = "item.retry",
    ItemSkipped = "item.skipped",
    ItemSucceeded = "item.succeeded",
    ItemsProgress = "items.progress",
    ItemsSummary = "items.summary",
    LeaderChanged = "leader.changed",
    ManualDone = "manual.done",
    ManualRequested = "manual.requested",
    MomentRecorded = "moment.recorded",
    Note = "note",
    NoticeApproved = "notice.approved",
    NoticeDrafted = "notice.drafted",
    NoticeEdited = "notice.edited",
    NoticeSent = "notice.sent",
    PlanAfterWrite = "plan.after_write",
    PlanWouldAsk = "plan.would_ask",
    PlanWouldCall = "plan.would_call",
    PlanWouldWait = "plan.would_wait",
    SlackRefused = "slack.refused",
    StepFailed = "step.failed",
    StepFannedOut = "step.fanned_out",
    StepSkipped = "step.skipped",
    StepStarted = "step.started",
    StepSucceeded = "step.succeeded",
    WaitCut = "wait.cut",
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored event's kind (text) is compared with a kind directly.
impl PartialEq<EventKind> for String {
    fn eq(&self, kind: &EventKind) -> bool {
        self == kind.name()
    }
}

impl PartialEq<EventKind> for &str {
    fn eq(&self, kind: &EventKind) -> bool {
        *self == kind.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_text() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.name()), Some(*k));
        }
        assert_eq!(EventKind::parse("incident.declare"), None);
        let stored = String::from("incident.waiting");
        assert!(stored == EventKind::IncidentWaiting);
        assert!(
            stored
                != EventKind::IncidentWaiting
                    .name()
                    .replace("waiting", "failed")
        );
    }
}
