//! server/openapi.json against the code: every route the server registers is documented
//! with its method, every documented `/api/v1` route is registered, every `$ref` resolves,
//! and values of core's `api` types, serialised by serde, match the documented schemas
//! exactly (no missing, extra or mistyped field), so the document cannot drift from the
//! types the server and the web app share.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
use pipeproof_core::Table;
use pipeproof_core::api::*;
use pipeproof_core::bundle::{RunInfo, StepContext, build_step};
use pipeproof_core::diff::DiffConfig;
use pipeproof_core::sign::KeyPair;
use serde::Serialize;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn doc() -> Value {
    let path = repo().join("server/openapi.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `(METHOD, path)` of every `.route("path", web::method()` in a source file.
fn registered(file: &str, prefix: &str) -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(repo().join(file)).unwrap();
    let flat: String = src.split_whitespace().collect::<Vec<_>>().join("");
    let mut out = BTreeSet::new();
    for part in flat.split(".route(\"").skip(1) {
        let (path, rest) = part.split_once('"').unwrap();
        let method = rest
            .strip_prefix(",web::")
            .and_then(|r| r.split_once("()"))
            .map(|(m, _)| m.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("cannot read the method of route {path} in {file}"));
        out.insert((method, format!("{prefix}{path}")));
    }
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_document_has_the_expected_shape() {
    let d = doc();
    assert!(d["openapi"].as_str().unwrap().starts_with("3.1."));
    assert_eq!(d["info"]["title"], "pipeproof API");
    assert_eq!(d["servers"][0]["url"], PREFIX);
    assert_eq!(
        d["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer",
               "description": d["components"]["securitySchemes"]["bearer"]["description"]})
    );
    assert_eq!(d["security"], json!([{"bearer": []}]));
    // /healthz needs no token, and says so.
    assert_eq!(d["paths"]["/healthz"]["get"]["security"], json!([]));
    // Every operation has an id, a summary, a scope and a 2xx reply; every error reply
    // is a problem document.
    let mut ids = BTreeSet::new();
    for (path, item) in d["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "servers" {
                continue;
            }
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}"));
            assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            assert!(op["summary"].is_string(), "{method} {path}");
            if path != "/healthz" {
                assert!(
                    op["description"].as_str().unwrap().contains("Scope: `"),
                    "{method} {path} names no scope"
                );
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path}"
            );
            for (code, r) in responses {
                if code.starts_with('4') {
                    let r = resolve(&d, r);
                    assert!(
                        r["content"]["application/problem+json"]["schema"]["$ref"]
                            .as_str()
                            .is_some_and(|s| s.ends_with("/Problem")),
                        "{method} {path} {code} is not a problem document"
                    );
                }
            }
        }
    }
    // The step post takes every data format the server reads.
    let body = &d["paths"]["/runs/{id}/steps"]["post"]["requestBody"]["content"];
    for f in [
        pipeproof_core::Format::ArrowStream,
        pipeproof_core::Format::ArrowFile,
        pipeproof_core::Format::Parquet,
        pipeproof_core::Format::Csv,
    ] {
        assert!(body.get(f.media_type()).is_some(), "{}", f.media_type());
    }
}

#[test]
fn every_registered_route_is_documented_and_every_api_route_exists() {
    let d = doc();
    let documented: BTreeSet<(String, String)> = documented(&d)
        .into_iter()
        .map(|(m, p)| {
            // /healthz and /metrics sit at the server root (a path-level `servers`).
            let root = d["paths"][&p]["servers"][0]["url"] == "/";
            (m, if root { p } else { format!("{PREFIX}{p}") })
        })
        .collect();
    let api = registered("server/src/http/routes.rs", PREFIX);
    let root = registered("server/src/http/mod.rs", "");
    assert!(api.len() >= 16, "found only {api:?} in routes.rs");
    assert!(
        root.contains(&("GET".into(), "/healthz".into())),
        "{root:?}"
    );
    let missing: Vec<_> = api
        .union(&root)
        .filter(|r| !documented.contains(r))
        .collect();
    assert!(
        missing.is_empty(),
        "routes the server registers but server/openapi.json does not document: {missing:?}"
    );
    let stale: Vec<_> = documented
        .iter()
        .filter(|(_, p)| p.starts_with(PREFIX))
        .filter(|r| !api.contains(r))
        .collect();
    assert!(
        stale.is_empty(),
        "routes server/openapi.json documents but the server does not register: {stale:?}"
    );
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = r
                .strip_prefix("#/")
                .unwrap_or_else(|| panic!("external $ref {r}"))
                .split('/')
                .fold(doc, |node, key| &node[key]);
            assert!(!target.is_null(), "$ref {r} does not resolve");
            resolve(doc, target)
        }
        None => v,
    }
}

