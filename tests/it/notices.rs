//! Notice templates (runbooks/notices/*.hbs): every bundled template renders
//! with a full context and carries what its law requires; rendering is
//! strict (a missing variable is an error naming it); validation locates a
//! template that reads an unknown variable.
//!
//! The context is built here with exactly the variables DESIGN.md gives a
//! notice template (and no `steps`), so a template reading anything else
//! fails these tests.

use std::sync::OnceLock;

use quench::notices::NoticeTemplates;
use serde_json::{json, Value as Json};

/// Jurisdiction codes of DESIGN.md (the bundled runbook's `jurisdictions`).
const CODES: &[&str] = &[
    "EU", "UK", "US-CA", "US-NY", "US-TX", "CA", "BR", "CN", "SG", "AU", "JP", "IN",
];

/// Codes that deliberately have no template of their own for an audience,
/// and fall back to the general `regulator` / `customers` template. None at
/// present: every DESIGN.md code has both a regulator and a customer
/// template (US-CA's regulator template is the Attorney General's sample
/// submission; India's customer template is the rule 7(1) intimation).
const NO_OWN_TEMPLATE: &[(&str, &str)] = &[];

/// Data elements of DESIGN.md.
const ELEMENTS: &[&str] = quench::notices::clocks::DATA_ELEMENTS;

/// The bundled runbook's default data elements: a marketing list.
const MARKETING_LIST: &[&str] = &["name", "email", "purchase_history"];

const TOOL: &str = "PromptPal Pro";
const RECORDS: u64 = 48213;
const INCIDENT: &str = "INC-20260302-0007";
const DECLARED_AT: &str = "2026-03-02T09:15:00+00:00";
/// How notices show it (the `date` helper): people, not RFC 3339.
const DECLARED_SHOWN: &str = "2026-03-02 09:15 UTC";
const DPO_NAME: &str = "Jane Doe";
const DPO_EMAIL: &str = "dpo@acme.example";
const DPO_PHONE: &str = "+44 20 7946 0000";
const WEBSITE: &str = "https://acme.example/security";

fn templates() -> &'static NoticeTemplates {
    static T: OnceLock<NoticeTemplates> = OnceLock::new();
    T.get_or_init(|| NoticeTemplates::load(None).unwrap_or_else(|d| panic!("{d}")))
}

/// `customers-US-CA` -> ("customers", Some("US-CA")); `regulator` -> ("regulator", None).
fn split(name: &str) -> (&str, Option<&str>) {
    match name.split_once('-') {
        Some((audience, code)) => (audience, Some(code)),
        None => (name, None),
    }
}

/// A full notice context, in the shape `notice_step` builds, with nothing
/// beyond the variables DESIGN.md lists.
fn ctx(name: &str, elements: &[&str]) -> Json {
    let (audience, code) = split(name);
    let code = code.unwrap_or("XX");
    json!({
        "incident": {
            "id": INCIDENT,
            "declared_at": DECLARED_AT,
            "declared_by": "U0RESP01",
            "severity": "sev1",
            "runbook": "shadow-ai-exposure",
        },
        "inputs": {
            "tool": TOOL,
            "records": RECORDS,
            "jurisdictions": CODES,
            "data_elements": elements,
        },
        "organization": {
            "name": "Acme Retail Ltd",
            "website": WEBSITE,
            "dpo": {"name": DPO_NAME, "email": DPO_EMAIL, "phone": DPO_PHONE},
        },
        "jurisdiction": {
            "code": code,
            "name": quench::notices::jurisdiction_name(code),
            "zone": quench::timeline::clocks::table().zone(code).map(|z| z.name()),
            "residents": null,
        },
        "notice": {"audience": audience, "version": 1},
        "chronology": [
            {"at": DECLARED_AT, "text": "Became aware of the breach; incident declared by U0RESP01"},
            {"at": "2026-03-02T09:16:00+00:00", "text": "Salesforce Platform: revoke the tool's grants (3 done)"},
        ],
    })
}

