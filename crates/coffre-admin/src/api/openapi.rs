//! The OpenAPI 3.1 document of the admin API, generated from the call table and the wire
//! types (their schemas are JSON Schema 2020-12, which OpenAPI 3.1 uses as is).

use super::{operations, Answered, ErrorBody};
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

/// The document, deterministic (keys sorted): docs/admin-api.json is this, pretty-printed.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let error = Value::from(g.subschema_for::<ErrorBody>());
    let mut paths = Map::new();
    for op in operations() {
        let mut parameters = Vec::new();
        for name in op
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            parameters.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        let query = Value::from((op.query)(&mut g));
        let required: Vec<&str> = query["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (name, schema) in query["properties"].as_object().into_iter().flatten() {
            let mut schema = schema.clone();
            let description = schema.as_object_mut().and_then(|s| s.remove("description"));
            let mut p =
                json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": schema});
            if let Some(d) = description {
                p["description"] = d;
            }
            parameters.push(p);
        }
        let (summary, description) = split_doc(op.doc);
        let ok = match op.answer {
            Answered::Json(schema) => {
                json!({"description": "OK", "content": {"application/json": {"schema": Value::from(schema(&mut g))}}})
            }
            Answered::Raw(content_type) => json!({"description": "OK", "content": {content_type: {}}}),
        };
        let mut o = json!({
            "operationId": op.name,
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": ok,
                "default": {
                    "description": "Refused: the code says why (ErrorCode), the status follows from it.",
                    "content": {"application/json": {"schema": error}},
                },
            },
        });
        if !description.is_empty() {
            o["description"] = json!(description);
        }
        if let Some(body) = op.body {
            o["requestBody"] = json!({"content": {"application/json": {"schema": Value::from(body(&mut g))}}});
        }
        if !op.cli.is_empty() {
            let commands: Vec<String> = op.cli.iter().map(|c| format!("coffre admin {c} --json")).collect();
            o["x-coffre-cli"] = json!(commands);
        }
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method.as_str().to_ascii_lowercase()] = o;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Coffre admin API",
            "version": "1",
            "description": "The operator's API of a Coffre gateway (docs/admin-api.md). Every call takes the bearer token of DATA/admin.token.",
        },
        "paths": paths,
        "components": {
            "schemas": g.take_definitions(true),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    })
}

/// A doc comment's first sentence or line, and the rest, on one line each.
fn split_doc(doc: &str) -> (String, String) {
    let text = doc.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let text = text.trim();
    match text.find(". ") {
        Some(i) => (text[..=i].to_string(), text[i + 2..].trim().to_string()),
        None => (text.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    /// docs/admin-api.json is the document the code generates (regenerate it with
    /// `COFFRE_WRITE_OPENAPI=1 cargo test -p coffre-admin openapi`).
    #[test]
    fn the_checked_in_openapi_document_is_the_generated_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/admin-api.json");
        let generated = format!("{}\n", serde_json::to_string_pretty(&super::document()).unwrap());
        if std::env::var_os("COFFRE_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/admin-api.json differs from the generated document: regenerate it with COFFRE_WRITE_OPENAPI=1 cargo test -p coffre-admin openapi"
        );
    }
}
