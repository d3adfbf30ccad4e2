//! How times and durations read for people: in the configured zone, to
//! the second, with the exact instant kept for a `title`; durations in the
//! two largest units that matter ("3 min 20 s", "2 d 4 h").

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// One instant as a page or an export shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Shown {
    /// "2026-03-02 18:00:05 CET": to the second, in the display zone.
    pub local: String,
    /// RFC 3339 with the recorded precision, in UTC: the record.
    pub exact: String,
}

pub fn shown(at: DateTime<Utc>, zone: Tz) -> Shown {
    let local = at.with_timezone(&zone);
    Shown {
        local: local.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
        exact: at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    }
}

/// "350 ms", "1.8 s", "3 min 20 s", "2 h 5 min", "3 d 4 h".
pub fn duration_text(d: TimeDelta) -> String {
    let ms = d.num_milliseconds().unsigned_abs();
    let sign = if d < TimeDelta::zero() { "-" } else { "" };
    let pair = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{sign}{big} {big_unit}")
        } else {
            format!("{sign}{big} {big_unit} {small} {small_unit}")
        }
    };
    match ms {
        0..=999 => format!("{sign}{ms} ms"),
        1_000..=59_999 if ms % 1000 == 0 => format!("{sign}{} s", ms / 1000),
        1_000..=59_999 => format!("{sign}{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => pair(ms / 60_000, "min", ms / 1000 % 60, "s"),
        3_600_000..=86_399_999 => pair(ms / 3_600_000, "h", ms / 60_000 % 60, "min"),
        _ => pair(ms / 86_400_000, "d", ms / 3_600_000 % 24, "h"),
    }
}

/// An offset since the declaration: "0", "+1.5 s", "+2 min".
pub fn offset_label(d: TimeDelta) -> String {
    if d <= TimeDelta::zero() {
        "0".to_string()
    } else {
        format!("+{}", duration_text(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_two_units_that_matter() {
        let ms = TimeDelta::milliseconds;
        assert_eq!(duration_text(ms(350)), "350 ms");
        assert_eq!(duration_text(ms(1_830)), "1.8 s");
        assert_eq!(duration_text(ms(42_000)), "42 s");
        assert_eq!(duration_text(ms(200_000)), "3 min 20 s");
        assert_eq!(duration_text(ms(7_500_000)), "2 h 5 min");
        assert_eq!(duration_text(ms(7_200_000)), "2 h");
        assert_eq!(duration_text(ms(273_600_000)), "3 d 4 h");
        assert_eq!(duration_text(ms(-90_000)), "-1 min 30 s");
        assert_eq!(offset_label(ms(1500)), "+1.5 s");
        assert_eq!(offset_label(ms(0)), "0");
    }

    #[test]
    fn instants_show_in_the_zone_and_keep_the_record() {
        let at = DateTime::parse_from_rfc3339("2026-03-02T17:00:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let s = shown(at, "Europe/Berlin".parse().unwrap());
        assert_eq!(s.local, "2026-03-02 18:00:05 CET");
        assert_eq!(s.exact, "2026-03-02T17:00:05.123456789Z");
    }
}

/// Text for a terminal: control characters (escape sequences, CR, BEL,
/// newlines) written as visible escapes, so a vendor's answer or a note
/// cannot rewrite the screen or forge a line.
pub fn terminal(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod terminal_tests {
    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            super::terminal("ok\x1b[2J\rforged\nline\u{9b}"),
            "ok\\u{1b}[2J\\rforged\\nline\\u{9b}"
        );
        assert_eq!(super::terminal("plain · text"), "plain · text");
    }
}
