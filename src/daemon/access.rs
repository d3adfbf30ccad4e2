//! Who is calling: per-person API tokens with scopes (`access:` in the
//! config), and the single legacy token (`QUENCH_API_TOKEN`) as an admin,
//! so setups from before `access:` keep working. The config holds only
//! each token's SHA-256; a request's token is hashed and compared with
//! every entry in constant time, and never logged or stored.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// GETs and the pages.
    Read,
    /// Start incidents and plans.
    Declare,
    /// Approvals, manual steps, notices.
    Decide,
    /// Notes (moments, pauses, exceptions).
    Note,
    /// Everything, and acting for another user.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Read,
        Scope::Declare,
        Scope::Decide,
        Scope::Note,
        Scope::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Declare => "declare",
            Scope::Decide => "decide",
            Scope::Note => "note",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scope \"{s}\": use {}",
                    Scope::ALL.map(Scope::name).join(", ")
                )
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `access:` entry of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEntry {
    pub user: String,
    pub name: Option<String>,
    pub token_sha256: String,
    pub can: Vec<Scope>,
}

/// The person (or system) behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub name: Option<String>,
    /// Which token it used, for the record: `sha256:` and the first 12 hex
    /// of its hash, or the legacy
    /// variable's name. Never the token.
    pub label: String,
    pub scopes: BTreeSet<Scope>,
    /// The legacy shared token: an admin with no person behind it.
    pub legacy: bool,
}

impl Identity {
    pub fn may(&self, s: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&s)
    }

    fn scopes_text(&self) -> String {
        self.scopes
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Refuses a request needing `s` that this token may not make.
    pub fn require(&self, s: Scope) -> Result<(), String> {
        if self.may(s) {
            Ok(())
        } else {
            Err(format!(
                "the token of {} may {} but not {s}; add `{s}` to its `can:` under `access:`",
                self.user,
                self.scopes_text()
            ))
        }
    }

    /// Who a decision or note is by, from the request's optional `by`:
    /// `(by, recorded)`, where `by` is whose roles count and `recorded` the
    /// actor the timeline names. A person's token speaks for its user
    /// only; an admin may act for another user ("A for B"). The legacy
    /// token names no person, so its `by` is taken as today.
    pub fn acting(&self, by: Option<&str>) -> Result<(String, Option<String>), String> {
        let by = by.map(str::trim).filter(|b| !b.is_empty());
        match by {
            None if self.legacy => Err("`by` must name who decides".into()),
            None => Ok((self.user.clone(), None)),
            Some(b) if b == self.user || self.legacy => Ok((b.to_string(), None)),
            Some(b) if self.may(Scope::Admin) => Ok((b.to_string(), Some(self.user.clone()))),
            Some(b) => Err(format!(
                "this token is {}'s: `by` may only name {} (an admin token may act for \"{b}\")",
                self.user, self.user
            )),
        }
    }
}

/// Every token this daemon accepts.
#[derive(Clone, Default)]
pub struct Access {
    entries: Vec<([u8; 32], Identity)>,
    legacy: Option<(Vec<u8>, Identity)>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field(
                "users",
                &self
                    .entries
                    .iter()
                    .map(|(_, i)| &i.user)
                    .collect::<Vec<_>>(),
            )
            .field("legacy", &self.legacy.is_some())
            .finish()
    }
}

