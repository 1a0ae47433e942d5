//! JSON schema to GBNF, for the subset persona-sim's own schemas use
//! (objects with required properties, strings, integers, string enums and
//! arrays). The local backend constrains sampling with it, so a model too
//! small to follow "reply with JSON" still produces well-formed JSON in the
//! right shape. Arrays hold one to a few items and strings are never
//! empty, to keep replies short and every field filled.

use std::fmt::Write as _;

use serde_json::Value;

/// Most items an array may have in constrained output.
const MAX_ITEMS: usize = 6;

const PRIMITIVES: &str = r#"ws ::= [ \t\n]{0,2}
string ::= "\"" char+ "\""
char ::= [^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt]
integer ::= "0" | "-"? [1-9] [0-9]{0,5}
"#;

/// The grammar for `schema`, rooted at `root`; an error names what is not
/// supported.
pub fn gbnf(schema: &Value) -> Result<String, String> {
    let mut rules = Vec::new();
    let root = rule_for(schema, "root", &mut rules)?;
    let mut out = String::new();
    if root != "root" {
        let _ = writeln!(out, "root ::= {root}");
    }
    for (name, body) in &rules {
        let _ = writeln!(out, "{name} ::= {body}");
    }
    out.push_str(PRIMITIVES);
    Ok(out)
}

fn literal(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// The rule (or primitive) that matches `schema`; new rules go to `rules`.
fn rule_for(
    schema: &Value,
    name: &str,
    rules: &mut Vec<(String, String)>,
) -> Result<String, String> {
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        let alternatives: Vec<String> = options
            .iter()
            .map(|o| {
                o.as_str()
                    .map(|s| literal(&format!("\"{s}\"")))
                    .ok_or_else(|| format!("{name}: only string enums are supported"))
            })
            .collect::<Result<_, _>>()?;
        rules.push((name.to_string(), format!("({})", alternatives.join(" | "))));
        return Ok(name.to_string());
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => Ok("string".into()),
        Some("integer") => Ok("integer".into()),
        Some("array") => {
            let items = schema
                .get("items")
                .ok_or_else(|| format!("{name}: an array needs `items`"))?;
            let item = rule_for(items, &format!("{name}-item"), rules)?;
            let body = format!(
                "\"[\" ws {item} (\",\" ws {item}){{0,{}}} ws \"]\"",
                MAX_ITEMS - 1
            );
            rules.push((name.to_string(), body));
            Ok(name.to_string())
        }
        Some("object") => {
            let properties = schema
                .get("properties")
                .and_then(Value::as_object)
                .ok_or_else(|| format!("{name}: an object needs `properties`"))?;
            let mut parts = Vec::new();
            for (i, (key, sub)) in properties.iter().enumerate() {
                let rule = rule_for(sub, &format!("{name}-{}", key.replace('_', "-")), rules)?;
                let comma = if i == 0 { "" } else { "\",\" ws " };
                parts.push(format!(
                    "{comma}{} ws \":\" ws {rule}",
                    literal(&format!("\"{key}\""))
                ));
            }
            let body = format!("\"{{\" ws {} ws \"}}\"", parts.join(" ws "));
            rules.push((name.to_string(), body));
            Ok(name.to_string())
        }
        other => Err(format!("{name}: type {other:?} is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_become_grammars_with_every_property_in_order() {
        let g = gbnf(&json!({"type": "object", "properties": {
            "name": {"type": "string"},
            "stance": {"type": "string", "enum": ["for", "against"]},
            "turns": {"type": "array", "items": {"type": "integer"}}
        }}))
        .unwrap();
        assert!(
            g.starts_with("root-stance ::= (\"\\\"for\\\"\" | \"\\\"against\\\"\")"),
            "{g}"
        );
        assert!(
            g.contains("root-turns ::= \"[\" ws integer (\",\" ws integer){0,5} ws \"]\""),
            "{g}"
        );
        let root = g.lines().find(|l| l.starts_with("root ::=")).unwrap();
        let name = root.find("name").unwrap();
        let stance = root.find("stance").unwrap();
        assert!(name < stance, "{root}");
        assert!(g.contains("string ::="));
    }

    #[test]
    fn unsupported_schemas_are_refused() {
        assert!(gbnf(&json!({"type": "number"})).is_err());
        assert!(gbnf(&json!({"type": "array"})).is_err());
    }

    #[test]
    fn the_apps_own_schemas_convert() {
        let report = crate::sim::report::report_schema();
        let g = gbnf(&report.schema).unwrap();
        assert!(g.contains("root-insights-item"));
    }
}