#[track_caller]
fn render_with(name: &str, elements: &[&str]) -> String {
    templates()
        .render(name, &ctx(name, elements))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[track_caller]
fn render(name: &str) -> String {
    render_with(name, ELEMENTS)
}

fn names() -> Vec<String> {
    templates().names().cloned().collect()
}

#[track_caller]
fn assert_contains_all(name: &str, body: &str, needles: &[&str]) {
    for n in needles {
        assert!(body.contains(n), "{name} lacks {n:?}:\n{body}");
    }
}

/// Where each line equal to one of `headings` (after trimming) starts, in
/// order, panicking if one is missing or out of order.
#[track_caller]
fn assert_headings_in_order(name: &str, body: &str, headings: &[&str]) {
    let lines: Vec<&str> = body.lines().map(str::trim).collect();
    let mut last = None;
    for h in headings {
        let at = lines
            .iter()
            .position(|l| l == h)
            .unwrap_or_else(|| panic!("{name} lacks the heading {h:?}:\n{body}"));
        if let Some((prev, prev_at)) = last {
            assert!(
                at > prev_at,
                "{name}: heading {h:?} comes before {prev:?}:\n{body}"
            );
        }
        last = Some((h, at));
    }
}

#[test]
fn every_template_renders_with_a_full_context_and_names_the_essentials() {
    let names = names();
    assert!(names.len() >= 26, "templates: {names:?}");
    for name in &names {
        for elements in [ELEMENTS, MARKETING_LIST] {
            let body = render_with(name, elements);
            assert_contains_all(
                name,
                &body,
                &[TOOL, &RECORDS.to_string(), INCIDENT, DPO_NAME, DPO_EMAIL],
            );
            assert!(!body.contains("{{"), "{name} left a tag unrendered");
            // The eml export takes a customer notice's subject from its first line.
            if split(name).0 == "customers" {
                assert!(body.starts_with("Subject: "), "{name} has no subject line");
            }
            // Facts the system does not have are marked, never left blank.
            assert_eq!(
                body.matches("[to be completed").count(),
                body.matches('[').count(),
                "{name}: every bracket is a `[to be completed: ...]` marker:\n{body}"
            );
        }
        // Specific templates speak in words, not in input codes.
        if split(name).1.is_some() {
            let body = render(name);
            for code in [
                "purchase_history",
                "postal_address",
                "government_id",
                "financial_account",
                "payment_card",
                "precise_location",
            ] {
                assert!(!body.contains(code), "{name} prints the code {code}");
            }
        }
    }
}

#[test]
fn every_design_jurisdiction_has_its_regulator_and_customer_templates() {
    let t = templates();
    for audience in ["regulator", "customers"] {
        for code in CODES {
            let picked = t.pick(audience, Some(code));
            if NO_OWN_TEMPLATE.contains(&(audience, code)) {
                assert_eq!(picked.as_deref(), Some(audience), "{audience} {code}");
            } else {
                assert_eq!(
                    picked,
                    Some(format!("{audience}-{code}")),
                    "{audience} {code} has no template of its own"
                );
            }
        }
        // Any other code gets the general template.
        assert_eq!(t.pick(audience, Some("ZZ")).as_deref(), Some(audience));
    }
    // And nothing is bundled for a code DESIGN.md does not know.
    for name in names() {
        if let (_, Some(code)) = split(&name) {
            assert!(CODES.contains(&code), "{name}: unknown jurisdiction");
        }
    }
}

/// Per template: what its law requires, as text the notice must contain.
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "regulator-EU",
        &[
            "Article 33",
            "(a) Nature of the personal data breach",
            "Categories of data subjects",
            "Approximate number of data subjects",
            "Approximate number of personal data records",
            "Categories of personal data records",
            "(b) Name and contact details of the data protection officer",
            DPO_PHONE,
            "(c) Likely consequences",
            "(d) Measures taken or proposed",
            "mitigate",
            "Reasons for the delay",
            "in phases",
            "Health data (special category, Art. 9)",
            DECLARED_SHOWN,
        ],
    ),
    (
        "customers-EU",
        &[
            "Article 34",
            "What happened",
            "What information was involved",
            "What this could mean for you",
            "What we have done",
            "What we will do next",
            "What you can do",
            "data protection officer",
            DPO_PHONE,
            "Change your password",
            "supervisory authority",
        ],
    ),
    (
        "regulator-UK",
        &[
            "Information Commissioner's Office",
            "(a) Nature of the personal data breach",
            "Approximate number of data subjects",
            "Approximate number of personal data records",
            "(b) Name and contact details of the data protection officer",
            "(c) Likely consequences",
            "(d) Measures taken or proposed",
            "Reasons for the delay",
            "National Insurance number",
        ],
    ),
    (
        "customers-UK",
        &[
            "UK General Data Protection Regulation",
            "What this could mean for you",
            "What we have done",
            "What you can do",
            "ico.org.uk",
            "0303 123 1113",
        ],
    ),
    (
        "customers-US-CA",
        &[
            "Date of this notice: [to be completed",
            "Date of the breach: [to be completed",
            "law enforcement investigation",
            "We discovered this on 2026-03-02",
            "Social Security number",
            "Civ. Code 1798.82(d)(2)(G)",
            "not less than 12 months",
            "security question or answer",
            "Equifax: 1-800-685-1111",
            "Experian: 1-888-397-3742",
            "TransUnion: 1-888-909-8872",
            "P.O. Box",
            "Acme Retail Ltd",
            DPO_PHONE,
        ],
    ),
    (
        "regulator-US-CA",
        &[
            "1798.82(f)",
            "more than 500 California residents",
            "15 calendar days",
            "sample",
            "excluding any personally identifiable information",
        ],
    ),
    (
        "customers-US-NY",
        &[
            "NOTICE OF DATA BREACH",
            "accessed or acquired",
            "Social Security number",
            "New York State Office of the Attorney General: 1-800-771-7755",
            "Division of Consumer Protection: 1-800-697-1220",
            "Federal Trade Commission: 1-877-438-4338",
            "Acme Retail Ltd",
        ],
    ),
    (
        "regulator-US-NY",
        &[
            "899-aa",
            "Office of the Attorney General",
            "Department of State",
            "Division of State Police",
            "1. The breach",
            "2. Approximate number of persons affected",
            "3. Timing of the notices",
            "4. Content of the notices",
            "5. Distribution of the notices",
            "template",
            "5,000",
            "7. Other filings",
        ],
    ),
    (
        "customers-US-TX",
        &[
            "NOTICE OF DATA BREACH",
            "sensitive personal information",
            "Texas Attorney General",
            "TransUnion: 1-888-909-8872",
        ],
    ),
    (
        "regulator-US-TX",
        &[
            "521.053",
            "2. Nature and circumstances of the breach",
            "3. Number of Texas residents affected",
            "4. Number of Texas residents notified, and how",
            "By mail:",
            "By email:",
            "5. Measures taken regarding the breach",
            "6. Measures the organization intends to take after notifying",
            "7. Law enforcement",
            "250",
        ],
    ),
    (
        "regulator-CA",
        &[
            "Office of the Privacy Commissioner of Canada",
            "SOR/2018-64",
            "(a) Circumstances of the breach and its cause",
            "(b) Day or period of the breach",
            "(c) Personal information that is the subject of the breach",
            "(d) Number of individuals affected",
            "(e) Steps taken to reduce the risk of harm",
            "(f) Steps taken or intended to notify affected individuals",
            "(g) Person who can answer the Commissioner's questions",
            "Real risk of significant harm",
            "Social Insurance Number",
        ],
    ),
    (
        "customers-CA",
        &[
            "What happened",
            "When it happened: [to be completed",
            "What information was involved",
            "What we have done to reduce the risk of harm",
            "What you can do to reduce the risk of harm",
            "If you are not satisfied",
            "make a complaint to us",
            "Office of the Privacy Commissioner of Canada",
            "1-800-282-1376",
        ],
    ),
    (
        "regulator-BR",
        &[
            "ANPD",
            "Art. 48",
            "Resolução CD/ANPD nº 15/2024",
            "I. Natureza dos dados pessoais afetados",
            "II. Informações sobre os titulares envolvidos",
            "III. Medidas técnicas e de segurança",
            "IV. Riscos relacionados ao incidente",
            "Motivos da demora",
            "VI. Medidas adotadas ou que serão adotadas",
            "Encarregado",
            "3 dias úteis",
            "Dados de saúde (dado pessoal sensível)",
            // Res. CD/ANPD 15/2024 art. 6 §2 IX, X and XII.
            "Agente de tratamento de pequeno porte (art. 6º, § 2º, IX)",
            "Identificação do operador (art. 6º, § 2º, X)",
            "Total de titulares nas atividades de tratamento afetadas (art. 6º, § 2º, XII)",
        ],
    ),
    (
        "customers-BR",
        &[
            "LGPD",
            "O que aconteceu",
            "Quais dados foram afetados",
            "Riscos e possíveis impactos",
            "O que já fizemos",
            "O que você pode fazer",
            "Data em que tomamos conhecimento do incidente",
            "motivos da demora",
            "encarregado",
            "ANPD",
        ],
    ),
    (
        "regulator-CN",
        &[
            "个人信息保护法》第五十七条",
            "二、泄露的个人信息种类",
            "三、事件原因",
            "四、可能造成的危害",
            "五、已采取的补救措施",
            "六、个人可以采取的减轻危害的措施",
            "九、联系方式",
            "4 小时",
            "30 日",
            "敏感个人信息",
        ],
    ),
    (
        "customers-CN",
        &[
            "第五十七条",
            "一、事件经过和原因",
            "二、涉及的个人信息种类",
            "三、可能造成的危害",
            "四、我们已采取的补救措施",
            "五、您可以采取的减轻危害的措施",
            "六、联系我们",
            "个人信息保护负责人",
            "您的姓名",
            "您的医疗健康信息",
        ],
    ),
    (
        "regulator-SG",
        &[
            "Personal Data Protection Commission",
            "26D",
            "1. Facts and circumstances of the data breach",
            "2. Number of affected individuals",
            "3. Personal data or classes of personal data affected",
            "4. Potential harm to affected individuals",
            "5. Remedial actions taken or to be taken",
            "6. Notification of affected individuals",
            "7. Authorised representative",
            "3 calendar days",
            "NRIC",
        ],
    ),
    (
        "customers-SG",
        &[
            "What happened",
            "What personal data was involved",
            "The harm this could cause you",
            "What we have done to reduce the harm",
            "What you can do to protect yourself",
            "authorised to answer your questions",
        ],
    ),
    (
        "regulator-AU",
        &[
            "26WK",
            "(a) Identity and contact details of the entity",
            "(b) Description of the eligible data breach",
            "(c) Kinds of information concerned",
            "(d) Recommended steps individuals should take",
            "serious harm",
            "Health information (sensitive information)",
        ],
    ),
    (
        "customers-AU",
        &[
            "Notifiable Data Breaches",
            "Who we are",
            "What happened",
            "What information was involved",
            "What we recommend you do",
            "OAIC",
            "1300 363 992",
        ],
    ),
    (
        "regulator-JP",
        &[
            "個人情報保護委員会",
            "第26条",
            "速報",
            "確報",
            "(1) 概要",
            "(2) 漏えい等が発生し、又は発生したおそれがある個人データの項目",
            "(3) 漏えい等が発生し、又は発生したおそれがある個人データに係る本人の数",
            "(4) 原因",
            "(5) 二次被害又はそのおそれの有無及びその内容",
            "(6) 本人への対応の実施状況",
            "(7) 公表の実施状況",
            "(8) 再発防止のための措置",
            "(9) その他参考となる事項",
        ],
    ),
    (
        "customers-JP",
        &[
            "1. 概要",
            "2. 対象となる個人情報の項目",
            "3. 原因",
            "4. 二次被害又はそのおそれの有無及びその内容",
            "7. お問い合わせ窓口",
        ],
    ),
    (
        "regulator-IN",
        &[
            "Data Protection Board of India",
            "rule 7(2)",
            "Nature:",
            "Extent:",
            "Timing:",
            "Location:",
            "Likely impact:",
            "(i) Updated and detailed information",
            "(ii) Broad facts",
            "(iii) Measures implemented or proposed",
            "(iv) Findings regarding the person who caused the breach",
            "(v) Remedial measures taken to prevent recurrence",
            "(vi) Report on the intimations given to affected Data Principals",
            "72 hours",
            "2027",
        ],
    ),
    (
        "customers-IN",
        &[
            "rule 7",
            "Nature:",
            "Extent:",
            "Timing:",
            "Location:",
            "What this could mean for you",
            "What we have done and are doing to reduce the risk",
            "What you can do to protect yourself",
            "Who can answer your questions",
        ],
    ),
    (
        "regulator",
        &[
            "1. Nature of the breach",
            "2. Categories and approximate number of people and records concerned",
            "3. Contact point",
            "4. Likely consequences",
            "5. Measures taken and proposed",
        ],
    ),
    (
        "customers",
        &[
            "What happened",
            "What information was involved",
            "What this could mean for you",
            "What we are doing",
            "What you can do",
            "For more information",
        ],
    ),
];

