//! The specification's example postings as content for the demo and the tests: their
//! calendar dates moved forward, so that none is past (a posting whose `applyUntil` has
//! passed expires automatically).

use serde_json::Value;
use time::{Date, Duration, format_description::well_known::Iso8601};

fn parse(s: &str) -> Option<Date> {
    if s.len() != 10 {
        return None;
    }
    Date::parse(s, &Iso8601::DATE).ok()
}

fn walk(v: &Value, out: &mut Vec<Date>) {
    match v {
        Value::String(s) => out.extend(parse(s)),
        Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
        Value::Object(o) => o.values().for_each(|x| walk(x, out)),
        _ => {}
    }
}

fn shift(v: &mut Value, by: Duration) {
    match v {
        Value::String(s) => {
            if let Some(d) = parse(s)
                && let Some(moved) = d.checked_add(by)
                && let Ok(text) = moved.format(&Iso8601::DATE)
            {
                *s = text;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| shift(x, by)),
        Value::Object(o) => o.values_mut().for_each(|x| shift(x, by)),
        _ => {}
    }
}

/// Moves every calendar date (`YYYY-MM-DD`) of `doc` by the same number of days, so that
/// the earliest is at least `margin_days` after `today`; a document already far enough
/// in the future is left as it is. Intervals between its dates are kept.
pub fn dates_from(doc: &mut Value, today: Date, margin_days: i64) {
    let mut dates = Vec::new();
    walk(doc, &mut dates);
    let Some(earliest) = dates.into_iter().min() else {
        return;
    };
    let wanted = today + Duration::days(margin_days);
    if earliest < wanted {
        shift(doc, wanted - earliest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_move_together_and_only_when_needed() {
        let today = time::macros::date!(2026 - 12 - 06);
        let mut doc = json!({"dates": {"applyUntil": "2026-12-05", "start": "2027-01-04"}, "published": "2026-11-01T08:00:00Z", "name": "2026-12-05 x"});
        dates_from(&mut doc, today, 30);
        assert_eq!(doc["dates"]["applyUntil"], "2027-01-05");
        assert_eq!(doc["dates"]["start"], "2027-02-04");
        // Date-times and other text are left alone.
        assert_eq!(doc["published"], "2026-11-01T08:00:00Z");
        assert_eq!(doc["name"], "2026-12-05 x");
        let mut later = json!({"dates": {"applyUntil": "2030-01-01"}});
        dates_from(&mut later, today, 30);
        assert_eq!(later["dates"]["applyUntil"], "2030-01-01");
    }
}
