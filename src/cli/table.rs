//! `op list` for a person at a terminal: operations as an aligned table
//! (id, scope, kind, state, progress, age), newest first.

use serde_json::Value;

use crate::model::Timestamp;

/// The table of `operations` (native JSON), ages counted to `now`.
pub fn operations(operations: &[Value], now: Timestamp) -> String {
    let mut rows = vec![["ID", "SCOPE", "KIND", "STATE", "PROGRESS", "AGE"].map(String::from)];
    for op in operations {
        let text = |field: &str| op[field].as_str().unwrap_or("-").to_owned();
        rows.push([text("id"), text("scope"), text("kind"), text("state"), progress(op), age(op, now)]);
    }
    let widths: Vec<usize> =
        (0..6).map(|column| rows.iter().map(|row| row[column].chars().count()).max().unwrap_or(0)).collect();
    let mut table = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        table.push_str(cells.join("  ").trim_end());
        table.push('\n');
    }
    table
}

/// The progress the state implies: a success is 100 % whatever was last
/// reported, another ending keeps its last report, and no report is `-`.
fn progress(op: &Value) -> String {
    match (op["state"].as_str(), op["percentComplete"].as_f64()) {
        (Some("Succeeded"), _) => "100%".into(),
        (_, Some(percent)) => format!("{}%", percent.round()),
        _ => "-".into(),
    }
}

/// How long ago the operation was created, in its largest whole unit.
fn age(op: &Value, now: Timestamp) -> String {
    let Some(created) = op["createdAt"].as_str().and_then(Timestamp::parse_rfc3339) else { return "-".into() };
    let seconds = (now.unix_nanos() - created.unix_nanos()).max(0) / 1_000_000_000;
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aligns_columns_and_says_what_each_state_implies() {
        let now = Timestamp::parse_rfc3339("2026-12-07T12:00:00Z").unwrap();
        let ops = [
            json!({"id": "a1", "scope": "projects/p1x", "kind": "resize", "state": "Succeeded",
                   "percentComplete": 90.0, "createdAt": "2026-12-07T11:59:30Z"}),
            json!({"id": "b22", "scope": "accounts/ab", "kind": "takeSnapshot", "state": "Running",
                   "percentComplete": 42.4, "createdAt": "2026-12-07T09:00:00Z"}),
            json!({"id": "c333", "scope": "accounts/ab", "kind": "x", "state": "NotStarted",
                   "createdAt": "2026-12-01T12:00:00Z"}),
        ];
        assert_eq!(
            operations(&ops, now),
            "ID    SCOPE         KIND          STATE       PROGRESS  AGE\n\
             a1    projects/p1x  resize        Succeeded   100%      30s\n\
             b22   accounts/ab   takeSnapshot  Running     42%       3h\n\
             c333  accounts/ab   x             NotStarted  -         6d\n"
        );
    }
}