#[test]
fn each_template_carries_what_its_law_requires() {
    for (name, needles) in REQUIRED {
        assert_contains_all(name, &render(name), needles);
    }
    // Every bundled template is covered by the table above.
    for name in names() {
        assert!(
            REQUIRED.iter().any(|(n, _)| *n == name),
            "{name} has no required elements listed"
        );
    }
}

#[test]
fn regulator_notices_cover_the_common_elements() {
    // Nature, people and records, contact point, consequences, measures:
    // in the regulator notices of the English-language regimes these are
    // named as such.
    for code in ["EU", "UK", "CA", "SG", "AU", "IN"] {
        let name = format!("regulator-{code}");
        let body = render(&name).to_lowercase();
        for needle in [
            "nature|description|circumstances",
            "number",
            "records",
            DPO_PHONE,
            "harm|consequences|impact",
            "measures|steps taken|actions taken",
        ] {
            assert!(
                needle.split('|').any(|n| body.contains(n)),
                "{name} lacks {needle:?}:\n{body}"
            );
        }
    }
}

#[test]
fn california_notice_has_its_title_and_five_headings_in_order() {
    let body = render("customers-US-CA");
    // The title opens the notice (after the email subject line, which the
    // eml export turns into a header).
    assert_eq!(
        body.lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with("Subject: ")),
        Some("NOTICE OF DATA BREACH")
    );
    assert_headings_in_order(
        "customers-US-CA",
        &body,
        &[
            "NOTICE OF DATA BREACH",
            "What Happened",
            "What Information Was Involved",
            "What We Are Doing",
            "What You Can Do",
            "For More Information",
        ],
    );
    // The New York and Texas notices follow the same de-facto standard.
    for name in ["customers-US-NY", "customers-US-TX"] {
        assert_headings_in_order(
            name,
            &render(name),
            &[
                "NOTICE OF DATA BREACH",
                "What Happened",
                "What Information Was Involved",
                "What We Are Doing",
                "What You Can Do",
                "For More Information",
            ],
        );
    }
}

