//! Reading a JSON request body field by field, collecting every problem
//! with its path, so a 422 lists them all at once.

use std::ops::RangeInclusive;

use axum::body::Bytes;
use serde_json::{Map, Value};

use super::error::ApiError;

/// The body as JSON (a byte-order mark is allowed), or a 400 saying why not.
pub fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    serde_json::from_str(crate::persona::without_bom(text))
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// The fields of a JSON object and the problems found reading them.
pub struct Fields<'a> {
    pub object: &'a Map<String, Value>,
    pub problems: Vec<(String, String)>,
}

impl<'a> Fields<'a> {
    /// `body` must be an object (else a 422 at the body's root).
    pub fn of(body: &'a Value) -> Result<Fields<'a>, ApiError> {
        match body.as_object() {
            Some(object) => Ok(Fields {
                object,
                problems: Vec::new(),
            }),
            None => Err(ApiError::invalid(
                "the body must be a JSON object",
                vec![(String::new(), "expected an object".into())],
            )),
        }
    }

    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push((key.into(), message.into()));
    }

    /// A required, non-blank string, as given.
    pub fn text(&mut self, key: &str) -> String {
        match self.object.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => return s.clone(),
            Some(Value::String(_)) => self.problem(key, "must not be empty"),
            None | Some(Value::Null) => self.problem(key, "is required"),
            Some(_) => self.problem(key, "must be a string"),
        }
        String::new()
    }

    /// An optional whole number in `range` (`default` when absent).
    pub fn whole(&mut self, key: &str, range: RangeInclusive<u64>, default: u64) -> u64 {
        match self.object.get(key) {
            None | Some(Value::Null) => default,
            Some(v) => match v.as_u64().filter(|n| range.contains(n)) {
                Some(n) => n,
                None => {
                    let message = format!(
                        "must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    );
                    self.problem(key, message);
                    0
                }
            },
        }
    }

    /// An optional true/false (false when absent).
    pub fn flag(&mut self, key: &str) -> bool {
        match self.object.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.problem(key, "must be true or false");
                false
            }
        }
    }

    /// Ok if nothing was wrong, else a 422 with `message` and every problem.
    pub fn finish(self, message: &str) -> Result<(), ApiError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(message, self.problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_problem_is_collected_with_its_path() {
        let body = json!({"feature": " ", "rounds": 99, "report": "yes", "count": 3});
        let mut fields = Fields::of(&body).unwrap();
        assert_eq!(fields.text("feature"), "");
        assert_eq!(fields.text("brief"), "");
        assert_eq!(fields.whole("rounds", 1..=10, 2), 0);
        assert_eq!(fields.whole("count", 1..=100, 1), 3);
        assert_eq!(fields.whole("absent", 1..=100, 7), 7);
        assert!(!fields.flag("report"));
        let paths: Vec<&str> = fields.problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["feature", "brief", "rounds", "report"]);
        assert!(fields.finish("bad").is_err());
        assert!(Fields::of(&json!([1])).is_err());
        let ok = json!({"brief": "farmers"});
        let mut fields = Fields::of(&ok).unwrap();
        assert_eq!(fields.text("brief"), "farmers");
        assert!(fields.finish("bad").is_ok());
    }
}
