//! The bundle loaded on the verify page, kept for the whole app so that its step pages can be
//! opened and left without loading the file again; and the checks of bundle and data files,
//! run in a worker so the page stays responsive (on the page itself when no worker starts).
//! Nothing here talks to a server.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise};
use pipeproof_core::bundle::{Check, Details, Manifest, VerifyReport};
use pipeproof_web::job::{self, Verified};
use pipeproof_web::worker::{self, js_text, text};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, MessageEvent, Worker};
use yew::prelude::*;

use crate::view::StepView;

pub use pipeproof_web::job::now;

/// Where a check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// In a worker, off the page's thread.
    InWorker,
    /// On the page's thread, no worker having started.
    OnPage,
}

impl Ran {
    /// As the page says it, and as its `data-ran` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Ran::InWorker => "worker",
            Ran::OnPage => "page",
        }
    }
}

/// A verified bundle file.
#[derive(Debug)]
pub struct Loaded {
    /// The file's name.
    pub file_name: String,
    /// Its size in bytes.
    pub size: usize,
    /// The verification report.
    pub report: VerifyReport,
    /// The bundle's manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// The public key it was checked against.
    pub trusted_key: Option<String>,
    /// How long verifying took, in milliseconds.
    pub millis: f64,
    /// Where it was verified.
    pub ran: Ran,
    /// The steps, as the timeline shows them.
    pub steps: Rc<Vec<StepView>>,
    /// Each step's diff details, shared with the details table.
    pub details: Vec<Option<Rc<Details>>>,
}

/// A file's bytes: `Blob.arrayBuffer()`, then one copy into the module's memory.
pub async fn read_file(blob: &Blob) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(blob.array_buffer())
        .await
        .map_err(|e| js_text(&e))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Runs a job in a worker of its own, ended after it: the memory the job took (the file and
/// what verifying it needs) goes with the worker. The answer is the worker's `done` message;
/// an error says why there is none (no worker could start, or it stopped).
async fn in_worker(request: JsValue) -> Result<JsValue, String> {
    let w = Worker::new(worker::SCRIPT).map_err(|e| js_text(&e))?;
    let settle: Rc<RefCell<Option<(Function, Function)>>> = Rc::default();
    let promise = Promise::new(&mut |resolve, reject| {
        *settle.borrow_mut() = Some((resolve, reject));
    });
    let finish = {
        let settle = settle.clone();
        move |result: Result<JsValue, JsValue>| {
            if let Some((resolve, reject)) = settle.borrow_mut().take() {
                let _ = match result {
                    Ok(v) => resolve.call1(&JsValue::UNDEFINED, &v),
                    Err(e) => reject.call1(&JsValue::UNDEFINED, &e),
                };
            }
        }
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
        let (w, finish) = (w.clone(), finish.clone());
        move |e: MessageEvent| {
            let data = e.data();
            match text(&data, "kind").as_deref() {
                Some("ready") => {
                    if let Err(e) = w.post_message(&request) {
                        finish(Err(e));
                    }
                }
                Some("done") => finish(Ok(data)),
                Some("panicked") => {
                    let what = text(&data, "message").unwrap_or_default();
                    finish(Err(format!("the worker stopped: {what}").into()));
                }
                _ => {
                    let why = text(&data, "error").unwrap_or_else(|| "an unknown answer".into());
                    finish(Err(why.into()));
                }
            }
        }
    });
    // A script that cannot load, or an exception (a trap) in the worker. The event is handled
    // here, not reported as the page's own error.
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        e.prevent_default();
        let why = e
            .dyn_ref::<web_sys::ErrorEvent>()
            .map(|e| e.message())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("{} could not be started", worker::SCRIPT));
        finish(Err(why.into()));
    });
    w.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    w.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let result = JsFuture::from(promise).await;
    w.terminate();
    w.set_onmessage(None);
    w.set_onerror(None);
    drop((on_message, on_error));
    result.map_err(|e| js_text(&e))
}

/// Verifies a bundle file with core (every check of `verify_bytes`), in a worker; on the page
/// when no worker can run it.
pub async fn check_bundle(
    file_name: String,
    file: Blob,
    trusted_key: Option<String>,
) -> Result<Loaded, String> {
    let size = file.size() as usize;
    let request = worker::bundle_request(&file, trusted_key.as_deref());
    let (verified, ran) = match in_worker(request)
        .await
        .and_then(|done| worker::read_verified(&done))
    {
        Ok(v) => (v, Ran::InWorker),
        Err(why) => {
            gloo::console::warn!(format!(
                "verifying on the page: no worker verified the bundle ({why})"
            ));
            let bytes = read_file(&file).await?;
            // Gives the browser time to paint the busy notice before this blocks the thread.
            gloo::timers::future::TimeoutFuture::new(40).await;
            (
                job::verify_bundle(&bytes, trusted_key.as_deref()),
                Ran::OnPage,
            )
        }
    };
    Ok(loaded(file_name, size, verified, trusted_key, ran))
}

fn loaded(
    file_name: String,
    size: usize,
    v: Verified,
    trusted_key: Option<String>,
    ran: Ran,
) -> Loaded {
    let (manifest, steps, details) = match v.shown {
        Some(shown) => {
            let steps = StepView::from_bundle(&shown.manifest, &shown.steps);
            let details = shown
                .steps
                .into_iter()
                .map(|s| s.details.map(Rc::new))
                .collect();
            (Some(shown.manifest), steps, details)
        }
        None => (None, Vec::new(), Vec::new()),
    };
    Loaded {
        file_name,
        size,
        report: v.report,
        manifest,
        trusted_key,
        millis: v.millis,
        ran,
        steps: Rc::new(steps),
        details,
    }
}

/// Whether a data file is exactly the output of a step of the bundle (`step`: a named one, or
/// any): core's check (see `job::check_data`) in a worker, or on the page when no worker can
/// run it. Gives the check, how long it took in milliseconds, and where it ran.
pub async fn check_data(
    manifest: &Manifest,
    file: Blob,
    step: Option<String>,
) -> Result<(Check, f64, Ran), String> {
    let asked = worker::data_request(&file, manifest, step.as_deref());
    let answer = match asked {
        Ok(request) => in_worker(request)
            .await
            .and_then(|done| worker::read_data_checked(&done)),
        Err(e) => Err(e),
    };
    match answer {
        Ok(c) => Ok((c.check, c.millis, Ran::InWorker)),
        Err(why) => {
            gloo::console::warn!(format!(
                "checking on the page: no worker checked the data file ({why})"
            ));
            let bytes = read_file(&file).await?;
            gloo::timers::future::TimeoutFuture::new(40).await;
            let start = now();
            let check = job::check_data(manifest, bytes, step.as_deref());
            Ok((check, now() - start, Ran::OnPage))
        }
    }
}

/// The offline state: the loaded bundle, if any.
#[derive(Clone)]
pub struct Offline(pub UseStateHandle<Option<Rc<Loaded>>>);

impl PartialEq for Offline {
    fn eq(&self, other: &Self) -> bool {
        match (&*self.0, &*other.0) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// Props of [`OfflineProvider`].
#[derive(Properties, PartialEq)]
pub struct ProviderProps {
    /// The app.
    pub children: Html,
}

/// Provides the offline state.
#[component]
pub fn OfflineProvider(props: &ProviderProps) -> Html {
    let state = use_state(|| None);
    html! {
        <ContextProvider<Offline> context={Offline(state)}>{props.children.clone()}</ContextProvider<Offline>>
    }
}

/// The offline state.
#[hook]
pub fn use_offline() -> Offline {
    use_context::<Offline>().expect("OfflineProvider wraps the app")
}