#[test]
fn california_notice_follows_the_data_elements() {
    // A marketing list: no SSN advice and no identity-theft offer.
    let body = render_with("customers-US-CA", MARKETING_LIST);
    assert_contains_all(
        "customers-US-CA",
        &body,
        &["- Name", "- Email address", "- Purchase history"],
    );
    for absent in [
        "Social Security number",
        "1798.82(d)(2)(G)",
        "security question or answer for your account",
    ] {
        assert!(!body.contains(absent), "{absent:?} in:\n{body}");
    }
    // The credit bureaus' toll-free numbers are always given.
    assert!(body.contains("Equifax: 1-800-685-1111"));

    // Social Security numbers: the advice and the (d)(2)(G) offer appear once.
    let body = render_with("customers-US-CA", &["name", "ssn"]);
    assert_eq!(
        body.matches("Your Social Security number was involved")
            .count(),
        1
    );
    assert_eq!(body.matches("1798.82(d)(2)(G)").count(), 1);
    assert!(body.contains("identity theft prevention and mitigation services"));

    // Online credentials: change the password and the security question.
    let body = render_with("customers-US-CA", &["email", "credentials"]);
    assert!(body.contains("change your password and security question or answer"));
}

#[test]
fn records_unknown_is_marked_to_be_completed() {
    let mut c = ctx("regulator-EU", MARKETING_LIST);
    c["inputs"]["records"] = json!(0);
    let body = templates().render("regulator-EU", &c).unwrap();
    assert!(
        body.contains(
            "Approximate number of personal data records: [to be completed: not yet known]"
        ),
        "{body}"
    );
}

