//! What a step reads of the template context, so the context a step gets
//! holds only that: a fan-out over a 200,000-item listing must not copy
//! the listing for every step, nor once more for itself.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::runbook::{Runbook, Step, StepKind};

/// The names a step reads under `inputs` and `steps`. `None` for a root:
/// it is read whole, or a read cannot be pinned to a name
/// (`{{lookup steps x}}`, `../`, a notice's templates, chosen when it runs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reads {
    inputs: Option<BTreeSet<String>>,
    steps: Option<BTreeSet<String>>,
    /// The roots read at all (`item`, `incident`, ...).
    roots: Option<BTreeSet<String>>,
}

impl Reads {
    /// Everything: what a step whose reads are not known gets.
    pub(crate) fn all() -> Reads {
        Reads {
            inputs: None,
            steps: None,
            roots: None,
        }
    }

    /// What `step` reads when it runs: its templates and, for a fan-out,
    /// the list it iterates (and the list that list's items came from,
    /// when it reads `parent`).
    pub(crate) fn of(step: &Step, rb: &Runbook) -> Reads {
        let mut r = match &step.kind {
            StepKind::Action { .. } => Reads::templates(step),
            StepKind::Wait(_) => Reads::of_templates(step.when.iter().map(String::as_str)),
            // A notice renders the library's templates, an approval or
            // manual task its own text: read whole rather than analysed.
            _ => return Reads::all(),
        };
        if let Some(path) = &step.for_each {
            r.path(path);
            if super::action::reads_parent(step) {
                let source = super::action::source_step(path).and_then(|s| rb.step(s));
                match source.and_then(|s| s.for_each.as_deref()) {
                    Some(p) => r.path(p),
                    None => r.steps = None,
                }
            }
        }
        r
    }

    /// What an action step's `with`, `when` and `verify` templates read:
    /// what its items' contexts keep.
    pub(crate) fn templates(step: &Step) -> Reads {
        let mut templates = Vec::new();
        collect(&step.with, &mut templates);
        templates.extend(step.when.as_deref());
        if let Some(v) = &step.verify {
            templates.push(&v.remains);
            templates.extend(v.shows.as_deref());
            templates.extend(v.label.as_deref());
        }
        Reads::of_templates(templates.into_iter())
    }

    fn of_templates<'a>(templates: impl Iterator<Item = &'a str>) -> Reads {
        let mut r = Reads {
            inputs: Some(BTreeSet::new()),
            steps: Some(BTreeSet::new()),
            roots: Some(BTreeSet::new()),
        };
        for t in templates.filter(|t| t.contains("{{")) {
            let a = crate::template::analyse(t);
            if a.opaque {
                return Reads::all();
            }
            for v in a.vars {
                let mut segs = v.path.iter().map(String::as_str);
                r.read(segs.next().unwrap_or(""), segs.next());
            }
        }
        r
    }

    /// A dotted context path (`steps.list.output`) read as a whole value.
    fn path(&mut self, path: &str) {
        let mut segs = path.split('.');
        self.read(segs.next().unwrap_or(""), segs.next());
    }

    fn read(&mut self, root: &str, name: Option<&str>) {
        if let Some(roots) = self.roots.as_mut() {
            roots.insert(root.to_string());
        }
        let slot = match root {
            "inputs" => &mut self.inputs,
            "steps" => &mut self.steps,
            _ => return,
        };
        match (slot.as_mut(), name) {
            (Some(names), Some(name)) => {
                names.insert(name.to_string());
            }
            _ => *slot = None,
        }
    }

    /// Whether input `name` is read.
    pub(crate) fn input(&self, name: &str) -> bool {
        self.inputs.as_ref().is_none_or(|s| s.contains(name))
    }

    /// Whether step `id`'s output or status is read.
    pub(crate) fn step(&self, id: &str) -> bool {
        self.steps.as_ref().is_none_or(|s| s.contains(id))
    }

    /// Whether the path `steps.ID...` or `inputs.NAME...` is read; other
    /// roots are always kept.
    pub(crate) fn path_read(&self, path: &str) -> bool {
        let mut segs = path.split('.');
        let (root, name) = (segs.next().unwrap_or(""), segs.next().unwrap_or(""));
        let slot = match root {
            "inputs" => &self.inputs,
            "steps" => &self.steps,
            _ => return true,
        };
        slot.as_ref().is_none_or(|s| s.contains(name))
    }

    /// Drops from `ctx` the roots, inputs and steps not read: an item's
    /// context is copied for every item.
    pub(crate) fn narrow(&self, mut ctx: Json) -> Json {
        if let (Some(roots), Json::Object(m)) = (&self.roots, &mut ctx) {
            m.retain(|k, _| roots.contains(k));
        }
        for (root, names) in [("inputs", &self.inputs), ("steps", &self.steps)] {
            if let (Some(names), Some(Json::Object(m))) = (names, ctx.get_mut(root)) {
                m.retain(|k, _| names.contains(k));
            }
        }
        ctx
    }
}

