//! Reading a model's reply: small models and reasoning models wrap their
//! JSON in `<think>` blocks, code fences and prose, and name fields loosely.
//! These helpers find the JSON object and read values from it leniently; a
//! value that is missing or of the wrong kind is `None` (or empty), never
//! an error.

use serde_json::Value;

/// Removes `<think>…</think>` blocks (reasoning models); an unclosed one
/// runs to the end.
pub fn strip_think(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => rest = &rest[start + end + "</think>".len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Drops the lines that open or close a Markdown code fence.
pub fn strip_fences(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first balanced `{…}` in the text that parses as a JSON object.
pub fn find_json_object(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    for (start, _) in text.match_indices('{') {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for (offset, &b) in bytes[start..].iter().enumerate() {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        let candidate = &text[start..=start + offset];
                        if let Ok(value @ Value::Object(_)) = serde_json::from_str(candidate) {
                            return Some(value);
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    None
}

/// A JSON object cut off before its end (a reply that hit the token
/// limit), read up to its last complete value with the open brackets
/// closed; `None` if nothing before the cut parses. A complete object is
/// returned as it is.
pub fn close_truncated_json(text: &str) -> Option<Value> {
    let start = text.find('{')?;
    let s = &text[start..];
    let mut stack: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    // Places a value has just ended, with the brackets open there.
    let mut cuts: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => stack.push(b'}'),
            b'[' => stack.push(b']'),
            b'}' | b']' => {
                stack.pop();
                if stack.is_empty() {
                    return serde_json::from_str(&s[..=i]).ok();
                }
                cuts.push((i + 1, stack.clone()));
            }
            b',' => cuts.push((i, stack.clone())),
            _ => {}
        }
    }
    cuts.iter().rev().take(64).find_map(|(end, open)| {
        let mut candidate = s[..*end].to_string();
        candidate.extend(open.iter().rev().map(|&c| c as char));
        match serde_json::from_str(&candidate) {
            Ok(value @ Value::Object(_)) => Some(value),
            _ => None,
        }
    })
}

/// The string under the first of `keys` that holds one, trimmed; `None` if
/// it is blank.
pub fn string_at(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| value.get(*k))
        .find_map(|v| v.as_str())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The first of `keys` that holds an array (empty if none does).
pub fn array_at<'a>(value: &'a Value, keys: &[&str]) -> &'a [Value] {
    keys.iter()
        .filter_map(|k| value.get(*k))
        .find_map(|v| v.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A list of strings, given as an array or as one "a; b, c" string;
/// items are trimmed and empty ones dropped.
pub fn strings_at(value: &Value, key: &str) -> Vec<String> {
    let items: Vec<&str> = match value.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => s.split([';', ',']).collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A non-negative integer given as a number or as a numeric string.
pub fn as_u32(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn think_blocks_go_and_an_unclosed_one_runs_to_the_end() {
        assert_eq!(strip_think("a<think>x</think>b<think>y</think>c"), "abc");
        assert_eq!(strip_think("keep<think>never closed"), "keep");
        assert_eq!(strip_think("no tags"), "no tags");
    }

    #[test]
    fn fence_lines_are_dropped() {
        assert_eq!(strip_fences("```json\n{}\n  ```"), "{}");
    }

    #[test]
    fn the_first_balanced_object_is_found_around_prose_and_braces_in_strings() {
        let v =
            find_json_object(r#"Sure {not json} here: {"a": "}{", "b": {"c": 1}} bye"#).unwrap();
        assert_eq!(v, json!({"a": "}{", "b": {"c": 1}}));
        assert_eq!(find_json_object("[1, 2] and {broken"), None);
        assert_eq!(find_json_object("no json"), None);
    }

    #[test]
    fn a_cut_object_is_closed_after_its_last_complete_value() {
        let v =
            close_truncated_json(r#"ok {"a": "x, y", "b": [1, {"c": 2}, {"d": "unfini"#).unwrap();
        assert_eq!(v, json!({"a": "x, y", "b": [1, {"c": 2}]}));
        assert_eq!(close_truncated_json(r#"{"a": "no"#), None);
        assert_eq!(close_truncated_json(r#"{"a": 1}"#), Some(json!({"a": 1})));
        assert_eq!(close_truncated_json("nothing"), None);
    }

    #[test]
    fn values_are_read_leniently() {
        let v = json!({"name": 5, "blank": "  ", "alias": " Ana ", "list": "a; b,, c",
                       "arr": [" x ", 3, ""], "n": "7", "m": -1, "items": [1]});
        assert_eq!(string_at(&v, &["name", "alias"]), Some("Ana".into()));
        assert_eq!(string_at(&v, &["missing"]), None);
        assert_eq!(string_at(&v, &["blank"]), None);
        assert_eq!(strings_at(&v, "list"), ["a", "b", "c"]);
        assert_eq!(strings_at(&v, "arr"), ["x"]);
        assert!(strings_at(&v, "n").len() == 1 && strings_at(&v, "m").is_empty());
        assert_eq!(as_u32(&v["n"]), Some(7));
        assert_eq!(as_u32(&v["m"]), None);
        assert_eq!(array_at(&v, &["nope", "items"]).len(), 1);
        assert!(array_at(&v, &["name"]).is_empty());
    }
}