#[test]
fn chinese_customer_notice_is_in_simplified_chinese() {
    let body = render("customers-CN");
    let cjk = body
        .chars()
        .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
        .count();
    let latin = body.chars().filter(|c| c.is_ascii_alphabetic()).count();
    // Latin letters come only from the variables (tool, names, addresses)
    // and the `[to be completed: ...]` markers.
    assert!(cjk > 5 * latin, "cjk {cjk}, latin {latin}:\n{body}");
    // Simplified, not traditional, forms.
    for traditional in [
        "個", "資", "護", "們", "關", "於", "訊", "號", "錄", "聯", "郵",
    ] {
        assert!(
            !body.contains(traditional),
            "traditional {traditional} in:\n{body}"
        );
    }
    assert_headings_in_order(
        "customers-CN",
        &body,
        &[
            "尊敬的客户：",
            "一、事件经过和原因",
            "二、涉及的个人信息种类",
            "三、可能造成的危害",
            "四、我们已采取的补救措施",
            "五、您可以采取的减轻危害的措施",
            "六、联系我们",
        ],
    );
}

#[test]
fn a_missing_variable_is_an_error_naming_it() {
    for name in names() {
        let mut c = ctx(&name, ELEMENTS);
        c["organization"]["dpo"]
            .as_object_mut()
            .unwrap()
            .remove("phone");
        let err = templates()
            .render(&name, &c)
            .expect_err(&format!("{name} rendered without organization.dpo.phone"));
        let text = err.to_string();
        assert!(text.contains("organization.dpo.phone"), "{name}: {text}");
        assert!(text.contains(&name), "{name}: {text}");
    }
    // A whole root missing is named too.
    let mut c = ctx("customers-EU", ELEMENTS);
    c.as_object_mut().unwrap().remove("incident");
    let text = templates()
        .render("customers-EU", &c)
        .unwrap_err()
        .to_string();
    assert!(text.contains("incident.id"), "{text}");
}

