//! The bundle loaded on the verify page, kept for the whole app so that its step pages can be
//! opened and left without loading the file again. Nothing here talks to a server.

use std::rc::Rc;

use pipeproof_core::bundle::{
    Bundle, Check, DataClaim, Details, VerifyReport, verify, verify_read,
};
use yew::prelude::*;

use crate::view::StepView;

/// A verified bundle file.
#[derive(Debug)]
pub struct Loaded {
    /// The file's name.
    pub file_name: String,
    /// Its size in bytes.
    pub size: usize,
    /// The verification report.
    pub report: VerifyReport,
    /// The bundle, when it could be read.
    pub bundle: Option<Bundle>,
    /// The public key it was checked against.
    pub trusted_key: Option<String>,
    /// How long reading and verifying took, in milliseconds.
    pub millis: f64,
    /// The steps, as the timeline shows them.
    pub steps: Rc<Vec<StepView>>,
    /// Each step's diff details, shared with the details table.
    pub details: Vec<Option<Rc<Details>>>,
}

/// Milliseconds since the page loaded.
pub fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// A file's bytes: `Blob.arrayBuffer()`, then one copy into the module's memory.
pub async fn read_file(file: &gloo::file::File) -> Result<Vec<u8>, String> {
    let blob: &web_sys::Blob = file.as_ref();
    let buffer = wasm_bindgen_futures::JsFuture::from(blob.array_buffer())
        .await
        .map_err(|e| {
            e.as_string()
                .or_else(|| js_sys::Error::from(e).message().as_string())
                .unwrap_or_else(|| "the read failed".into())
        })?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Verifies a bundle file with core: every check of `verify_bytes`, then reads it for display.
pub fn check_bundle(file_name: String, bytes: &[u8], trusted_key: Option<String>) -> Loaded {
    let start = now();
    let (report, bundle) = verify_read(bytes, trusted_key.as_deref(), None);
    let millis = now() - start;
    let steps = Rc::new(
        bundle
            .as_ref()
            .map(StepView::from_bundle)
            .unwrap_or_default(),
    );
    let details = bundle
        .as_ref()
        .map(|b| {
            b.steps
                .iter()
                .map(|s| s.details.clone().map(Rc::new))
                .collect()
        })
        .unwrap_or_default();
    Loaded {
        file_name,
        size: bytes.len(),
        report,
        bundle,
        trusted_key,
        millis,
        steps,
        details,
    }
}

/// Whether a data file (Parquet, CSV or Arrow, sniffed) is exactly the output of a step of
/// the bundle (`step`: a named one, or any). Core's `verify` makes the check; it is given the
/// manifest alone, since the data check needs only the records, and its own result is the
/// `data` check.
pub fn check_data(bundle: &Bundle, bytes: Vec<u8>, step: Option<&str>) -> Check {
    let table = match pipeproof_core::decode::decode_sniffed(bytes::Bytes::from(bytes)) {
        Ok((_, t)) => t,
        Err(e) => {
            return Check {
                name: "data".into(),
                step: None,
                passed: false,
                detail: format!("the file cannot be read as Parquet, CSV or Arrow IPC: {e}"),
            };
        }
    };
    let records_only = Bundle {
        manifest: bundle.manifest.clone(),
        steps: Vec::new(),
    };
    let report = verify(&records_only, None, Some(DataClaim { step, data: &table }));
    report
        .checks
        .into_iter()
        .rfind(|c| c.name == "data")
        .unwrap_or(Check {
            name: "data".into(),
            step: None,
            passed: false,
            detail: "the data was not checked".into(),
        })
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
