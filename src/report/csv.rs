//! CSV (RFC 4180) for spreadsheets and ticket imports: a header row, then one row per finding in
//! report order. Records end in CRLF; a field is quoted when it holds a comma, a quote, CR or LF,
//! with quotes doubled (RFC 4180 §2). Evidence is one compact JSON cell.
//!
//! A cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets
//! a leading `'` (OWASP "CSV injection"): names and evidence come from the estate, not from us.
//! Only findings: gaps and resolved findings are in the JSON and HTML reports.

use std::io::{self, Write};

use super::AuditResult;

pub const HEADER: [&str; 13] = [
    "severity",
    "rule",
    "resource",
    "cluster",
    "subscription",
    "message",
    "remediation",
    "cleanup_eligible",
    "first_seen",
    "age_days",
    "new_since_last_run",
    "downgraded_from",
    "evidence",
];

/// One field, quoted when needed.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn record(w: &mut dyn Write, fields: &[String]) -> io::Result<()> {
    let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
    write!(w, "{}\r\n", line.join(","))
}

pub fn render(r: &AuditResult, w: &mut dyn Write) -> io::Result<()> {
    record(w, &HEADER.map(String::from))?;
    for f in &r.findings {
        let seen = r.seen(f);
        record(
            w,
            &[
                f.severity.as_str().to_string(),
                f.rule.to_string(),
                f.resource.clone(),
                f.cluster.clone().unwrap_or_default(),
                f.subscription.clone().unwrap_or_default(),
                f.message.clone(),
                f.remediation.clone(),
                f.cleanup_eligible.to_string(),
                f.first_seen.clone().unwrap_or_default(),
                seen.map(|s| s.age_days.to_string()).unwrap_or_default(),
                seen.map(|s| s.new_since_last_run.to_string()).unwrap_or_default(),
                seen.and_then(|s| s.downgraded_from)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                serde_json::to_string(&f.evidence).map_err(io::Error::other)?,
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_quoting_and_defuses_formulas() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "'-1");
        assert_eq!(field("/subscriptions/x"), "/subscriptions/x");
        assert_eq!(field(""), "");
    }
}