#[test]
fn validation_locates_a_template_reading_an_unknown_variable() {
    let file = "runbooks/notices/customers-XX.hbs";
    let src = "Dear {{customer.name}},\n\nWrite to {{organization.dpo.email}} or call {{contact.phone}}.\n{{#each inputs.data_elements}}- {{this}}\n{{/each}}";
    let d = NoticeTemplates::check_file(file, src).expect_err("unknown roots must be reported");
    let text = d.to_string();
    assert_eq!(d.0.len(), 2, "{text}");
    assert!(
        text.contains(&format!(
            "{file}:1:6: error: template reads unknown variable \"customer.name\""
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{file}:3:45: error: template reads unknown variable \"contact.phone\""
        )),
        "{text}"
    );
    for diag in &d.0 {
        let line = src.lines().nth(diag.line - 1).unwrap();
        let at: String = line.chars().skip(diag.col - 1).collect();
        assert!(
            at.starts_with("{{"),
            "{}:{} points at {at:?}",
            diag.line,
            diag.col
        );
    }
    // The variables of DESIGN.md are accepted, inside blocks too.
    NoticeTemplates::check_file(
        file,
        "{{incident.id}} {{inputs.tool}} {{organization.dpo.phone}} {{jurisdiction.code}} {{notice.version}}\n{{#each inputs.data_elements}}{{#if (eq this \"ssn\")}}{{@root.organization.name}}{{/if}}{{/each}}",
    )
    .unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn determination_dates_come_from_the_recorded_moment_never_the_declaration() {
    for (name, moment, line) in [
        ("regulator-CA", "pipeda_real_risk_determined", "Date the organization determined that the breach creates a real risk of significant harm: "),
        ("regulator-US-TX", "tx_breach_determined", "Date the breach was determined to have occurred: "),
    ] {
        let unrecorded = render(name);
        let at = unrecorded
            .lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("{name} has no determination line:\n{unrecorded}"));
        assert!(
            at.contains(&format!("[to be completed: the date of the determination; record it with `quench note {INCIDENT} \"...\" --moment {moment}=TIME`]")),
            "{name}: {at}"
        );
        let mut c = ctx(name, ELEMENTS);
        c["moments"] = json!({ moment: "2026-11-30T16:30:00+00:00" });
        let body = templates().render(name, &c).unwrap();
        let at = body.lines().find(|l| l.starts_with(line)).unwrap();
        assert_eq!(at, format!("{line}2026-11-30 16:30 UTC"), "{name}");
    }
}

