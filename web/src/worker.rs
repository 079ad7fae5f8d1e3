//! The verification worker and the messages it takes and gives. The page starts a worker for
//! a job (`verify-worker.js`, which loads the `pipeproof-verify` module), waits for `ready`,
//! posts the job with the file (a `Blob`: the browser shares it, nothing is copied on the page),
//! and gets back `done` with the result, or learns that the worker failed. The worker reads the
//! file itself and runs [`crate::job`] on it, off the page's thread.
//!
//! trunk names the worker's files without a content hash (it leaves workers' names fixed, to
//! be known at runtime), so a browser could run a worker it cached from another build under
//! a new page. The page and the worker are compiled with the same [`BUILD`] id: the page loads
//! the worker by URLs carrying it ([`script_url`]; the loader adds it to the module's files),
//! which a browser has cached only from this build, and the worker refuses a job from a page
//! of another build, saying so.
//!
//! Messages are plain objects with a `kind`:
//! - page to worker: `{kind: "bundle", build, file, key?}` or `{kind: "data", build, file,
//!   manifest, step?}` (`manifest` as JSON);
//! - worker to page: `{kind: "ready", build}`; `{kind: "done", head, tables}` (a bundle, see
//!   [`crate::job::Wire`]; the tables' buffers are transferred, not copied) or
//!   `{kind: "done", head}` (a data check: `{check, millis}` as JSON); `{kind: "refused", error,
//!   build}` when the job could not be run (a job from a page of another build is refused);
//!   `{kind: "panicked", message, place}` just before the worker traps (what the panic said,
//!   and where: ` (file:line)`); `{kind: "failed", error}` from the loader when the module
//!   could not be started.

use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use pipeproof_core::bundle::{Check, Manifest};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use web_sys::{Blob, DedicatedWorkerGlobalScope, FileReaderSync, MessageEvent};

use crate::job::{Verified, Wire, check_data, now, verify_bundle};
use crate::panicked;

/// The worker's script, beside `index.html`.
pub const SCRIPT: &str = "verify-worker.js";

/// This build of the app and its worker: a hash of what they are built from (see `build.rs`).
pub const BUILD: &str = env!("PIPEPROOF_BUILD");

/// The URL the page loads the worker by: its script, with this build's id, which the loader
/// passes on to the module's files.
pub fn script_url() -> String {
    format!("{SCRIPT}?build={BUILD}")
}

/// How much of a file is read at a time into the module's memory: the file is never held
/// twice whole.
const CHUNK: f64 = 16.0 * 1024.0 * 1024.0;

/// A field of a message, as text.
pub fn text(message: &JsValue, field: &str) -> Option<String> {
    Reflect::get(message, &field.into())
        .ok()
        .and_then(|v| v.as_string())
}

fn object(fields: &[(&str, &JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        // Setting a property of a new plain object cannot fail.
        let _ = Reflect::set(&o, &(*k).into(), v);
    }
    o.into()
}

fn optional(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::UNDEFINED, JsValue::from_str)
}

/// The request to verify a bundle file.
pub fn bundle_request(file: &Blob, trusted_key: Option<&str>) -> JsValue {
    object(&[
        ("kind", &"bundle".into()),
        ("build", &BUILD.into()),
        ("file", file),
        ("key", &optional(trusted_key)),
    ])
}

/// The request to check a data file against a bundle's records.
pub fn data_request(
    file: &Blob,
    manifest: &Manifest,
    step: Option<&str>,
) -> Result<JsValue, String> {
    let manifest = serde_json::to_string(manifest).map_err(|e| e.to_string())?;
    Ok(object(&[
        ("kind", &"data".into()),
        ("build", &BUILD.into()),
        ("file", file),
        ("manifest", &manifest.into()),
        ("step", &optional(step)),
    ]))
}

/// The result of a data check, as it crosses.
#[derive(Serialize, Deserialize)]
pub struct DataChecked {
    /// Core's `data` check.
    pub check: Check,
    /// How long it took, in milliseconds (reading the file excluded).
    pub millis: f64,
}

/// A bundle's result from a `done` message.
pub fn read_verified(done: &JsValue) -> Result<Verified, String> {
    let head = text(done, "head").ok_or("the worker's answer has no head")?;
    let tables = Reflect::get(done, &"tables".into()).map_err(|_| "no tables")?;
    let tables = Array::from(&tables)
        .iter()
        .map(|b| Uint8Array::new(&b).to_vec())
        .collect();
    Verified::from_wire(Wire { head, tables })
}

