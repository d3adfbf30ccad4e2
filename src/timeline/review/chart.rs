//! The review's Gantt chart: each step that ran as a bar in its phase,
//! waits on people apart, the regulatory deadlines on the same axis.

use chrono::TimeDelta;
use chrono_tz::Tz;

use super::{parse_at, phase_name, Facts, PHASES};
use crate::runbook::{Phase, StepKind};
use crate::store::StepStatus;
use crate::timeline::display::{duration_text, offset_label, shown};
use crate::timeline::gantt;

pub(super) fn chart(f: &Facts) -> gantt::Chart {
    let snap = &f.rec.snap;
    let inc = &snap.incident;
    let (steps, end, waits, clocks_json) = (&f.steps, f.end, &f.waits, &f.clocks);
    let mut groups: Vec<(String, Vec<gantt::Bar>)> = Vec::new();
    let mut order: Vec<Option<Phase>> = PHASES.iter().map(|p| Some(*p)).collect();
    order.push(None);
    for phase in order {
        let mut bars: Vec<gantt::Bar> = steps
            .iter()
            .filter(|(_, p, _)| *p == phase)
            .filter_map(|(id, _, step)| {
                let r = snap.steps.get(id)?;
                let start = r.started_at?;
                if r.status == StepStatus::Skipped {
                    return None;
                }
                let stop = r.finished_at.unwrap_or(end).max(start);
                let w = waits.get(id).cloned().unwrap_or_default();
                let waited: TimeDelta = w.iter().map(|(a, b)| *b - *a).sum();
                let what = match step.map(|s| &s.kind) {
                    Some(StepKind::Action {
                        integration,
                        action,
                    }) => format!(" ({integration}.{action})"),
                    Some(k) => format!(" ({})", k.name()),
                    None => String::new(),
                };
                let mut title = format!(
                    "{id}{what}: {} after {}, took {}",
                    r.status.name(),
                    offset_label(start - inc.declared_at),
                    duration_text(stop - start)
                );
                if let Some(n) = r.items {
                    title.push_str(&format!(", {n} item{}", if n == 1 { "" } else { "s" }));
                }
                if waited > TimeDelta::zero() {
                    title.push_str(&format!("; waited {} on people", duration_text(waited)));
                }
                if let Some(e) = &r.error {
                    title.push_str(&format!("; {e}"));
                }
                Some(gantt::Bar {
                    step: id.clone(),
                    outcome: r.status.name().to_string(),
                    start,
                    end: stop,
                    waits: w,
                    items: r.items,
                    title,
                })
            })
            .collect();
        bars.sort_by_key(|b| b.start);
        if !bars.is_empty() {
            groups.push((phase_name(phase).to_string(), bars));
        }
    }
    let deadlines: Vec<gantt::Deadline> = clocks_json
        .iter()
        .filter_map(|c| {
            let at = parse_at(&c["due"])?;
            let j = c["jurisdiction"].as_str().unwrap_or("");
            let tz = crate::timeline::clocks::table().zone(j).unwrap_or(Tz::UTC);
            Some(gantt::Deadline {
                label: format!(
                    "{j} {} {}",
                    c["recipient"].as_str().unwrap_or(""),
                    c["deadline"].as_str().unwrap_or("")
                ),
                at,
                overdue: c["overdue"] == true,
                title: format!(
                    "{}: due {} ({})",
                    c["title"].as_str().unwrap_or(""),
                    shown(at, tz).local,
                    c["describe"].as_str().unwrap_or("")
                ),
            })
        })
        .collect();
    gantt::layout(
        inc.declared_at,
        end.max(inc.declared_at + TimeDelta::milliseconds(1)),
        &groups,
        &deadlines,
        gantt::Geometry::default(),
    )
}