#[test]
fn every_organisation_fact_a_rule_reads_is_a_boolean_input_of_the_bundled_runbook() {
    let lib = quench::library::Library::load(&quench::library::Folders::default()).unwrap();
    let rb = lib.runbook("shadow-ai-exposure").unwrap().runbook;
    let facts: Vec<&str> = quench::timeline::clocks::table()
        .rules
        .iter()
        .filter_map(|r| r.when_input.as_deref())
        .collect();
    assert!(
        facts.contains(&"dfs_regulated") && facts.contains(&"hipaa_covered_entity"),
        "{facts:?}"
    );
    for f in facts {
        let decl = rb
            .inputs
            .iter()
            .find(|i| i.name == f)
            .unwrap_or_else(|| panic!("a rule reads input `{f}`, which the runbook lacks"));
        assert_eq!(decl.ty, quench::runbook::InputType::Boolean, "{f}");
        assert_eq!(decl.default, Some(json!(false)), "{f}: off unless said");
    }
}

#[test]
fn singapore_regulator_notice_gives_the_chronology_in_singapore_time() {
    let name = "regulator-SG";
    let mut c = ctx(name, MARKETING_LIST);
    let body = templates().render(name, &c).unwrap();
    // Declared 09:15 UTC is 17:15 in Singapore.
    assert_contains_all(
        name,
        &body,
        &[
            "Chronological account of the steps taken after becoming aware of the breach",
            "- 2026-03-02 17:15 +08: Became aware of the breach; incident declared by U0RESP01",
            "- 2026-03-02 17:16 +08: Salesforce Platform: revoke the tool's grants (3 done)",
            "- [to be completed: the date and outcome of the s. 26C assessment",
            "How the breach was discovered: [to be completed: how the organisation learned of it",
            "first became aware of the breach: 2026-03-02 17:15 +08",
            "[to be completed: the number of affected individuals in Singapore",
        ],
    );
    // Discovery is told as how, never as a date.
    let how = body
        .lines()
        .find(|l| l.starts_with("How the breach was discovered"))
        .unwrap();
    assert!(!how.contains("2026"), "{how}");
    // The recorded assessment and the Singapore count replace the blanks.
    c["moments"] = json!({"assessed": "2026-03-04T02:00:00+00:00"});
    c["jurisdiction"]["residents"] = json!(612);
    c["inputs"]["discovery"] = json!("a marketing analyst reported it to the DPO");
    let body = templates().render(name, &c).unwrap();
    assert_contains_all(
        name,
        &body,
        &[
            "assessed that the breach is notifiable: 2026-03-04 10:00 +08",
            "Affected individuals in Singapore: 612 (the count given for Singapore",
            "How the breach was discovered: a marketing analyst reported it to the DPO",
        ],
    );
    assert!(!body.contains("outcome of the s. 26C assessment"), "{body}");
}

#[test]
fn regulator_notices_print_the_jurisdictions_own_count_when_given() {
    for (name, line) in [
        (
            "regulator-US-CA",
            "Number of California residents notified: 612 affected (the count given for California",
        ),
        (
            "regulator-US-NY",
            "New York residents: approximately 612 (the count given for New York)",
        ),
        ("regulator-US-TX", "612 (the count given for Texas)"),
        (
            "regulator-AU",
            "(in Australia: 612, the count given for Australia)",
        ),
        (
            "regulator-IN",
            "(in India: 612 Data Principals, the count given for India)",
        ),
        ("regulator-SG", "Affected individuals in Singapore: 612"),
    ] {
        let mut c = ctx(name, ELEMENTS);
        c["jurisdiction"]["residents"] = json!(612);
        let body = templates().render(name, &c).unwrap();
        assert!(body.contains(line), "{name} lacks {line:?}:\n{body}");
        // Without a count of its own, the blank stays for a person to fill.
        let blank = render(name);
        assert!(!blank.contains("the count given for"), "{name}");
        assert!(blank.contains("[to be completed"), "{name}");
    }
}

#[test]
fn new_york_notice_names_dfs_and_hipaa_filings_only_for_such_entities() {
    let name = "regulator-US-NY";
    let plain = render(name);
    assert!(!plain.contains("500.17"), "{plain}");
    assert!(!plain.contains("899-aa(9)"), "{plain}");
    let mut c = ctx(name, ELEMENTS);
    c["inputs"]["dfs_regulated"] = json!(true);
    c["inputs"]["hipaa_covered_entity"] = json!(true);
    let body = templates().render(name, &c).unwrap();
    assert_contains_all(
        name,
        &body,
        &[
            "within 72 hours",
            "(500.17(a)(1))",
            "within 5 business days",
            "(899-aa(9))",
        ],
    );
}
