//! The bundle loaded on the verify page, kept for the whole app so that its step pages can be
//! opened and left without loading the file again; and the checks of bundle and data files,
//! run in a worker so the page stays responsive (on the page itself when no worker starts;
//! never after a file stopped the worker, as a decoder's panic would stop the page too).
//! Nothing here talks to a server.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise};
use pipeproof_core::bundle::{Check, Details, Manifest, VerifyReport};
use pipeproof_web::job::{self, Stopped, Verified};
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

/// Why a job got no answer from a worker.
#[derive(Debug)]
enum NoAnswer {
    /// No worker could be started, or given the job: the page may run it itself.
    NotStarted(String),
    /// The worker stopped on the job's file, after this many milliseconds: the page must not
    /// run it (a panic would stop the page too) but report the file.
    Stopped(Stopped, f64),
    /// The worker refused the job.
    Refused(String),
}

/// Runs a job in a worker of its own, ended after it: the memory the job took (the file and
/// what verifying it needs) goes with the worker, and so does a worker that a file stopped.
/// The answer is the worker's `done` message.
async fn in_worker(request: JsValue) -> Result<JsValue, NoAnswer> {
    let w = Worker::new(&worker::script_url()).map_err(|e| NoAnswer::NotStarted(js_text(&e)))?;
    let settle: Rc<RefCell<Option<Function>>> = Rc::default();
    let outcome: Rc<RefCell<Option<Result<JsValue, NoAnswer>>>> = Rc::default();
    // When the job was given to the worker: what happens to the worker after that happens
    // on the job's file.
    let posted: Rc<Cell<Option<f64>>> = Rc::default();
    let promise = Promise::new(&mut |resolve, _| {
        *settle.borrow_mut() = Some(resolve);
    });
    let finish = {
        let (settle, outcome) = (settle.clone(), outcome.clone());
        move |result: Result<JsValue, NoAnswer>| {
            if let Some(resolve) = settle.borrow_mut().take() {
                *outcome.borrow_mut() = Some(result);
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
    };
    let stopped = {
        let posted = posted.clone();
        move |how: Stopped| match posted.get() {
            Some(at) => NoAnswer::Stopped(how, now() - at),
            None => NoAnswer::NotStarted(format!("the worker stopped as it started: {how:?}")),
        }
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
        let (w, finish, stopped, posted) = (w.clone(), finish.clone(), stopped.clone(), posted);
        move |e: MessageEvent| {
            let data = e.data();
            // A worker of another build (one the browser cached, say) is not given the job,
            // and refuses it if it was: as good as none.
            let build = text(&data, "build");
            match text(&data, "kind").as_deref() {
                Some("ready" | "refused") if build.as_deref() != Some(worker::BUILD) => {
                    let theirs = build.unwrap_or_else(|| "unknown".into());
                    let why = format!("the worker is of another build ({theirs})");
                    finish(Err(NoAnswer::NotStarted(why)));
                }
                Some("ready") => match w.post_message(&request) {
                    Ok(()) => posted.set(Some(now())),
                    Err(e) => finish(Err(NoAnswer::NotStarted(js_text(&e)))),
                },
                Some("done") => finish(Ok(data)),
                Some("panicked") => {
                    let what = text(&data, "message").unwrap_or_default();
                    let place = text(&data, "place").unwrap_or_default();
                    gloo::console::warn!(format!(
                        "the verification worker panicked: {what}{place}"
                    ));
                    finish(Err(stopped(Stopped::Panicked(what))));
                }
                Some("failed") => {
                    let why = text(&data, "error").unwrap_or_default();
                    finish(Err(NoAnswer::NotStarted(why)));
                }
                _ => {
                    let why = text(&data, "error").unwrap_or_else(|| "an unknown answer".into());
                    finish(Err(NoAnswer::Refused(why)));
                }
            }
        }
    });
    // A script that cannot load, or an exception (a trap) in the worker with no word before
    // it. The event is handled here, not reported as the page's own error.
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        e.prevent_default();
        let why = e
            .dyn_ref::<web_sys::ErrorEvent>()
            .map(|e| e.message())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("{} could not be started", worker::SCRIPT));
        finish(Err(stopped(Stopped::Died(why))));
    });
    w.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    w.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The promise is only ever resolved, once an outcome is in.
    let _ = JsFuture::from(promise).await;
    w.terminate();
    w.set_onmessage(None);
    w.set_onerror(None);
    drop((on_message, on_error));
    outcome
        .borrow_mut()
        .take()
        .unwrap_or_else(|| Err(NoAnswer::NotStarted("the worker gave no answer".into())))
}

/// Verifies a bundle file with core (every check of `verify_bytes`), in a worker; on the page
/// when no worker can be started. A file that stops the worker fails its `bundle` check.
pub async fn check_bundle(
    file_name: String,
    file: Blob,
    trusted_key: Option<String>,
) -> Result<Loaded, String> {
    let size = file.size() as usize;
    let request = worker::bundle_request(&file, trusted_key.as_deref());
    let (verified, ran) = match in_worker(request).await {
        Ok(done) => (
            worker::read_verified(&done)
                .map_err(|e| format!("the worker's answer could not be read: {e}"))?,
            Ran::InWorker,
        ),
        Err(NoAnswer::Stopped(how, millis)) => {
            (job::stopped_on_bundle(&how, millis), Ran::InWorker)
        }
        Err(NoAnswer::Refused(why)) => return Err(why),
        Err(NoAnswer::NotStarted(why)) => {
            gloo::console::warn!(format!(
                "verifying on the page: no worker could be started ({why})"
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
/// be started; a file that stops the worker fails the check. Gives the check, how long it
/// took in milliseconds, and where it ran.
pub async fn check_data(
    manifest: &Manifest,
    file: Blob,
    step: Option<String>,
) -> Result<(Check, f64, Ran), String> {
    let request = worker::data_request(&file, manifest, step.as_deref())?;
    match in_worker(request).await {
        Ok(done) => {
            let c = worker::read_data_checked(&done)
                .map_err(|e| format!("the worker's answer could not be read: {e}"))?;
            Ok((c.check, c.millis, Ran::InWorker))
        }
        Err(NoAnswer::Stopped(how, millis)) => {
            Ok((job::stopped_on_data(&how), millis, Ran::InWorker))
        }
        Err(NoAnswer::Refused(why)) => Err(why),
        Err(NoAnswer::NotStarted(why)) => {
            gloo::console::warn!(format!(
                "checking on the page: no worker could be started ({why})"
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
