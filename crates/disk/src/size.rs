//! Byte sizes as people write them: `30G`, `30GB`, `1.5 GiB`, `500MiB`, `1073741824`.
//!
//! Decimal units (`k`, `M`, `G`, `T`, with or without `B`) are powers of 10, as GitHub states
//! its runners' "14 GB"; binary units (`Ki`, `Mi`, `Gi`, `Ti`, with or without `B`) are
//! powers of 2. Output uses decimal units too, so what is printed parses back to the same scale.

use crate::error::{Error, Result};

const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1_000),
    ("kb", 1_000),
    ("m", 1_000_000),
    ("mb", 1_000_000),
    ("g", 1_000_000_000),
    ("gb", 1_000_000_000),
    ("t", 1_000_000_000_000),
    ("tb", 1_000_000_000_000),
    ("ki", 1 << 10),
    ("kib", 1 << 10),
    ("mi", 1 << 20),
    ("mib", 1 << 20),
    ("gi", 1 << 30),
    ("gib", 1 << 30),
    ("ti", 1 << 40),
    ("tib", 1 << 40),
];

/// Parse a size. Fractions are allowed with a unit (`1.5G`); the result is rounded down.
pub fn parse_size(input: &str) -> Result<u64> {
    let err = |reason: &str| Error::Size {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let text = input.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: String = number.chars().filter(|&c| c != '_').collect();
    if number.is_empty() {
        return Err(err("no number"));
    }
    let unit = unit.trim().to_ascii_lowercase();
    let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(err("unknown unit (use B, k, M, G, T or Ki, Mi, Gi, Ti)"));
    };
    if let Some((whole, frac)) = number.split_once('.') {
        if frac.contains('.') || (whole.is_empty() && frac.is_empty()) {
            return Err(err("not a number"));
        }
        if frac.len() > 9 {
            return Err(err("too many decimal places"));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| err("number too large"))?
        };
        let frac_digits: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| err("not a number"))?
        };
        let frac_scale = 10u64.pow(frac.len() as u32);
        let whole_bytes = whole.checked_mul(scale).ok_or_else(|| err("too large"))?;
        let frac_bytes =
            (u128::from(frac_digits) * u128::from(scale) / u128::from(frac_scale)) as u64;
        whole_bytes
            .checked_add(frac_bytes)
            .ok_or_else(|| err("too large"))
    } else {
        let n: u64 = number.parse().map_err(|_| err("number too large"))?;
        n.checked_mul(scale).ok_or_else(|| err("too large"))
    }
}

/// Format bytes with a decimal unit and three significant digits: `0 B`, `512 B`, `1.23 GB`.
pub fn format_size(bytes: u64) -> String {
    const STEPS: &[&str] = &["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut step = 0;
    while value >= 999.5 && step + 1 < STEPS.len() {
        value /= 1000.0;
        step += 1;
    }
    let unit = STEPS[step];
    if value >= 99.95 {
        format!("{value:.0} {unit}")
    } else if value >= 9.995 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_and_binary_units() {
        assert_eq!(parse_size("30G").unwrap(), 30_000_000_000);
        assert_eq!(parse_size("30GB").unwrap(), 30_000_000_000);
        assert_eq!(parse_size("30gb").unwrap(), 30_000_000_000);
        assert_eq!(parse_size("500MiB").unwrap(), 500 * 1024 * 1024);
        assert_eq!(parse_size("1.5Gi").unwrap(), 3 << 29);
        assert_eq!(parse_size(" 1073741824 ").unwrap(), 1 << 30);
        assert_eq!(parse_size("2 kB").unwrap(), 2000);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size(".5k").unwrap(), 500);
    }

    #[test]
    fn rejects_malformed_sizes_with_the_input_named() {
        for bad in [
            "",
            "G",
            "30X",
            "1.2.3G",
            "-5G",
            "99999999999999999999",
            "20000000000T",
            ".",
        ] {
            let err = parse_size(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn formats_round_trip_on_the_same_scale() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(999), "999 B");
        assert_eq!(format_size(1_234_567_890), "1.23 GB");
        assert_eq!(format_size(14_000_000_000), "14.0 GB");
        assert_eq!(format_size(999_999), "1.00 MB");
        assert_eq!(format_size(150_000_000_000), "150 GB");
    }
}
