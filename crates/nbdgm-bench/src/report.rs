//! Medians, percentiles and number formatting for the markdown tables.

/// Median of `v` (mean of the middle two for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The `p`-th percentile (0–100, nearest rank) of `sorted` (ascending); NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let neg = x < 0.0;
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

/// A list of runs as `a / b / c`.
pub fn runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| thousands(*x))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// `v` formatted by `f`, joined with `sep` (the runs column of a table, e.g. `1.2 / 1.3`).
pub fn join_with(v: &[f64], sep: &str, f: impl Fn(f64) -> String) -> String {
    v.iter().map(|x| f(*x)).collect::<Vec<_>>().join(sep)
}

/// A table row `| label | median | a / b / c |` (the median with thousands separators).
pub fn median_row(label: &str, v: &[f64]) -> String {
    format!("| {label} | {} | {} |", thousands(median(v)), runs(v))
}

/// [`median_row`] with the median in bold.
pub fn median_row_bold(label: &str, v: &[f64]) -> String {
    format!("| {label} | **{}** | {} |", thousands(median(v)), runs(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 99.0), 4.0);
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(
            median_row("x (1/s)", &[1000.0, 3000.0, 2000.0]),
            "| x (1/s) | 2,000 | 1,000 / 3,000 / 2,000 |"
        );
        assert_eq!(median_row_bold("y", &[5.0]), "| y | **5** | 5 |");
        assert_eq!(
            join_with(&[0.5, 0.25], ", ", |x| format!("{x:.1}")),
            "0.5, 0.2"
        );
    }
}