/// A data check's result from a `done` message.
pub fn read_data_checked(done: &JsValue) -> Result<DataChecked, String> {
    let head = text(done, "head").ok_or("the worker's answer has no head")?;
    serde_json::from_str(&head).map_err(|e| e.to_string())
}

/// Error text from a JavaScript exception.
pub fn js_text(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .and_then(|e| e.message().as_string())
        })
        .unwrap_or_else(|| "an unknown error".into())
}

/// The worker's side: answers jobs until the page ends it. Called once by the worker module.
pub fn serve() {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    // A panic cannot be caught here either: the module traps and the page gets an error
    // event. This says first on what (a decoder tripping on a malformed file, most often), so
    // that the page can report the file.
    std::panic::set_hook(Box::new({
        let scope = scope.clone();
        move |info| {
            let _ = scope.post_message(&object(&[
                ("kind", &"panicked".into()),
                ("message", &panicked::message(info).into()),
                ("place", &panicked::place(info).into()),
            ]));
        }
    }));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
        let scope = scope.clone();
        move |e: MessageEvent| {
            let (reply, transfer) =
                answer(&e.data()).unwrap_or_else(|error| (refused(&error), Array::new()));
            if let Err(e) = scope.post_message_with_transfer(&reply, &transfer) {
                let error = format!("the answer could not be sent: {}", js_text(&e));
                let _ = scope.post_message(&refused(&error));
            }
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The worker lives as long as its scope, which keeps the handler.
    on_message.forget();
    let _ = scope.post_message(&object(&[
        ("kind", &"ready".into()),
        ("build", &BUILD.into()),
    ]));
}

/// A refusal, with this worker's build.
fn refused(error: &str) -> JsValue {
    object(&[
        ("kind", &"refused".into()),
        ("error", &error.into()),
        ("build", &BUILD.into()),
    ])
}

/// Whether a job comes from a page of this build: the worker's code is that page's only then.
fn of_this_build(request: &JsValue) -> Result<(), String> {
    match text(request, "build") {
        Some(b) if b == BUILD => Ok(()),
        page => Err(format!(
            "this worker is of build {BUILD} and the page of {}: reload the page",
            page.map_or("an unknown build".into(), |b| format!("build {b}"))
        )),
    }
}

/// Runs one job: the reply, and the buffers it transfers.
fn answer(request: &JsValue) -> Result<(JsValue, Array), String> {
    of_this_build(request)?;
    let file: Blob = Reflect::get(request, &"file".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("the job has no file")?;
    match text(request, "kind").as_deref() {
        Some("bundle") => {
            let bytes = read_blob(&file)?;
            let key = text(request, "key");
            let wire = verify_bundle(&bytes, key.as_deref()).to_wire()?;
            drop(bytes);
            let tables = Array::new();
            for t in &wire.tables {
                tables.push(&Uint8Array::from(&t[..]).buffer());
            }
            let reply = object(&[
                ("kind", &"done".into()),
                ("head", &wire.head.into()),
                ("tables", &tables),
            ]);
            Ok((reply, tables))
        }
        Some("data") => {
            let manifest: Manifest =
                serde_json::from_str(&text(request, "manifest").ok_or("the job has no manifest")?)
                    .map_err(|e| e.to_string())?;
            let step = text(request, "step");
            let bytes = read_blob(&file)?;
            let start = now();
            let check = check_data(&manifest, bytes, step.as_deref());
            let millis = now() - start;
            let head =
                serde_json::to_string(&DataChecked { check, millis }).map_err(|e| e.to_string())?;
            Ok((
                object(&[("kind", &"done".into()), ("head", &head.into())]),
                Array::new(),
            ))
        }
        _ => Err("the job is of no known kind".into()),
    }
}

/// A file's bytes, read a slice at a time straight into the module's memory (a worker may read
/// synchronously).
fn read_blob(blob: &Blob) -> Result<Vec<u8>, String> {
    let failed = |e: JsValue| format!("the file could not be read: {}", js_text(&e));
    let size = blob.size();
    let reader = FileReaderSync::new().map_err(failed)?;
    let mut bytes = vec![0; size as usize];
    let mut at = 0.0;
    while at < size {
        let end = (at + CHUNK).min(size);
        let part = blob.slice_with_f64_and_f64(at, end).map_err(failed)?;
        let buffer: ArrayBuffer = reader.read_as_array_buffer(&part).map_err(failed)?;
        let part = Uint8Array::new(&buffer);
        if f64::from(part.length()) != end - at {
            return Err("the file changed while it was read".into());
        }
        part.copy_to(&mut bytes[at as usize..end as usize]);
        at = end;
    }
    Ok(bytes)
}