#[test]
fn every_ref_resolves() {
    fn walk(doc: &Value, v: &Value, n: &mut usize) {
        match v {
            Value::Object(m) => {
                if m.contains_key("$ref") {
                    resolve(doc, v);
                    *n += 1;
                }
                m.values().for_each(|c| walk(doc, c, n));
            }
            Value::Array(a) => a.iter().for_each(|c| walk(doc, c, n)),
            _ => {}
        }
    }
    let d = doc();
    let mut n = 0;
    walk(&d, &d, &mut n);
    assert!(n > 50, "only {n} refs");
}

/// The errors of `value` against `schema`: a small validator for the keywords the document
/// uses ($ref, oneOf, type, enum, pattern, minimum, properties, required,
/// additionalProperties, items).
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                check(doc, o, value, at, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!(
                "{at}: {value} matches {matching} of oneOf {options:?}"
            ));
        }
        return;
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => panic!("{at}: bad type {other}"),
        };
        let ok = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("{at}: unknown type {other}"),
        });
        if !ok {
            errors.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let (Some(p), Some(s)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) {
        assert_eq!(p, "^[0-9a-f]{64}$", "{at}: the validator knows one pattern");
        if !(s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            errors.push(format!("{at}: `{s}` is not 64 lowercase hex digits"));
        }
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && n < min
    {
        errors.push(format!("{at}: {n} < minimum {min}"));
    }
    if let Some(obj) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = req.as_str().unwrap();
            if !obj.contains_key(req) {
                errors.push(format!("{at}: required `{req}` is missing"));
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, v, &format!("{at}.{k}"), errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{at}: `{k}` is not documented"))
                    }
                    Some(s @ Value::Object(_)) => check(doc, s, v, &format!("{at}.{k}"), errors),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

/// Serialises `value` and checks it against `#/components/schemas/{name}`.
#[track_caller]
fn conforms<T: Serialize>(doc: &Value, name: &str, value: &T) {
    let v = serde_json::to_value(value).unwrap();
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    let mut errors = Vec::new();
    check(doc, schema, &v, name, &mut errors);
    assert!(
        errors.is_empty(),
        "{name} does not match the document:\n{errors:#?}\n{v:#}"
    );
}

/// The open run the steps below belong to.
fn run_info() -> RunInfo {
    RunInfo {
        id: "r1".into(),
        pipeline: "p".into(),
        labels: Default::default(),
        code_version: None,
        params: json!({}),
        status: "open".into(),
        error: None,
        created_at: "2026-11-24T10:00:00Z".into(),
        sealed_at: None,
    }
}

/// Two real steps built by core, the second with a keyed diff.
fn steps() -> (Step, Step) {
    let t = |ids: Vec<i64>, amounts: Vec<Option<f64>>, names: Vec<&str>| {
        Table::from_batches(vec![
            arrow_array::RecordBatch::try_from_iter(vec![
                ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
                ("amount", Arc::new(Float64Array::from(amounts)) as ArrayRef),
                ("name", Arc::new(StringArray::from(names)) as ArrayRef),
            ])
            .unwrap(),
        ])
        .unwrap()
    };
    let a = t(
        vec![1, 2, 3],
        vec![Some(1.0), None, Some(3.0)],
        vec!["a", "b", "c"],
    );
    let b = t(
        vec![3, 2, 4],
        vec![Some(3.5), None, Some(f64::NAN)],
        vec!["c", "b", "d"],
    );
    let run = run_info();
    let config = DiffConfig::keyed(["id"]);
    let first = build_step(
        &a,
        StepContext {
            run: &run,
            index: 0,
            step: "load",
            created_at: "2026-11-24T10:00:01Z",
            params: json!({}),
            config: &config,
            previous: None,
            previous_stored: None,
        },
    )
    .unwrap();
    let second = build_step(
        &b,
        StepContext {
            run: &run,
            index: 1,
            step: "clean",
            created_at: "2026-11-24T10:00:02Z",
            params: json!({"key": ["id"]}),
            config: &config,
            previous: Some((&first.record, &a)),
            previous_stored: None,
        },
    )
    .unwrap();
    let step = |built: pipeproof_core::bundle::BuiltStep| Step {
        hash: built.record.hash(),
        schema: Column::of_record(&built.record),
        stats: built.stored.stats.clone(),
        diff: built.stored.diff.clone(),
        artifact: false,
        record: built.record,
        redacted: None,
        statistics_redacted: None,
    };
    (step(first), step(second))
}

fn run(status: RunStatus, head: Option<pipeproof_core::Hash>) -> Run {
    Run {
        id: "r1".into(),
        pipeline: "p".into(),
        labels: [("env".to_string(), "prod".to_string())].into(),
        code_version: Some("abc".into()),
        params: json!({"day": "2026-11-24"}),
        status,
        error: (status == RunStatus::Failed).then(|| "boom".into()),
        created_at: "2026-11-24T10:00:00Z".into(),
        sealed_at: (status != RunStatus::Open).then(|| "2026-11-24T10:05:00Z".into()),
        steps: 2,
        rows: head.map(|_| 3),
        head,
    }
}

#[test]
fn core_api_values_match_the_documented_schemas() {
    let d = doc();
    let (first, second) = steps();
    assert!(second.diff.is_some() && first.diff.is_none());
    conforms(&d, "Step", &first);
    conforms(&d, "Step", &second);
    let redaction = Redaction {
        at: "2026-11-25T09:00:00.000Z".into(),
        reason: "erasure request 42".into(),
    };
    conforms(
        &d,
        "Step",
        &Step {
            redacted: Some(redaction.clone()),
            ..second.clone()
        },
    );
    conforms(
        &d,
        "Step",
        &Step {
            stats: Vec::new(),
            statistics_redacted: Some(redaction.clone()),
            ..second.clone()
        },
    );
    conforms(&d, "Redaction", &redaction);
    conforms(
        &d,
        "RedactRun",
        &RedactRun {
            reason: "retention: 90 days".into(),
            steps: Some(vec![1, 2]),
            statistics: false,
        },
    );
    conforms(
        &d,
        "RedactRun",
        &RedactRun {
            reason: "erasure request 42".into(),
            steps: None,
            statistics: true,
        },
    );
    conforms(
        &d,
        "Redacted",
        &Redacted {
            run_id: "r1".into(),
            at: "2026-11-25T09:00:00.000Z".into(),
            steps: vec![1, 2],
            statistics: vec![0, 1, 2],
            already: vec![3],
            nothing: vec![0],
            blobs_removed: 5,
            bytes_freed: 123_456,
            blobs_pending: 1,
        },
    );
    conforms(&d, "DiffSummary", second.diff.as_ref().unwrap());
    conforms(&d, "StepRecord", &second.record);

    let ended = RunInfo {
        status: "sealed".into(),
        sealed_at: Some("2026-11-24T10:05:00Z".into()),
        ..run_info()
    };
    let seal = KeyPair::from_bytes(&[1; 32])
        .seal(&ended, 2, second.hash)
        .unwrap();
    conforms(&d, "Seal", &seal);
    let leaves: Vec<_> = (0..5u8)
        .map(|i| pipeproof_core::merkle::leaf_hash(&[i]))
        .collect();
    let key = KeyPair::from_bytes(&[1; 32]);
    conforms(
        &d,
        "TreeHead",
        &key.sign_tree_head(&leaves, "2026-11-28T00:00:00Z"),
    );
    conforms(
        &d,
        "LogInclusion",
        &pipeproof_core::api::LogInclusion {
            run_id: "r1".into(),
            leaf: leaves[2],
            proof: pipeproof_core::log::inclusion_proof(&leaves, 2),
        },
    );
    conforms(
        &d,
        "ConsistencyProof",
        &pipeproof_core::log::consistency_proof(&leaves, 3),
    );
    conforms(
        &d,
        "LogEntries",
        &pipeproof_core::api::LogEntries {
            size: 5,
            entries: vec![pipeproof_core::api::LogEntry {
                index: 0,
                run_id: "r1".into(),
                leaf: pipeproof_core::log::leaf_of(&seal),
                seal: seal.clone(),
            }],
        },
    );
    for (status, head) in [
        (RunStatus::Open, None),
        (RunStatus::Sealed, Some(second.hash)),
        (RunStatus::Failed, Some(second.hash)),
    ] {
        conforms(&d, "Run", &run(status, head));
    }
    conforms(
        &d,
        "RunDetail",
        &RunDetail {
            run: run(RunStatus::Sealed, Some(second.hash)),
            steps: vec![first.clone(), second.clone()],
            seal: Some(seal),
        },
    );
    conforms(
        &d,
        "RunDetail",
        &RunDetail {
            run: run(RunStatus::Open, None),
            steps: vec![],
            seal: None,
        },
    );
    conforms(
        &d,
        "RunPage",
        &Page {
            items: vec![run(RunStatus::Open, None)],
            total: 1,
            offset: 0,
            limit: 50,
        },
    );
    conforms(
        &d,
        "Pipeline",
        &Pipeline {
            name: "p".into(),
            runs: 3,
            last_run_at: "2026-11-24T10:00:00Z".into(),
        },
    );
    let mut row = serde_json::Map::new();
    row.insert("id".into(), json!(3));
    row.insert("column".into(), json!("amount"));
    row.insert("old".into(), json!("3"));
    row.insert("new".into(), json!("3.5"));
    conforms(
        &d,
        "DetailPage",
        &DetailPage {
            kind: DetailKind::Changed,
            columns: vec!["id".into(), "column".into(), "old".into(), "new".into()],
            rows: vec![row.clone()],
            total: 1,
            offset: 0,
            limit: 100,
            truncated: false,
        },
    );
    conforms(
        &d,
        "Trace",
        &Trace {
            run_id: "r1".into(),
            key: vec!["id".into()],
            value: "3".into(),
            steps: vec![
                TraceStep {
                    index: 0,
                    step: "load".into(),
                    state: TraceState::Added,
                    row_hash: Some(second.hash),
                    values: Some(row),
                    changes: vec![],
                    redacted: false,
                },
                TraceStep {
                    index: 1,
                    step: "clean".into(),
                    state: TraceState::Changed,
                    row_hash: None,
                    values: None,
                    changes: vec![CellChange {
                        column: "amount".into(),
                        old: json!(3.0),
                        new: json!(3.5),
                    }],
                    redacted: false,
                },
                TraceStep {
                    index: 2,
                    step: "enrich".into(),
                    state: TraceState::Changed,
                    row_hash: None,
                    values: None,
                    changes: vec![],
                    redacted: true,
                },
            ],
        },
    );
    conforms(
        &d,
        "Keys",
        &Keys {
            keys: vec![
                PublicKey {
                    algorithm: "ed25519".into(),
                    public_key: KeyPair::from_bytes(&[2; 32]).public_hex(),
                    created_at: "2026-11-25T09:00:00Z".into(),
                    retired_at: None,
                    handover: Some(
                        KeyPair::from_bytes(&[1; 32])
                            .hand_over(&KeyPair::from_bytes(&[2; 32]), "2026-11-25T09:00:00Z"),
                    ),
                },
                PublicKey {
                    algorithm: "ed25519".into(),
                    public_key: KeyPair::from_bytes(&[1; 32]).public_hex(),
                    created_at: "2026-11-24T09:00:00Z".into(),
                    retired_at: Some("2026-11-25T09:00:00Z".into()),
                    handover: None,
                },
            ],
        },
    );
    let token = Token {
        id: "t1".into(),
        name: "ci".into(),
        scopes: vec![Scope::Ingest, Scope::Read],
        created_at: "2026-11-24T09:00:00Z".into(),
        revoked_at: None,
        token: Some("secret".into()),
    };
    conforms(&d, "Token", &token);
    conforms(
        &d,
        "Token",
        &Token {
            token: None,
            revoked_at: Some("2026-11-25T10:00:00Z".into()),
            ..token
        },
    );
    conforms(
        &d,
        "WhoAmI",
        &WhoAmI {
            name: "ci".into(),
            scopes: vec![Scope::Admin],
        },
    );
    conforms(
        &d,
        "Health",
        &Health {
            status: "ok".into(),
            version: "0.1.0".into(),
        },
    );
    conforms(
        &d,
        "Problem",
        &Problem {
            kind: "https://pipeproof.dev/problems/unknown-run".into(),
            title: "Unknown run".into(),
            status: 404,
            detail: "there is no run `x`".into(),
        },
    );
    conforms(
        &d,
        "CreateRun",
        &CreateRun {
            pipeline: "p".into(),
            labels: Default::default(),
            code_version: None,
            params: json!({}),
        },
    );
    conforms(
        &d,
        "CreateToken",
        &CreateToken {
            name: "ci".into(),
            scopes: vec![Scope::Ingest],
        },
    );
    conforms(
        &d,
        "FailRun",
        &FailRun {
            error: "boom".into(),
        },
    );
}

#[test]
fn the_validator_rejects_what_it_should() {
    // A check that could not fail would prove nothing: mistyped, missing, extra fields.
    let d = doc();
    let schema = &d["components"]["schemas"]["Run"];
    let good = serde_json::to_value(run(RunStatus::Open, None)).unwrap();
    let mut errors = Vec::new();
    check(&d, schema, &good, "Run", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    for (field, bad) in [
        ("steps", json!("two")),
        ("status", json!("closed")),
        ("head", json!("xyz")),
        ("labels", json!({"a": 1})),
    ] {
        let mut v = good.clone();
        v[field] = bad;
        let mut errors = Vec::new();
        check(&d, schema, &v, "Run", &mut errors);
        assert!(!errors.is_empty(), "{field} accepted");
    }
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("pipeline");
    let mut errors = Vec::new();
    check(&d, schema, &v, "Run", &mut errors);
    assert!(errors.iter().any(|e| e.contains("`pipeline` is missing")));
    let mut v = good;
    v["surprise"] = json!(1);
    let mut errors = Vec::new();
    check(&d, schema, &v, "Run", &mut errors);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`surprise` is not documented"))
    );
}
