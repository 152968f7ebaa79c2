//! `--costs FILE`: a cost model learned from earlier builds, loaded before
//! the first job, so that cost-aware policies (`weighted`, `lookahead`)
//! place a session's heavy files well from its first build instead of
//! after a cold one. The file is JSON lines with `key` (the job's
//! `source_key`) and `cost_s` (seconds on one reference core): a trace
//! written by `--trace-out` works as is. Lines of failed compiles and
//! shared-cache answers teach nothing and are skipped; a key seen twice
//! keeps its last cost.

use std::collections::HashMap;

/// A line of the costs file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct CostsError {
    pub line: usize,
    pub reason: String,
}

/// Parses a costs file's text into key → cost.
pub fn parse(text: &str) -> Result<HashMap<String, f64>, CostsError> {
    let mut costs = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let err = |reason: String| CostsError {
            line: i + 1,
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
        let key = v
            .get("key")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| err("missing string `key`".into()))?;
        let cost = v
            .get("cost_s")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| err("missing number `cost_s`".into()))?;
        if !(cost.is_finite() && cost >= 0.0) {
            return Err(err(format!("`cost_s` {cost} is not a non-negative number")));
        }
        let failed = v
            .get("exit_code")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
            != 0;
        let hit = v
            .get("shared_hit")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        if key.is_empty() || failed || hit || cost == 0.0 {
            continue;
        }
        costs.insert(key.to_owned(), cost);
    }
    Ok(costs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_is_a_costs_file() {
        let text = r#"{"key":"a","cost_s":1.5,"exit_code":0,"shared_hit":false,"worker":1}

{"key":"b","cost_s":0.2}
{"key":"a","cost_s":2.0}
{"key":"c","cost_s":9.0,"exit_code":1}
{"key":"d","cost_s":0.0,"shared_hit":true}
{"key":"","cost_s":3.0}
"#;
        let c = parse(text).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c["a"], 2.0);
        assert_eq!(c["b"], 0.2);
    }

    #[test]
    fn bad_lines_name_their_number() {
        assert_eq!(parse("{}\n").unwrap_err().line, 1);
        let e = parse("{\"key\":\"a\",\"cost_s\":1}\nnope\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("{\"key\":\"a\",\"cost_s\":-1}").is_err());
    }
}
