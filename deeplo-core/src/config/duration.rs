//! Go `time.ParseDuration` syntax, so that config files and settings written for the Go
//! tool keep their meaning: `60s`, `5m`, `1h30m`, `1.5s`, `300ms`, `2us`.

use std::time::Duration;

/// The largest duration Go can represent (`math.MaxInt64` nanoseconds); longer values are
/// refused as the Go tool refuses them.
const MAX_NANOS: u128 = i64::MAX as u128;

const UNITS: &str = "ns, us, ms, s, m or h";

/// Parses a Go duration: one or more decimal numbers, each with an optional fraction and a
/// unit (`ns`, `us` / `µs`, `ms`, `s`, `m`, `h`), such as `1h30m` or `1.5s`. A leading `+`
/// is allowed; `0` is the only number allowed without a unit.
///
/// # Errors
///
/// A message naming the bad input and saying what is expected: an empty string, a number
/// without a unit, an unknown unit, a negative or overlong duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(format!("invalid duration {s:?}: expected a number and a unit ({UNITS}), such as \"30s\""));
    }
    let mut total: u128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let (nanos, tail) = component(rest, s)?;
        total = total.saturating_add(nanos);
        rest = tail;
    }
    if total > MAX_NANOS {
        return Err(format!("invalid duration {s:?}: longer than the maximum of about 292 years"));
    }
    if negative && total > 0 {
        return Err(format!("invalid duration {s:?}: must not be negative"));
    }
    let secs = u64::try_from(total / 1_000_000_000).unwrap_or(u64::MAX);
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// Parses one `<number><unit>` from the front of `rest`; returns its length in nanoseconds
/// (saturated far above [`MAX_NANOS`] on overflow) and what follows.
fn component<'a>(rest: &'a str, whole: &str) -> Result<(u128, &'a str), String> {
    let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (int_digits, mut tail) = rest.split_at(int_len);
    let mut frac_digits = "";
    if let Some(after_dot) = tail.strip_prefix('.') {
        let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        (frac_digits, tail) = after_dot.split_at(frac_len);
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(format!("invalid duration {whole:?}: expected a number and a unit ({UNITS}), such as \"30s\""));
    }
    let unit_len = tail.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(tail.len());
    let (unit, tail) = tail.split_at(unit_len);
    if unit.is_empty() {
        return Err(format!("invalid duration {whole:?}: a unit is required ({UNITS}), such as \"{int_digits}s\""));
    }
    let Some(scale) = unit_nanos(unit) else {
        return Err(format!("invalid duration {whole:?}: unknown unit {unit:?}; use {UNITS}"));
    };
    // Digits past 30 cannot change a value that must fit in i64 nanoseconds except by
    // overflowing it, so they saturate.
    let int: u128 = if int_digits.len() > 30 { u128::MAX } else { int_digits.parse().unwrap_or(0) };
    let mut nanos = int.saturating_mul(scale);
    // Fraction digits beyond 18 are below a nanosecond even for hours: drop them.
    let frac_digits = &frac_digits[..frac_digits.len().min(18)];
    if !frac_digits.is_empty() {
        let frac: u128 = frac_digits.parse().unwrap_or(0);
        let denominator = 10u128.pow(u32::try_from(frac_digits.len()).unwrap_or(18));
        nanos = nanos.saturating_add(frac * scale / denominator);
    }
    Ok((nanos, tail))
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_syntax() {
        let table: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("-0s", Duration::ZERO),
            ("60s", Duration::from_secs(60)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("1h30m15s", Duration::from_secs(5415)),
            ("1.5s", Duration::from_millis(1500)),
            (".5s", Duration::from_millis(500)),
            ("1.s", Duration::from_secs(1)),
            ("300ms", Duration::from_millis(300)),
            ("2us", Duration::from_micros(2)),
            ("2µs", Duration::from_micros(2)),
            ("2μs", Duration::from_micros(2)),
            ("7ns", Duration::from_nanos(7)),
            ("+3s", Duration::from_secs(3)),
            ("1.0000000001s", Duration::from_nanos(1_000_000_000)),
            ("0.1h", Duration::from_secs(360)),
            ("1m1m", Duration::from_secs(120)),
            ("2562047h", Duration::from_secs(2_562_047 * 3600)),
        ];
        for (input, want) in table {
            assert_eq!(parse_duration(input), Ok(*want), "{input:?}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        let table = [
            ("", "expected a number and a unit"),
            ("60", "a unit is required"),
            ("1.5", "a unit is required"),
            ("1h30", "a unit is required"),
            ("5d", "unknown unit \"d\""),
            ("5 s", "unknown unit \" s\""),
            ("s", "expected a number and a unit"),
            (".s", "expected a number and a unit"),
            ("-5s", "must not be negative"),
            ("--5s", "expected a number and a unit"),
            ("abc", "expected a number and a unit"),
            ("3000000h", "longer than the maximum"),
            ("99999999999999999999999999999999999h", "longer than the maximum"),
            ("1s ", "unknown unit \"s \""),
        ];
        for (input, want) in table {
            let err = parse_duration(input).unwrap_err();
            assert!(err.contains(want), "{input:?}: {err}");
            assert!(err.contains(&format!("{input:?}")), "the error names the input: {err}");
        }
    }
}
