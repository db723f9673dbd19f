//! Durations as users write them (`90d`, `2160h`, `1y`, `45m`, Go's `8760h0m0s`) and as kubeadm prints
//! residual time: apimachinery's `ShortHumanDuration` up to kubeadm 1.30, its `HumanDuration` from 1.31
//! (`kubeadm_version` says which a node's kubeadm uses).

use std::fmt;

/// A non-negative span in whole seconds. Certificates have second precision, so nothing finer matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub i64);

impl Span {
    pub const fn days(d: i64) -> Span {
        Span(d * 86_400)
    }
    pub fn seconds(self) -> i64 {
        self.0
    }
    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::seconds(self.0)
    }
}

impl fmt::Display for Span {
    /// The shortest exact spelling that [`parse`] reads back: `90d`, `36h`, `1d2h3m4s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.0;
        if s == 0 {
            return f.write_str("0s");
        }
        for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if s >= len {
                write!(f, "{}{}", s / len, unit)?;
                s %= len;
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {why} (examples: 90d, 2160h, 1y, 45m, 8760h0m0s)")]
pub struct ParseError {
    pub input: String,
    pub why: &'static str,
}

/// Parses one or more `<integer><unit>` groups, units `y` (365 days, as kubeadm counts), `w`, `d`, `h`,
/// `m`, `s`; `0` alone is zero. Anything else (empty, negative, fractions, unknown units, overflow) is an
/// error, so a typo never silently becomes "renew everything" or "renew nothing".
pub fn parse(input: &str) -> Result<Span, ParseError> {
    let err = |why| ParseError { input: input.to_string(), why };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s == "0" {
        return Ok(Span(0));
    }
    let bytes = s.as_bytes();
    let mut total: i64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(err("expected a number"));
        }
        let n: i64 = s[start..i].parse().map_err(|_| err("number too large"))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = match &s[ustart..i] {
            "y" => 365 * 86_400,
            "w" => 7 * 86_400,
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        let part = n.checked_mul(unit).ok_or_else(|| err("too large"))?;
        total = total.checked_add(part).ok_or_else(|| err("too large"))?;
    }
    // chrono refuses spans beyond ~292 million years; a bound well below keeps every later addition safe
    if total > 1_000 * 365 * 86_400 {
        return Err(err("too large (more than 1000 years)"));
    }
    Ok(Span(total))
}

/// apimachinery `duration.ShortHumanDuration` for a residual time in seconds, as kubeadm up to 1.30 prints it
/// (`staging/src/k8s.io/apimachinery/pkg/util/duration/duration.go`): one unit, truncated, years of 365 days from
/// 365 days on, so a certificate with 399 days left reads `1y`.
pub fn short_human(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3_600;
    if hours < 24 {
        return format!("{hours}h");
    }
    if hours < 24 * 365 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

/// apimachinery `duration.HumanDuration` for a residual time in seconds, as kubeadm 1.31+ prints it.
pub fn human(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3_600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{}h", hours / 24, h) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{}d", hours / 24 / 365, dy) };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_examples() {
        assert_eq!(parse("90d"), Ok(Span::days(90)));
        assert_eq!(parse("2160h"), Ok(Span::days(90)));
        assert_eq!(parse("1y"), Ok(Span::days(365)));
        assert_eq!(parse("45m"), Ok(Span(45 * 60)));
        assert_eq!(parse("8760h0m0s"), Ok(Span::days(365)));
        assert_eq!(parse("1d12h"), Ok(Span(36 * 3600)));
        assert_eq!(parse("0"), Ok(Span(0)));
        assert_eq!(parse("2w"), Ok(Span::days(14)));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in ["", " ", "90", "d", "-1d", "1.5h", "10x", "1d-", "9999999999999999999d", "90 d", "1001y"] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse("10x").unwrap_err().to_string().contains("\"10x\""));
    }

    #[test]
    fn display_round_trips() {
        for s in [0, 1, 59, 3600, 86_400 * 90, 86_400 + 3600 + 61] {
            assert_eq!(parse(&Span(s).to_string()), Ok(Span(s)));
        }
    }

    #[test]
    fn short_human_matches_apimachinery() {
        let d = 86_400;
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (121, "2m"),
            (3599, "59m"),
            (3600, "1h"),
            (23 * 3600 + 3599, "23h"),
            (d, "1d"),
            (364 * d + 86_399, "364d"),
            (365 * d, "1y"),
            // kubeadm 1.28.7's `1y` for a certificate with 399 days left (issue 21)
            (399 * d, "1y"),
            (1057 * d, "2y"),
            (3650 * d - 60, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(short_human(secs), want, "{secs}s");
        }
    }

    #[test]
    fn human_matches_apimachinery() {
        let d = 86_400;
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (121, "2m1s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * d, "2d"),
            (2 * d + 3600, "2d1h"),
            (8 * d, "8d"),
            (364 * d + 86_000, "364d"),
            (730 * d - 1, "729d"),
            (730 * d, "2y"),
            (1057 * d, "2y327d"),
            (3650 * d, "10y"),
            (8 * 365 * d, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human(secs), want, "{secs}s");
        }
    }
}
