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
