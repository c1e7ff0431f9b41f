//! How an error and its causes read as one line: `: `-separated as anyhow's `{:#}` gives them,
//! without a cause whose text an outer message already includes (many errors name their source
//! in their own message too, which `{:#}` would then say twice).

/// `err` and its causes on one line, each said once.
pub fn text(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}
