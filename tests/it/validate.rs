//! `quench validate`: every problem as `FILE:LINE:COL: error: MESSAGE` (and
//! `  hint: ...`), located at the offending key or value, all at once.
//!
//! Most cases call the library; a few run the binary end to end. Each case
//! asserts the full text of every diagnostic, and also that each reported
//! line:col really is where the offending text starts in the fixture, so a
//! position that drifts to the start of a map or file cannot pass.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use quench::library::{Folders, Library};
use quench::runbook::{Diagnostics, Known};

/// What the bundled catalog offers (hubspot, mailchimp, klaviyo, ...).
fn known() -> &'static Known {
    static KNOWN: OnceLock<Known> = OnceLock::new();
    KNOWN.get_or_init(|| Library::load(&Folders::default()).unwrap().known())
}

/// The text at `line:col` (1-based, in characters) of `src`.
fn text_at(src: &str, line: usize, col: usize) -> String {
    let l = src
        .lines()
        .nth(line - 1)
        .unwrap_or_else(|| panic!("no line {line} in:\n{src}"));
    l.chars().skip(col - 1).collect()
}

/// Asserts the rendered diagnostics, and that the i-th one points at text
/// starting with `anchors[i]`.
#[track_caller]
fn assert_diags(src: &str, result: Result<(), Diagnostics>, expected: &[&str], anchors: &[&str]) {
    let d = match result {
        Ok(()) => panic!("expected problems, but it is valid:\n{src}"),
        Err(d) => d,
    };
    assert_eq!(d.to_string(), expected.join("\n"));
    assert_eq!(d.0.len(), anchors.len(), "one anchor per diagnostic");
    for (diag, anchor) in d.0.iter().zip(anchors) {
        let at = text_at(src, diag.line, diag.col);
        assert!(
            at.starts_with(anchor),
            "{}:{}:{} points at {at:?}, expected {anchor:?}",
            diag.file,
            diag.line,
            diag.col
        );
    }
}

#[track_caller]
fn check_runbook(file: &str, src: &str, expected: &[&str], anchors: &[&str]) {
    let result = quench::runbook::load(file, src, known()).map(|_| ());
    assert_diags(src, result, expected, anchors);
}

#[track_caller]
fn check_manifest(file: &str, src: &str, expected: &[&str], anchors: &[&str]) {
    let result = quench::integrations::manifest::load(file, src).map(|_| ());
    assert_diags(src, result, expected, anchors);
}

#[track_caller]
fn check_notice(file: &str, src: &str, expected: &[&str], anchors: &[&str]) {
    let result = quench::notices::NoticeTemplates::check_file(file, src);
    assert_diags(src, result, expected, anchors);
}

// ---------------------------------------------------------------- YAML syntax