pub fn sha256(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Access {
    /// From the config's entries and the legacy token (named by its
    /// variable). Errors name the entry and the fix.
    pub fn new(entries: &[AccessEntry], legacy: Option<(&str, &str)>) -> Result<Access, String> {
        let mut out = Access::default();
        let mut seen = BTreeSet::new();
        for (i, e) in entries.iter().enumerate() {
            let at = format!("access[{i}] ({})", e.user);
            if e.user.trim().is_empty() || e.user.trim() != e.user {
                return Err(format!(
                    "{at}: `user` must be a user id or name without surrounding spaces"
                ));
            }
            let hash = unhex(&e.token_sha256.to_ascii_lowercase()).ok_or_else(|| {
                format!("{at}: `token_sha256` must be 64 hex characters, the SHA-256 of the token (`quench token new {}` prints a token and its line)", e.user)
            })?;
            if !seen.insert(hash) {
                return Err(format!(
                    "{at}: the same token is listed twice; give each person their own"
                ));
            }
            if e.can.is_empty() {
                return Err(format!(
                    "{at}: `can` is empty; list what the token may do: {}",
                    Scope::ALL.map(Scope::name).join(", ")
                ));
            }
            out.entries.push((
                hash,
                Identity {
                    user: e.user.clone(),
                    name: e.name.clone(),
                    // Stable across reordering the config, and names the
                    // token apart from the same user's next one after a
                    // rotation; 48 bits of a SHA-256 reveal nothing of it.
                    label: format!("sha256:{}", &hex(&hash)[..12]),
                    scopes: e.can.iter().copied().collect(),
                    legacy: false,
                },
            ));
        }
        if let Some((var, token)) = legacy {
            out.legacy = Some((
                token.as_bytes().to_vec(),
                Identity {
                    user: "api".into(),
                    name: None,
                    label: var.to_string(),
                    scopes: [Scope::Admin].into(),
                    legacy: true,
                },
            ));
        }
        Ok(out)
    }

    /// Only the legacy token (`QUENCH_API_TOKEN`), as before `access:`.
    pub fn legacy_only(token: &str) -> Access {
        Access::new(&[], Some(("QUENCH_API_TOKEN", token))).expect("no entries to check")
    }

    /// The identity of `token`, or none. Every entry is compared, so the
    /// time taken does not say which one matched.
    pub fn identify(&self, token: &str) -> Option<Identity> {
        let hash = sha256(token);
        let mut found = None;
        for (h, id) in &self.entries {
            if bool::from(h.ct_eq(&hash)) {
                found = Some(id);
            }
        }
        if let Some((t, id)) = &self.legacy {
            if !t.is_empty() && bool::from(t.as_slice().ct_eq(token.as_bytes())) {
                found = Some(id);
            }
        }
        found.cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: &str, token: &str, can: &[Scope]) -> AccessEntry {
        AccessEntry {
            user: user.into(),
            name: None,
            token_sha256: hex(&sha256(token)),
            can: can.to_vec(),
        }
    }

    #[test]
    fn a_token_is_its_users_and_scopes_are_checked() {
        let a = Access::new(
            &[
                entry(
                    "U0LEGAL1",
                    "legal-token-000000",
                    &[Scope::Read, Scope::Decide],
                ),
                entry("mops-dashboard", "dash-token-000000", &[Scope::Read]),
                entry("ops-admin", "admin-token-00000", &[Scope::Admin]),
            ],
            Some(("QUENCH_API_TOKEN", "legacy-token-00000")),
        )
        .unwrap();
        let legal = a.identify("legal-token-000000").unwrap();
        assert_eq!(
            (legal.user.as_str(), legal.label.as_str()),
            (
                "U0LEGAL1",
                &*format!("sha256:{}", &hex(&sha256("legal-token-000000"))[..12])
            )
        );
        assert!(legal.may(Scope::Decide) && !legal.may(Scope::Declare));
        let dash = a.identify("dash-token-000000").unwrap();
        let refused = dash.require(Scope::Decide).unwrap_err();
        assert!(
            refused.contains("mops-dashboard may read but not decide"),
            "{refused}"
        );
        assert!(
            a.identify("legal-token-00000").is_none(),
            "one character short"
        );
        assert!(a.identify("").is_none());
        // `by`: a person speaks for themselves; an admin for anyone.
        assert_eq!(legal.acting(None).unwrap(), ("U0LEGAL1".into(), None));
        assert_eq!(
            legal.acting(Some("U0LEGAL1")).unwrap(),
            ("U0LEGAL1".into(), None)
        );
        assert!(legal
            .acting(Some("U0DPO"))
            .unwrap_err()
            .contains("may only name U0LEGAL1"));
        let admin = a.identify("admin-token-00000").unwrap();
        assert_eq!(
            admin.acting(Some("U0LEGAL1")).unwrap(),
            ("U0LEGAL1".into(), Some("ops-admin".into()))
        );
        // The legacy token keeps today's contract: `by` as given, required.
        let legacy = a.identify("legacy-token-00000").unwrap();
        assert!(legacy.legacy && legacy.may(Scope::Decide));
        assert_eq!(
            legacy.acting(Some("U0LEGAL1")).unwrap(),
            ("U0LEGAL1".into(), None)
        );
        assert!(legacy.acting(None).is_err());
    }

    #[test]
    fn bad_entries_are_named_with_the_fix() {
        let mut e = entry("U0LEGAL1", "t", &[Scope::Read]);
        e.token_sha256 = "abc".into();
        let err = Access::new(&[e], None).unwrap_err();
        assert!(
            err.starts_with("access[0] (U0LEGAL1): `token_sha256` must be 64 hex"),
            "{err}"
        );
        let twice = Access::new(
            &[
                entry("a", "t", &[Scope::Read]),
                entry("b", "t", &[Scope::Read]),
            ],
            None,
        )
        .unwrap_err();
        assert!(
            twice.contains("access[1] (b): the same token is listed twice"),
            "{twice}"
        );
        let none = Access::new(&[entry("a", "t", &[])], None).unwrap_err();
        assert!(none.contains("`can` is empty"), "{none}");
        assert_eq!(Scope::parse("decide"), Ok(Scope::Decide));
        assert!(Scope::parse("approve")
            .unwrap_err()
            .contains("read, declare, decide, note, admin"));
    }
}