/// The template strings in a `with` tree.
pub(super) fn collect<'a>(v: &'a Json, out: &mut Vec<&'a str>) {
    match v {
        Json::String(s) => out.push(s),
        Json::Array(a) => a.iter().for_each(|x| collect(x, out)),
        Json::Object(m) => m.values().for_each(|x| collect(x, out)),
        _ => {}
    }
}

/// The steps whose output the step starting now may take rather than copy:
/// those it reads that no step still to start reads. The journal keeps
/// every output; only the driver's copy in memory gives it up, and a later
/// drive reads them all back.
pub(crate) fn last_reads(
    rb: &Runbook,
    starting: &str,
    reads: &BTreeMap<String, Reads>,
    still_to_start: impl Fn(&str) -> bool,
) -> BTreeSet<String> {
    let Some(mine) = reads.get(starting) else {
        return BTreeSet::new();
    };
    let Some(named) = &mine.steps else {
        return BTreeSet::new();
    };
    named
        .iter()
        .filter(|t| {
            !rb.steps.iter().any(|u| {
                u.id != starting
                    && still_to_start(&u.id)
                    && reads.get(&u.id).is_none_or(|r| r.step(t))
            })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::{OnFailure, RetryPolicy};
    use serde_json::json;

    fn step(id: &str, for_each: Option<&str>, with: Json, when: Option<&str>) -> Step {
        Step {
            id: id.into(),
            kind: StepKind::Action {
                integration: "p".into(),
                action: "a".into(),
            },
            needs: vec![],
            for_each: for_each.map(str::to_string),
            concurrency: 1,
            with,
            when: when.map(str::to_string),
            retry: RetryPolicy::default(),
            timeout: None,
            on_failure: OnFailure::Abort,
            phase: None,
            description: None,
            verify: None,
        }
    }

    fn runbook(steps: Vec<Step>) -> Runbook {
        Runbook {
            name: "t".into(),
            title: "t".into(),
            inputs: vec![],
            steps,
        }
    }

    fn ctx() -> Json {
        json!({
            "inputs": {"tool": "ChatGPT", "ids": ["a", "b"], "other": 1},
            "steps": {"list": {"output": [1, 2, 3]}, "audit": {"output": {"n": 1}}, "big": {"output": [0, 0, 0, 0]}},
            "incident": {"id": "INC-1"},
        })
    }

    #[test]
    fn keeps_only_the_inputs_and_steps_the_templates_read() {
        let s = step(
            "s",
            Some("steps.list.output"),
            json!({"id": "{{item.id}}", "why": "{{inputs.tool}} in {{steps.audit.output.n}}"}),
            Some("{{#if (contains inputs.ids item.id)}}yes{{/if}}"),
        );
        let n = Reads::templates(&s).narrow(ctx());
        assert_eq!(n["inputs"], json!({"tool": "ChatGPT", "ids": ["a", "b"]}));
        assert_eq!(n["steps"], json!({"audit": {"output": {"n": 1}}}));
        // Roots no template reads are left out too.
        assert_eq!(n.get("incident"), None);
        let s2 = step("s", None, json!({"x": "{{incident.id}}"}), None);
        assert_eq!(
            Reads::templates(&s2).narrow(ctx())["incident"]["id"],
            "INC-1"
        );
        // What the step is given also holds the list it iterates.
        let r = Reads::of(&s, &runbook(vec![s.clone()]));
        assert!(r.step("list") && r.step("audit") && !r.step("big"));
        assert!(r.path_read("steps.list.output") && !r.path_read("inputs.other"));
        assert!(!Reads::templates(&s).path_read("steps.list.output"));
    }

    #[test]
    fn a_read_it_cannot_pin_down_keeps_the_root_whole() {
        let narrow = |with: Json| Reads::templates(&step("s", None, with, None)).narrow(ctx());
        assert_eq!(
            narrow(json!({"x": "{{lookup steps \"big\"}}"}))["steps"],
            ctx()["steps"]
        );
        assert_eq!(
            narrow(json!({"x": "{{#each item}}{{../inputs.tool}}{{/each}}"})),
            ctx()
        );
        let n = narrow(json!({"x": "{{inputs}}"}));
        assert_eq!(n["inputs"], ctx()["inputs"]);
        assert_eq!(n.get("steps"), None);
    }

    #[test]
    fn a_step_whose_reads_are_unknown_reads_everything() {
        let mut s = step("n", None, Json::Null, None);
        s.kind = StepKind::Manual {
            assignee: None,
            instructions: "{{steps.list.output}}".into(),
        };
        assert_eq!(Reads::of(&s, &runbook(vec![])), Reads::all());
    }

    #[test]
    fn a_fan_out_that_reads_parent_also_reads_its_sources_list() {
        let users = step(
            "users",
            Some("steps.list.output"),
            json!({"u": "{{item}}"}),
            None,
        );
        let grants = step(
            "grants",
            Some("steps.users.output"),
            json!({"u": "{{parent.id}}", "g": "{{item.id}}"}),
            None,
        );
        let rb = runbook(vec![users, grants.clone()]);
        let r = Reads::of(&grants, &rb);
        assert!(r.step("users") && r.step("list") && !r.step("audit"));
    }

    #[test]
    fn the_last_step_to_read_an_output_takes_it() {
        let list = step("list", None, Json::Null, None);
        let revoke = step(
            "revoke",
            Some("steps.list.output"),
            json!({"id": "{{item.id}}"}),
            None,
        );
        let count = step(
            "count",
            None,
            json!({"n": "{{len steps.list.output}}"}),
            None,
        );
        let other = step("other", None, json!({"x": "{{inputs.tool}}"}), None);
        let rb = runbook(vec![list, revoke, count, other]);
        let reads: BTreeMap<String, Reads> = rb
            .steps
            .iter()
            .map(|s| (s.id.clone(), Reads::of(s, &rb)))
            .collect();
        let take = |starting: &str, left: &[&str]| {
            last_reads(&rb, starting, &reads, |u| left.contains(&u))
                .into_iter()
                .collect::<Vec<_>>()
        };
        // `count` still reads the list: the fan-out copies it.
        assert!(take("revoke", &["revoke", "count", "other"]).is_empty());
        // Once `count` has started, the fan-out is the last to read it.
        assert_eq!(take("revoke", &["revoke", "other"]), ["list"]);
        // A step still to start whose reads are unknown reads everything.
        let mut notice = step("notice", None, Json::Null, None);
        notice.kind = StepKind::Wait(std::time::Duration::from_secs(1));
        notice.when = Some("{{lookup steps \"list\"}}".into());
        let mut rb2 = rb.clone();
        rb2.steps.push(notice.clone());
        let mut reads2 = reads.clone();
        reads2.insert("notice".into(), Reads::of(&notice, &rb2));
        assert!(last_reads(&rb2, "revoke", &reads2, |u| u == "notice").is_empty());
    }
}
