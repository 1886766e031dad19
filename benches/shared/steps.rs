//! The step tables of the benches that compare deploys step by step.

/// Every step name in `recorded` once: those of `order` first, in its order, then the rest
/// sorted.
pub(crate) fn ordered_steps<'a>(recorded: impl IntoIterator<Item = &'a String>, order: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = recorded.into_iter().cloned().collect();
    all.sort();
    all.dedup();
    let mut names: Vec<String> =
        order.iter().filter(|n| all.iter().any(|a| a == *n)).map(|n| (*n).to_owned()).collect();
    names.extend(all.into_iter().filter(|a| !order.contains(&a.as_str())));
    names
}

/// Milliseconds as a whole number, `-` for none (NaN).
pub(crate) fn show_ms(ms: f64) -> String {
    if ms.is_nan() { "-".into() } else { format!("{ms:.0}") }
}