#[test]
fn yaml_syntax_error_points_at_the_token_and_names_what_was_open() {
    let src = "\
version: 1
name: syntax
steps:
  - id: a
    action: hubspot.list_audit_logs
    with: { ids: [1, 2 }
";
    check_runbook(
        "syntax.yaml",
        src,
        &[
            "syntax.yaml:6:24: error: invalid YAML: did not find expected ',' or ']'",
            "  hint: while parsing a flow sequence at line 6 column 18",
        ],
        &["}"],
    );
    assert!(text_at(src, 6, 18).starts_with("[1, 2"));
}

#[test]
fn yaml_unterminated_quote_hint_points_at_the_opening_quote() {
    let src = "\
version: 1
name: quote
steps:
  - id: a
    action: hubspot.list_audit_logs
    with: { name: \"ChatGPT }
";
    let d = quench::runbook::load("quote.yaml", src, known()).unwrap_err();
    assert_eq!(
        d.to_string(),
        "quote.yaml:7:1: error: invalid YAML: found unexpected end of stream\n  \
         hint: while scanning a quoted scalar at line 6 column 19"
    );
    assert!(text_at(src, 6, 19).starts_with("\"ChatGPT"));
}

#[test]
fn yaml_duplicate_key_points_at_the_second_key() {
    let src = "\
version: 1
name: dup-key
steps:
  - id: a
    wait: 1s
    timeout: 10s
    wait: 2s
";
    check_runbook(
        "dup-key.yaml",
        src,
        &[
            "dup-key.yaml:7:5: error: invalid YAML: duplicate key \"wait\"",
            "  hint: first defined on line 5; a key may appear once in a map",
        ],
        &["wait: 2s"],
    );
}

// ------------------------------------------------------------- keys and types

#[test]
fn unknown_key_with_a_near_miss_suggests_it() {
    let src = "\
version: 1
name: typo
steps:
  - id: a
    action: hubspot.list_audit_logs
    retyr: { attempts: 3 }
";
    check_runbook(
        "typo.yaml",
        src,
        &[
            "typo.yaml:6:5: error: unknown key `retyr` in a step",
            "  hint: did you mean `retry`?",
        ],
        &["retyr"],
    );
}

#[test]
fn unknown_key_without_a_near_miss_lists_the_allowed_keys() {
    let src = "\
version: 1
name: stray
steps:
  - id: a
    action: hubspot.list_audit_logs
    retry: { attempts: 3, jitter: full }
";
    check_runbook(
        "stray.yaml",
        src,
        &[
            "stray.yaml:6:27: error: unknown key `jitter` in `retry`",
            "  hint: allowed keys: attempts, backoff, max_backoff",
        ],
        &["jitter"],
    );
}

#[test]
fn unknown_top_level_key_lists_the_allowed_keys() {
    let src = "\
version: 1
name: top
owner: mops
steps:
  - id: a
    wait: 1s
";
    check_runbook(
        "top.yaml",
        src,
        &[
            "top.yaml:3:1: error: unknown key `owner` in the runbook",
            "  hint: allowed keys: version, name, title, description, inputs, steps",
        ],
        &["owner"],
    );
}

#[test]
fn wrong_types_point_at_the_value() {
    let src = "\
version: 1
name: types
steps:
  - id: a
    action: hubspot.list_connected_apps
    concurrency: \"lots\"
  - id: b
    action: hubspot.list_connected_apps
    needs: a
";
    check_runbook(
        "types.yaml",
        src,
        &[
            "types.yaml:6:18: error: `concurrency` must be a non-negative integer, found \"lots\"",
            "types.yaml:9:12: error: `needs` must be a list, found a string",
        ],
        &["\"lots\"", "a"],
    );
}

#[test]
fn missing_required_keys_point_at_the_map_that_lacks_them() {
    let src = "\
# no version here
name: missing
steps:
  - id: a
    wait: 1s
  - action: hubspot.list_audit_logs
    phase: contain
";
    check_runbook(
        "missing.yaml",
        src,
        &[
            "missing.yaml:2:1: error: the runbook is missing the required key `version`",
            "missing.yaml:6:5: error: a step is missing the required key `id`",
        ],
        &["name: missing", "action:"],
    );
}

#[test]
fn unsupported_version_points_at_the_value() {
    let src = "version: 2\nname: v2\nsteps:\n  - id: a\n    wait: 1s\n";
    check_runbook(
        "v2.yaml",
        src,
        &[
            "v2.yaml:1:10: error: unsupported runbook version 2",
            "  hint: this quench reads `version: 1`",
        ],
        &["2"],
    );
}

// ----------------------------------------------------------------- step graph

#[test]
fn duplicate_step_id_points_at_the_second_and_names_the_first_line() {
    let src = "\
version: 1
name: dup
steps:
  - id: revoke
    wait: 1s
  - id: notify
    wait: 1s
  - id: revoke
    wait: 2s
";
    check_runbook(
        "dup.yaml",
        src,
        &[
            "dup.yaml:8:9: error: duplicate step id \"revoke\"",
            "  hint: first defined on line 4; step ids must be unique",
        ],
        &["revoke"],
    );
}

#[test]
fn needs_naming_an_unknown_step_suggests_the_closest() {
    let src = "\
version: 1
name: needs
steps:
  - id: find-grants
    action: hubspot.list_connected_apps
  - id: pause
    action: hubspot.list_audit_logs
  - id: revoke
    action: hubspot.list_audit_logs
    needs: [pause, find-grant]
";
    check_runbook(
        "needs.yaml",
        src,
        &[
            "needs.yaml:10:20: error: `needs` names unknown step \"find-grant\"",
            "  hint: did you mean `find-grants`?",
        ],
        &["find-grant]"],
    );
}

#[test]
fn dependency_cycle_names_the_cycle() {
    let src = "\
version: 1
name: cycle
steps:
  - id: start
    wait: 1s
  - id: a
    wait: 1s
    needs: [start, b]
  - id: b
    wait: 1s
    needs: [a]
";
    check_runbook(
        "cycle.yaml",
        src,
        &[
            "cycle.yaml:8:20: error: dependency cycle: a -> b -> a",
            "  hint: remove one of these `needs` so the steps can be ordered",
        ],
        &["b]"],
    );
}

#[test]
fn a_step_needing_itself_is_reported_once() {
    let src = "\
version: 1
name: self-need
steps:
  - id: a
    wait: 1s
    needs: [a]
";
    check_runbook(
        "self-need.yaml",
        src,
        &["self-need.yaml:6:13: error: step \"a\" needs itself"],
        &["a]"],
    );
}

// -------------------------------------------------------------------- actions

#[test]
fn unknown_integration_and_unknown_action() {
    let src = "\
version: 1
name: actions
steps:
  - id: a
    action: hubspt.list_audit_logs
  - id: b
    action: acme.pause
  - id: c
    action: mailchimp.pause_automations
  - id: d
    action: hubspot.frobnicate
";
    check_runbook(
        "actions.yaml",
        src,
        &[
            "actions.yaml:5:13: error: unknown integration \"hubspt\" in action \"hubspt.list_audit_logs\"",
            "  hint: did you mean `hubspot`?",
            "actions.yaml:7:13: error: unknown integration \"acme\" in action \"acme.pause\"",
            "  hint: known integrations: anthropic, braze, google-ads, google-oauth, google-workspace, hubspot, klaviyo, linkedin, mailchimp, marketo, meta, microsoft-graph, openai, salesforce, sfmc, slack",
            "actions.yaml:9:13: error: integration \"mailchimp\" has no action \"pause_automations\"",
            "  hint: did you mean `mailchimp.pause_automation`?",
            "actions.yaml:11:13: error: integration \"hubspot\" has no action \"frobnicate\"",
            "  hint: hubspot offers: disable_platform_workflow, disable_workflow, enable_platform_workflow, enable_workflow, get_refresh_token, get_workflow, list_audit_logs, list_campaigns, list_connected_apps, list_published_emails, list_workflows, publish_email, revoke_refresh_token, rotate_private_app_token, unpublish_email",
        ],
        &[
            "hubspt.list_audit_logs",
            "acme.pause",
            "mailchimp.pause_automations",
            "hubspot.frobnicate",
        ],
    );
}

#[test]
fn a_step_needs_exactly_one_kind() {
    let src = "\
version: 1
name: kinds
steps:
  - id: nothing
    phase: contain
  - id: both
    action: hubspot.list_audit_logs
    wait: 10s
";
    check_runbook(
        "kinds.yaml",
        src,
        &[
            "kinds.yaml:4:5: error: step `nothing` has no kind",
            "  hint: give it exactly one of: action, notice, approval, manual, wait",
            "kinds.yaml:8:5: error: step `both` has both `action` and `wait`",
            "  hint: a step has exactly one of: action, notice, approval, manual, wait; split it in two",
        ],
        &["id: nothing", "wait: 10s"],
    );
}

#[test]
fn bad_durations_point_at_the_value() {
    let src = "\
version: 1
name: durations
steps:
  - id: a
    action: hubspot.list_audit_logs
    timeout: 30x
  - id: b
    wait: soon
  - id: c
    action: hubspot.list_audit_logs
    retry: { attempts: 3, backoff: 5 }
";
    check_runbook(
        "durations.yaml",
        src,
        &[
            "durations.yaml:6:14: error: invalid duration \"30x\" in `timeout`",
            "  hint: write a number with a unit: 500ms, 30s, 10m, 2h, 1d",
            "durations.yaml:8:11: error: invalid duration \"soon\" in `wait`",
            "  hint: write a number with a unit: 500ms, 30s, 10m, 2h, 1d",
            "durations.yaml:11:36: error: `retry.backoff` must be a duration, found 5",
            "  hint: write a number with a unit: 500ms, 30s, 10m, 2h, 1d",
        ],
        &["30x", "soon", "5 }"],
    );
}

#[test]
fn a_broken_step_is_still_known_to_the_steps_that_need_it() {
    // `a` fails to load (bad wait); `b` needing it and reading its output
    // must not be told that `a` does not exist, and the problems of the
    // second `b` are reported at the second `b`, not the first.
    let src = "\
version: 1
name: cascade
steps:
  - id: a
    wait: soon
  - id: b
    action: hubspot.list_audit_logs
    needs: [a]
    with: { x: \"{{steps.a.output}}\" }
  - id: b
    action: hubspot.list_audit_logs
    with: { x: \"{{inputs.nope}}\" }
";
    check_runbook(
        "cascade.yaml",
        src,
        &[
            "cascade.yaml:5:11: error: invalid duration \"soon\" in `wait`",
            "  hint: write a number with a unit: 500ms, 30s, 10m, 2h, 1d",
            "cascade.yaml:10:9: error: duplicate step id \"b\"",
            "  hint: first defined on line 6; step ids must be unique",
            "cascade.yaml:12:17: error: template reads unknown input \"nope\"",
            "  hint: declare it under `inputs:`",
        ],
        &["soon", "b", "{{inputs.nope}}"],
    );
}

// ------------------------------------------------------------------ for_each

#[test]
fn for_each_paths_must_name_a_dependency_or_a_list_input() {
    let src = "\
version: 1
name: loops
inputs:
  tools: { type: list, default: [] }
steps:
  - id: find
    action: hubspot.list_connected_apps
  - id: other
    action: hubspot.list_connected_apps
  - id: a
    action: hubspot.revoke_refresh_token
    needs: [find]
    for_each: steps.fnd.output.tokens
    with: { token: \"{{item.token}}\" }
  - id: b
    action: hubspot.revoke_refresh_token
    for_each: inputs.tool
    with: { token: \"{{item}}\" }
  - id: c
    action: hubspot.revoke_refresh_token
    needs: [find]
    for_each: steps.other.output
    with: { token: \"{{item}}\" }
";
    check_runbook(
        "loops.yaml",
        src,
        &[
            "loops.yaml:13:15: error: `for_each` path \"steps.fnd.output.tokens\" names unknown step \"fnd\"",
            "  hint: did you mean `steps.find`?",
            "loops.yaml:17:15: error: `for_each` path \"inputs.tool\" names unknown input \"tool\"",
            "  hint: did you mean `inputs.tools`?",
            "loops.yaml:22:15: error: `for_each` path \"steps.other.output\" reads step \"other\", which this step does not depend on",
            "  hint: add \"other\" to `needs` so its output exists when this step runs",
        ],
        &["steps.fnd", "inputs.tool", "steps.other"],
    );
}

// ----------------------------------------------------------------- templates

#[test]
fn template_syntax_errors_point_at_the_braces_at_fault() {
    let src = "\
version: 1
name: braces
inputs:
  tool: { type: string }
steps:
  - id: a
    action: hubspot.list_audit_logs
    with: { name: \"Tool {{inputs.tool}\", other: x }
  - id: b
    action: hubspot.list_audit_logs
    with:
      open: Tool {{#if inputs.tool}} named
      mismatched: \"{{#each inputs.tool}}{{/if}}\"
      stray: \"a {{/each}}\"
      param: \"{{upper inputs.tool x=}}\"
      body: |
        Hello
          {{inputs.tool}}
        {{inputs.tool}
";
    check_runbook(
        "braces.yaml",
        src,
        &[
            "braces.yaml:8:25: error: `{{` is never closed",
            "  hint: close it with `}}`",
            "braces.yaml:12:18: error: `{{#if inputs.tool}}` is never closed",
            "  hint: end the block with `{{/if}}`",
            "braces.yaml:13:41: error: `{{/if}}` does not close `{{#each inputs.tool}}`",
            "  hint: close `{{#each inputs.tool}}` with `{{/each}}` first",
            "braces.yaml:14:17: error: `{{/each}}` closes no open block",
            "  hint: remove it, or open the block with `{{#each ...}}`",
            "braces.yaml:15:15: error: template syntax error in `{{upper inputs.tool x=}}`",
            "braces.yaml:19:9: error: `{{` is never closed",
            "  hint: close it with `}}`",
        ],
        &[
            "{{inputs.tool}\"",
            "{{#if",
            "{{/if}}",
            "{{/each}}",
            "{{upper",
            "{{inputs.tool}",
        ],
    );
}

#[test]
fn templates_may_read_only_dependencies_declared_inputs_and_known_helpers() {
    let src = "\
version: 1
name: reads
inputs:
  tool: { type: string }
steps:
  - id: find
    action: hubspot.list_connected_apps
  - id: mid
    action: hubspot.list_connected_apps
    needs: [find]
  - id: other
    action: hubspot.list_connected_apps
  - id: a
    action: hubspot.revoke_refresh_token
    needs: [mid]
    with:
      transitive: \"{{steps.find.output.id}}\"
      not_a_dep: \"{{steps.other.output.id}}\"
      input: \"{{inputs.toll}}\"
      helper: \"{{uper inputs.tool}}\"
      item: \"token {{item.token}}\"
";
    check_runbook(
        "reads.yaml",
        src,
        &[
            "reads.yaml:18:19: error: template reads step \"other\", which step \"a\" does not depend on",
            "  hint: add \"other\" to `needs` so its output exists when this step runs",
            "reads.yaml:19:15: error: template reads unknown input \"toll\"",
            "  hint: did you mean `inputs.tool`?",
            "reads.yaml:20:16: error: unknown helper `uper`",
            "  hint: did you mean `upper`?",
            "reads.yaml:21:20: error: template reads `item`, but this step has no `for_each`",
            "  hint: `item` is the current element of a for_each list",
        ],
        &[
            "{{steps.other",
            "{{inputs.toll",
            "{{uper",
            "{{item.token",
        ],
    );
}

#[test]
fn parent_is_readable_only_over_a_fan_out_steps_output() {
    let src = "\
version: 1
name: parents
steps:
  - id: projects
    action: openai.list_projects
  - id: keys
    action: openai.list_project_api_keys
    needs: [projects]
    for_each: steps.projects.output
    with: { project_id: \"{{parent.id}}\" }
  - id: delete
    action: openai.delete_project_api_key
    needs: [keys]
    for_each: steps.keys.output
    with: { project_id: \"{{parent.id}}\", api_key_id: \"{{item.id}}\" }
  - id: check
    action: openai.list_project_api_keys
    needs: [delete]
    for_each: steps.projects.output
    with: { project_id: \"{{item.id}}\" }
    verify: { remains: \"{{parent.id}}\" }
";
    check_runbook(
        "parents.yaml",
        src,
        &[
            "parents.yaml:10:26: error: template reads `parent`, but this step does not iterate a fan-out step's output",
            "  hint: `parent` is the item a fan-out step listed this one for: set `for_each: steps.<id>.output` where step <id> has a for_each",
            "parents.yaml:21:25: error: a verification reads each re-read item; `parent` is not available here",
            "  hint: read the fields of `item`",
        ],
        &["{{parent.id}}", "{{parent.id}}"],
    );
}

#[test]
fn templates_in_when_prompts_and_instructions_are_checked_too() {
    let src = "\
version: 1
name: others
inputs:
  tool: { type: string, required: true }
  jurisdictions: { type: list, default: [EU] }
steps:
  - id: draft
    notice: { audience: customers, jurisdictions: inputs.jurisdiction }
    when: \"{{inputs.tol}}\"
  - id: approve
    approval: { approvers: [legal], prompt: \"Send for {{incident.sevrity}}?\" }
    needs: [draft]
  - id: vendor
    manual: \"Ask {{inputs.tool}} to delete {{secrets.TOKEN}}\"
  - id: vendor-again
    manual:
      assignee: mops
      instructions: |
        Ask the vendor
        to delete {{upload.id}}
";
    check_runbook(
        "others.yaml",
        src,
        &[
            "others.yaml:8:51: error: `notice.jurisdictions` path \"inputs.jurisdiction\" names unknown input \"jurisdiction\"",
            "  hint: did you mean `inputs.jurisdictions`?",
            "others.yaml:9:12: error: template reads unknown input \"tol\"",
            "  hint: did you mean `inputs.tool`?",
            "others.yaml:11:55: error: template reads unknown incident field \"sevrity\"",
            "  hint: did you mean `incident.severity`?",
            "others.yaml:14:44: error: runbook templates cannot read secrets",
            "  hint: secrets belong in integration manifests, which inject them into requests",
            "others.yaml:20:19: error: template reads unknown variable \"upload.id\"",
            "  hint: templates can read inputs, steps.<id>.output, item and incident",
        ],
        &[
            "inputs.jurisdiction ",
            "{{inputs.tol}}",
            "{{incident.sevrity}}",
            "{{secrets.TOKEN}}",
            "{{upload.id}}",
        ],
    );
}

// ------------------------------------------------------------- all at once

/// Also: `tool`, whose declaration is broken, is still a declared input for
/// the templates reading it, and `find`, needed before it is defined, is fine.
#[test]
fn every_problem_of_a_file_is_reported_in_line_order() {
    let src = "\
version: 1
name: many
inputs:
  tool: { type: strng }
steps:
  - id: revoke
    action: hubspot.revoke_refresh_token
    needs: [find]
    timeout: 30x
  - id: find
    action: hubspot.list_conected_apps
    with: { q: \"{{inputs.tool}}\", r: \"{{inputs.tols}}\" }
    phase: contian
";
    check_runbook(
        "many.yaml",
        src,
        &[
            "many.yaml:4:17: error: unknown input type \"strng\"",
            "  hint: did you mean `string`?",
            "many.yaml:9:14: error: invalid duration \"30x\" in `timeout`",
            "  hint: write a number with a unit: 500ms, 30s, 10m, 2h, 1d",
            "many.yaml:11:13: error: integration \"hubspot\" has no action \"list_conected_apps\"",
            "  hint: did you mean `hubspot.list_connected_apps`?",
            "many.yaml:12:39: error: template reads unknown input \"tols\"",
            "  hint: did you mean `inputs.tool`?",
            "many.yaml:13:12: error: unknown phase \"contian\"",
            "  hint: use contain, notify or recover",
        ],
        &[
            "strng",
            "30x",
            "hubspot.list_conected_apps",
            "{{inputs.tols}}",
            "contian",
        ],
    );
}

#[test]
fn a_valid_runbook_loads() {
    let src = "\
version: 1
name: valid
inputs:
  tool: { type: string, required: true }
steps:
  - id: find-grants
    action: hubspot.list_connected_apps
    phase: contain
  - id: revoke-grants
    action: hubspot.revoke_refresh_token
    needs: [find-grants]
    for_each: steps.find-grants.output.tokens
    with: { token: \"{{item.token}}\", note: \"{{upper inputs.tool}}\" }
    retry: { attempts: 5, backoff: 500ms, max_backoff: 30s }
    timeout: 30s
  - id: cool-down
    wait: 10m
    needs: [revoke-grants]
";
    let rb = quench::runbook::load("valid.yaml", src, known()).unwrap();
    assert_eq!(rb.steps.len(), 3);
}

// ------------------------------------------------------------------ manifests

const MANIFEST: &str = "\
name: acme
base_url: \"https://{{secrets.ACME_HOST}}/api\"
auth: { bearer: \"{{secrets.ACME_TOKEN}}\" }
actions:
  pause:
    method: POST
    path: \"/campaigns/{{with.id}}/pause\"
    heders: { X-Source: quench }
  fetch:
    method: FETCH
    path: campaigns
  revoke:
    method: DELETE
    path: \"/tokens/{{wth.token}}\"
    ok: [204]
    simulate: { status: 500 }
";

#[test]
fn manifest_problems_are_located() {
    check_manifest(
        "acme.yaml",
        MANIFEST,
        &[
            "acme.yaml:8:5: error: unknown key `heders` in action `pause`",
            "  hint: did you mean `headers`?",
            "acme.yaml:10:13: error: unknown HTTP method \"FETCH\"",
            "  hint: use one of: GET, POST, PUT, PATCH, DELETE",
            "acme.yaml:11:11: error: path \"campaigns\" must start with /",
            "  hint: it is appended to base_url",
            "acme.yaml:14:20: error: template reads unknown variable \"wth.token\"",
            "  hint: did you mean `with`?",
            "acme.yaml:16:25: error: simulated status 500 is neither `ok` nor `already_done`, so every drill would fail",
            "  hint: simulate a success; test failures against a mock server instead",
        ],
        &["heders", "FETCH", "campaigns", "{{wth.token}}", "500"],
    );
}

#[test]
fn manifest_base_url_may_read_only_secrets() {
    let src = "\
name: acme
base_url: \"https://{{with.host}}/api\"
actions:
  ping: { method: GET, path: /ping }
";
    check_manifest(
        "acme.yaml",
        src,
        &[
            "acme.yaml:2:20: error: template reads unknown variable \"with.host\"",
            "  hint: this template can read: secrets",
        ],
        &["{{with.host}}"],
    );
}

// ----------------------------------------------------------- notice templates

#[test]
fn notice_template_syntax_error_points_at_the_unclosed_block() {
    let src = "\
Dear customer,

We write about {{inputs.tool}}.
{{#if inputs.records}}
About {{inputs.records}} records were exposed.
";
    check_notice(
        "runbooks/notices/customers.hbs",
        src,
        &[
            "runbooks/notices/customers.hbs:4:1: error: `{{#if inputs.records}}` is never closed",
            "  hint: end the block with `{{/if}}`",
        ],
        &["{{#if"],
    );
}

#[test]
fn notice_template_unclosed_braces_inside_a_line() {
    let src = "Dear customer,\n\nWe write about {{inputs.tool} today.\n";
    check_notice(
        "customers.hbs",
        src,
        &[
            "customers.hbs:3:16: error: `{{` is never closed",
            "  hint: close it with `}}`",
        ],
        &["{{inputs.tool}"],
    );
}

#[test]
fn notice_template_reading_an_unknown_variable() {
    let src = "\
Dear customer,

We write about {{inputs.tool}} on {{incident.declared_at}}.
Contact {{organisation.dpo.email}}.
{{#each inputs.data_elements}}- {{this}} {{name}}
{{/each}}
";
    check_notice(
        "customers-EU.hbs",
        src,
        &[
            "customers-EU.hbs:4:9: error: template reads unknown variable \"organisation.dpo.email\"",
            "  hint: did you mean `organization`?",
        ],
        &["{{organisation"],
    );
}

// ------------------------------------------------------------- the binary

/// Runs `quench --data-dir DIR/data validate ARGS...` in `dir`.
fn validate(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("validate")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn validate_binary_reports_all_problems_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "\
version: 1
name: broken
steps:
  - id: find
    action: hubspot.list_connected_apps
    retyr: { attempts: 3 }
  - id: revoke
    action: hubspot.revoke_refresh_token
    needs: [fnd]
    for_each: steps.find.output.tokens
    with: { token: \"{{item.token}}\" }
    wait: soon
",
    )
    .unwrap();
    let (code, stdout, stderr) = validate(dir.path(), &["broken.yaml"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "\
broken.yaml:6:5: error: unknown key `retyr` in a step
  hint: did you mean `retry`?
broken.yaml:9:13: error: `needs` names unknown step \"fnd\"
  hint: did you mean `find`?
broken.yaml:10:15: error: `for_each` path \"steps.find.output.tokens\" reads step \"find\", which this step does not depend on
  hint: add \"find\" to `needs` so its output exists when this step runs
broken.yaml:12:5: error: step `revoke` has both `action` and `wait`
  hint: a step has exactly one of: action, notice, approval, manual, wait; split it in two
4 problems found
"
    );
}

#[test]
fn validate_binary_accepts_a_valid_runbook() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("valid.yaml"),
        "\
version: 1
name: valid
inputs:
  tool: { type: string, required: true }
steps:
  - id: pause
    action: mailchimp.pause_automation
    with: { workflow_id: \"{{inputs.tool}}\" }
  - id: cool-down
    wait: 10m
    needs: [pause]
",
    )
    .unwrap();
    let (code, stdout, stderr) = validate(dir.path(), &["valid.yaml"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, "ok: 1 file(s)\n");
}

#[test]
fn validate_binary_checks_manifests_and_notice_templates_together() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acme.yaml"), MANIFEST).unwrap();
    std::fs::write(
        dir.path().join("customers.hbs"),
        "Hello {{inputs.tool}},\n{{#each inputs.data_elements}}{{this}}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = validate(dir.path(), &["customers.hbs", "acme.yaml"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(
        lines,
        [
            "acme.yaml:8:5: error: unknown key `heders` in action `pause`",
            "acme.yaml:10:13: error: unknown HTTP method \"FETCH\"",
            "acme.yaml:11:11: error: path \"campaigns\" must start with /",
            "acme.yaml:14:20: error: template reads unknown variable \"wth.token\"",
            "acme.yaml:16:25: error: simulated status 500 is neither `ok` nor `already_done`, so every drill would fail",
            "customers.hbs:2:1: error: `{{#each inputs.data_elements}}` is never closed",
            "6 problems found",
        ]
    );
}

#[test]
fn validate_binary_reports_a_yaml_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "version: 1\nname: bad\nsteps:\n  - id: a\n     wait: 1s\n",
    )
    .unwrap();
    let (code, stdout, stderr) = validate(dir.path(), &["bad.yaml"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(
        stderr,
        "bad.yaml:5:10: error: invalid YAML: mapping values are not allowed in this context\n\
         1 problem found\n"
    );
}

#[test]
fn manifest_stateful_simulation_problems_are_located() {
    let src = "\
name: acme
base_url: https://acme.example
tenant:
  flows:
    - { id: f1, status: live }
actions:
  list:
    method: GET
    path: /flows
    output: data
    simulate: { list: flow, where: { status: live } }
  pause:
    method: PATCH
    path: \"/flows/{{with.id}}\"
    simulate: { update: flows, set: { status: request.header.x } }
  delete:
    method: DELETE
    path: \"/flows/{{with.id}}\"
    query: { force: \"true\" }
    simulate: { delete: flows, id: request.path.flow_id, where: { status: request.query.state, owner: request.body.owner } }
";
    check_manifest(
        "acme.yaml",
        src,
        &[
            "acme.yaml:11:15: error: simulate names tenant collection `flow`, which the manifest does not have",
            "  hint: did you mean `flows`?",
            "acme.yaml:15:15: error: `simulate.update` needs `id`: which object the request targets",
            "  hint: for example id: request.path.flow_id",
            "acme.yaml:15:47: error: unknown request part in \"request.header.x\"",
            "  hint: use request.path.NAME, request.body.PATH, request.form.NAME, request.query.NAME or request.quoted.NAME",
            "acme.yaml:20:36: error: `simulate` reads request.path.flow_id, but the path \"/flows/{{with.id}}\" has no {{with.flow_id}}",
            "  hint: name a part of the request this action sends",
            "acme.yaml:20:75: error: `simulate` reads request.query.state, but the action sends no query parameter \"state\" (it sends: force)",
            "  hint: name a part of the request this action sends",
            "acme.yaml:20:103: error: `simulate` reads request.body.owner, but the action sends no body",
            "  hint: name a part of the request this action sends",
        ],
        &[
            "{ list: flow",
            "{ update: flows",
            "request.header.x",
            "request.path.flow_id",
            "request.query.state",
            "request.body.owner",
        ],
    );
}

#[test]
fn read_true_is_refused_where_the_method_changes_state() {
    let src = "\
name: acme
base_url: https://acme.example
actions:
  search:
    method: POST
    path: /search
    read: true
  drop:
    method: DELETE
    path: /things
    read: true
  list:
    method: GET
    path: /things
    read: true
";
    check_manifest(
        "acme.yaml",
        src,
        &[
            "acme.yaml:11:11: error: `read: true` on a DELETE, which changes state",
            "  hint: only a POST the vendor documents as a read (a search, a query) may say `read: true`; a plan never sends this action",
            "acme.yaml:15:11: error: `read: true` on a GET, which is a read already",
            "  hint: remove `read: true`",
        ],
        &["true", "true"],
    );
}

#[test]
fn verify_needs_an_action_and_reads_known_things() {
    let src = "\
version: 1
name: t
steps:
  - id: list
    action: klaviyo.list_api_keys
    verify:
      remains: \"{{item.attributes.name}} {{inputs.tol}}\"
  - id: wait
    wait: 1m
    verify: { shows: x }
";
    check_runbook(
        "t.yaml",
        src,
        &[
            "t.yaml:7:42: error: template reads unknown input \"tol\"",
            "  hint: declare it under `inputs:`",
            "t.yaml:10:13: error: `verify` is missing the required key `remains`",
            "t.yaml:10:13: error: `verify` belongs on an action step",
            "  hint: re-read the platform with a list action and say what must not remain",
        ],
        &["{{inputs.tol}}", "{ shows", "{ shows"],
    );
}

#[test]
fn an_inputs_max_length_must_be_a_sane_count_of_characters() {
    check_runbook(
        "rb.yaml",
        "version: 1\nname: rb\ninputs:\n  tool: { type: string, max_length: 0 }\n  note: { type: string, max_length: lots }\nsteps:\n  - id: w\n    wait: 1s\n",
        &[
            "rb.yaml:4:37: error: `max_length` of input `tool` must be a whole number of characters from 1 to 100000",
            "rb.yaml:5:37: error: `max_length` of input `note` must be a whole number of characters from 1 to 100000",
        ],
        &["0", "lots"],
    );
}

#[test]
fn a_runbook_too_big_too_deep_or_with_too_many_steps_is_refused_where_it_starts() {
    let deep = |n: usize| {
        format!(
            "version: 1\nname: rb\nsteps: {}{}\n",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    // The 64th level is the last allowed: the top map is level 1.
    check_runbook(
        "rb.yaml",
        &deep(100),
        &["rb.yaml:3:71: error: nested more than 64 levels deep\n  hint: runbooks and manifests need a handful of levels; flatten this value"],
        &["["],
    );
    // Far deeper: refused where the scanner's own limit is met, at once.
    check_runbook(
        "rb.yaml",
        &deep(100_000),
        &["rb.yaml:3:263: error: nested more than 64 levels deep\n  hint: runbooks and manifests need a handful of levels; flatten this value"],
        &["["],
    );
    let mut many = String::from("version: 1\nname: rb\nsteps:\n");
    for i in 0..1_001 {
        many.push_str(&format!("  - {{ id: s{i}, wait: 1s }}\n"));
    }
    check_runbook(
        "rb.yaml",
        &many,
        &["rb.yaml:4:3: error: 1001 steps; a runbook has at most 1000\n  hint: fan out over a list with `for_each` instead of writing a step per item"],
        &["- { id: s0"],
    );
    let big = format!(
        "version: 1\nname: rb\n# {}\nsteps: [{{ id: w, wait: 1s }}]\n",
        "x".repeat(1 << 20)
    );
    let d = quench::runbook::load("rb.yaml", &big, known()).unwrap_err();
    assert!(
        d.to_string()
            .starts_with("rb.yaml:1:1: error: the file is 1048628 bytes; at most 1048576 (1 MiB)"),
        "{d}"
    );
}

#[test]
fn a_long_chain_of_needs_is_checked_and_its_cycle_found() {
    let mut chain =
        String::from("version: 1\nname: rb\nsteps:\n  - { id: s0, wait: 1s, needs: [s999] }\n");
    for i in 1..1_000 {
        chain.push_str(&format!(
            "  - {{ id: s{i}, wait: 1s, needs: [s{}] }}\n",
            i - 1
        ));
    }
    let d = quench::runbook::load("rb.yaml", &chain, known()).unwrap_err();
    let msg = d.to_string();
    assert!(
        msg.starts_with("rb.yaml:4:33: error: dependency cycle: s0 -> s999 -> s998"),
        "{}",
        &msg[..200]
    );
    assert!(msg.contains("s1 -> s0\n"), "{}", &msg[msg.len() - 300..]);
    // Without the back edge it is valid, and the last step depends on the first.
    let fixed = chain.replacen("needs: [s999] ", "", 1);
    let rb = quench::runbook::load("rb.yaml", &fixed, known()).unwrap();
    let g = quench::runbook::graph::Graph::new(&rb);
    assert!(g.depends_on("s999", "s0") && !g.depends_on("s0", "s999"));
    assert_eq!(g.ancestors("s999").len(), 999);
}

/// Found by `fuzz.rs`: a required key that is missing was reported, then
/// read anyway, and the read panicked.
#[test]
fn a_registry_missing_a_required_key_is_a_diagnostic_not_a_panic() {
    use quench::registry::Registry;
    let d = Registry::parse("approved-tools.yaml", "other: 1\n").unwrap_err();
    assert!(d.to_string().contains("`tools`"), "{d}");
    let d = Registry::parse("approved-tools.yaml", "tools:\n  - { vendor: OpenAI }\n").unwrap_err();
    assert!(d.to_string().contains("`name`"), "{d}");
}

// ---------------------------------------------------------------- input vocabularies

#[test]
fn defaults_outside_an_inputs_values_are_refused_where_they_stand() {
    let src = "\
version: 1
name: vocab
inputs:
  jurisdictions: { type: list, default: [EU, US-CAA] }
  data_elements: { type: list, values: data_element, default: [] }
  channel: { type: string, values: [email, sms], default: emial }
  count: { type: integer, values: [a] }
steps:
  - id: a
    manual: { instructions: hi }
";
    check_runbook(
        "vocab.yaml",
        src,
        &[
            "vocab.yaml:4:46: error: default of input `jurisdictions`: \"US-CAA\" is not one of its values\n  hint: did you mean `US-CA`?",
            "vocab.yaml:5:40: error: no vocabulary named \"data_element\"\n  hint: did you mean `data_elements`?",
            "vocab.yaml:6:59: error: default of input `channel`: \"emial\" is not one of its values\n  hint: did you mean `email`?",
            "vocab.yaml:7:35: error: `values` fits a list or string input; `count` is an integer",
        ],
        &["US-CAA", "data_element", "emial", "[a]"],
    );
}

#[test]
fn a_declared_vocabulary_is_checked_at_declaration_and_an_undeclared_input_is_free() {
    let src = "\
version: 1
name: vocab
inputs:
  channels: { type: list, values: [email, sms] }
  jurisdictions: { type: list, values: jurisdictions }
  note: { type: string }
steps:
  - id: a
    manual: { instructions: hi }
";
    let rb = quench::runbook::load("vocab.yaml", src, known()).unwrap();
    let given = |kv: &[&str]| {
        let kv: Vec<String> = kv.iter().map(|s| s.to_string()).collect();
        quench::runbook::inputs::parse(&rb, &kv)
    };
    let err = given(&["channels=email,smss", "jurisdictions=EU,UK,Atlantis"])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "--input channels: unknown value \"smss\" (did you mean `sms`?)\n--input jurisdictions: unknown value \"Atlantis\" (known: {})",
            known().vocabularies["jurisdictions"].join(", ")
        ),
    );
    let ok = given(&["channels=sms", "jurisdictions=EU", "note=anything at all"]).unwrap();
    assert_eq!(ok["channels"], serde_json::json!(["sms"]));
}
