//! A run: its labels and status, the chain and seal checked in the browser with core, the
//! steps timeline, and ways to trace a row or verify the run's bundle; for an admin token and
//! an ended run, a way to redact the run's details (and, if asked, its column statistics).

use std::rc::Rc;

use pipeproof_core::api::{
    LogInclusion, MAX_REASON, RedactRun, Redacted, RunDetail, RunStatus, Scope,
};
use pipeproof_core::bundle::RunInfo;
use pipeproof_core::log::{self, TreeHead};
use pipeproof_core::sign::{KeyHandover, Seal, keys_from, pick_key, verify_seal};
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::ApiError;
use crate::app::Route;
use crate::components::run_facts::RunFacts;
use crate::components::signin::RequireSession;
use crate::components::status::{ErrorBox, Loading};
use crate::components::timeline::Timeline;
use crate::fetch::{FetchState, use_fetch};
use crate::offline::{check_bundle, use_offline};
use crate::session::use_session;
use crate::view::{NO_TRACE, StepView, count, counted, short, time, trace_key};

/// Props of [`RunPage`].
#[derive(Properties, PartialEq)]
pub struct RunProps {
    /// The run's id.
    pub id: AttrValue,
}

/// The run page.
#[component]
pub fn RunPage(props: &RunProps) -> Html {
    html! { <RequireSession><RunView id={props.id.clone()} /></RequireSession> }
}

/// One line of the chain and seal status.
struct Status {
    ok: bool,
    what: &'static str,
    detail: String,
}

/// Re-checks what the server sent: each record hashes to the hash stated, each links to the
/// one before, and the seal signs the head.
fn chain_status(d: &RunDetail) -> Vec<Status> {
    let mut out = Vec::new();
    let mut prev = None;
    let mut problems = Vec::new();
    for (i, s) in d.steps.iter().enumerate() {
        if s.record.hash() != s.hash {
            problems.push(format!(
                "step {i}: the record does not hash to its stated hash"
            ));
        }
        if s.record.prev != prev {
            problems.push(format!(
                "step {i}: the link to the previous record is broken"
            ));
        }
        if s.record.index != i as u64 {
            problems.push(format!(
                "step {i}: the record says index {}",
                s.record.index
            ));
        }
        prev = Some(s.record.hash());
    }
    out.push(Status {
        ok: problems.is_empty(),
        what: "Chain",
        detail: if problems.is_empty() {
            match prev {
                Some(h) => format!(
                    "{}, each linked to the one before; head {}",
                    counted(d.steps.len() as u64, "record", "records"),
                    short(&h.to_hex())
                ),
                None => "no records yet".into(),
            }
        } else {
            problems.join("; ")
        },
    });
    match &d.seal {
        None => out.push(Status {
            ok: d.run.status == RunStatus::Open,
            what: "Seal",
            detail: "not sealed yet: the run is open and nothing signs its records".into(),
        }),
        Some(seal) => {
            let head_ok = seal.covers(d.steps.len(), prev);
            // A seal v2 also signs the run's description; a v1 seal has no run hash.
            let run_ok = seal
                .run_hash
                .is_none_or(|h| h == RunInfo::of(&d.run).hash());
            let sig = verify_seal(seal, None);
            out.push(Status {
                ok: head_ok && run_ok && sig.is_ok(),
                what: "Seal",
                detail: match (&sig, head_ok, run_ok) {
                    (Ok(()), true, true) => format!(
                        "signed {} by key {}…; the signature is valid and covers the run's {}{}",
                        time(&seal.sealed_at),
                        &seal.public_key[..16.min(seal.public_key.len())],
                        counted(seal.steps, "record", "records"),
                        if seal.run_hash.is_some() {
                            " and the run's labels, parameters and status"
                        } else {
                            " (not the run's labels, parameters or status: an earlier seal v1)"
                        }
                    ),
                    (Ok(()), false, _) => "the signature is valid but covers a different head or step count than these records".into(),
                    (Ok(()), true, false) => "the signature is valid but signs another description of the run: its labels, parameters, status or times differ from what the server shows".into(),
                    (Err(e), _, _) => format!("the signature does not verify: {e}"),
                },
            });
        }
    }
    out
}

fn download(name: &str, bytes: &[u8]) -> Result<(), wasm_bindgen::JsValue> {
    let blob = zip_blob(bytes)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let doc = gloo::utils::document();
    let a: web_sys::HtmlAnchorElement = doc.create_element("a")?.dyn_into()?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url)?;
    Ok(())
}

/// A bundle's bytes as a file the browser holds (what a download saves, or a worker reads).
fn zip_blob(bytes: &[u8]) -> Result<web_sys::Blob, wasm_bindgen::JsValue> {
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/zip");
    web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts)
}

/// Whether a run's seal is in the server's log, proved here with core: the head is signed by
/// the seal's key (or a key it handed over to, in `handovers`), and the seal's own leaf
/// (computed here, not taken from the server) leads through the inclusion proof to the
/// head's root.
fn log_status(
    seal: &Seal,
    head: &TreeHead,
    found: &LogInclusion,
    handovers: &[KeyHandover],
) -> Status {
    let leaf = log::leaf_of(seal);
    let reach = keys_from(std::slice::from_ref(&seal.public_key), handovers);
    let signer = pick_key(&reach, Some(&head.public_key));
    let handed_over = !head.public_key.eq_ignore_ascii_case(&seal.public_key);
    let checked = log::verify_tree_head(head, signer.map(String::as_str))
        .and_then(|()| {
            if found.leaf == leaf {
                Ok(())
            } else {
                Err(pipeproof_core::Error::Verification(
                    "the log holds another seal for this run".into(),
                ))
            }
        })
        .and_then(|()| log::verify_inclusion(&leaf, &found.proof, head));
    Status {
        ok: checked.is_ok(),
        what: "Log",
        detail: match checked {
            Ok(()) => format!(
                "the seal is entry {} of the server's log of {}, proved in the browser against \
                 the head signed {} by {}",
                found.proof.index,
                counted(head.size, "seal", "seals"),
                time(&head.timestamp),
                if handed_over {
                    "the key the seal's key handed over to"
                } else {
                    "the seal's key"
                }
            ),
            Err(e) => e
                .to_string()
                .trim_start_matches("verification failed: ")
                .to_string(),
        },
    }
}

/// Props of [`LogStatus`].
#[derive(Properties, PartialEq)]
struct LogProps {
    seal: Seal,
}

/// The line of the status list that says whether the run's seal is in the server's log.
#[component]
fn LogStatus(props: &LogProps) -> Html {
    let client = use_session().client().expect("signed in");
    let proof = use_fetch(props.seal.clone(), move |seal: Seal| {
        let client = client.clone();
        async move {
            let head = client.log_head().await?;
            let found = client.log_inclusion(&seal.run_id, head.size).await?;
            let keys = client.keys().await?;
            Ok((head, found, keys.handovers()))
        }
    });
    let s = match &*proof {
        FetchState::Loading => {
            return html! { <li class="muted">{"Log: proving that the seal is in the server's log…"}</li> };
        }
        FetchState::Failed(e) => {
            let s = Status {
                ok: false,
                what: "Log",
                detail: format!(
                    "the seal's entry in the log could not be read: {}",
                    e.message
                ),
            };
            if !crate::components::status::retryable(e) {
                return status_item(s);
            }
            return html! {
                <li class="fail">
                    <strong>{"✘ "}{s.what}{": "}</strong>{s.detail}{" "}
                    if proof.retrying() {
                        <button type="button" class="secondary" aria-disabled="true">{"Retrying…"}</button>
                    } else {
                        <button type="button" class="secondary" onclick={proof.retry()}>{"Retry"}</button>
                    }
                </li>
            };
        }
        FetchState::Ready(r) => log_status(&props.seal, &r.0, &r.1, &r.2),
    };
    status_item(s)
}

fn status_item(s: Status) -> Html {
    html! {
        <li class={if s.ok { "pass" } else { "fail" }}>
            <strong>{ if s.ok { "✔ " } else { "✘ " } }{s.what}{": "}</strong>{s.detail}
        </li>
    }
}

/// A list of step numbers in words: `step 1`, `steps 0, 1 and 2`.
fn steps_words(steps: &[u64]) -> String {
    let n: Vec<String> = steps.iter().map(u64::to_string).collect();
    match n.as_slice() {
        [] => "no step".into(),
        [one] => format!("step {one}"),
        [rest @ .., last] => format!("steps {} and {last}", rest.join(", ")),
    }
}

/// What a redaction did, in words.
fn redacted_words(r: &Redacted) -> String {
    let mut out = match (r.steps.is_empty(), r.statistics.is_empty()) {
        (true, true) => format!("Nothing was removed on {}.", time(&r.at)),
        (true, false) => String::new(),
        (false, _) => format!(
            "Redacted {} on {}: their detail rows and kept data were removed from the server \
             ({}, {} bytes freed).",
            steps_words(&r.steps),
            time(&r.at),
            counted(r.blobs_removed, "file", "files"),
            count(r.bytes_freed)
        ),
    };
    if !r.statistics.is_empty() {
        let what = format!(
            "the column statistics of {} were removed from the server (their records still bind \
             their digest).",
            steps_words(&r.statistics)
        );
        if out.is_empty() {
            out = format!("Redacted on {}: {what}", time(&r.at));
        } else {
            out.push_str(&format!(" {}", capitalised(&what)));
        }
    }
    if !r.already.is_empty() {
        out.push_str(&format!(
            " {} had been redacted before, and {} its first redaction.",
            capitalised(&steps_words(&r.already)),
            if r.already.len() == 1 {
                "keeps"
            } else {
                "keep"
            }
        ));
    }
    if !r.nothing.is_empty() {
        out.push_str(&format!(
            " {} held nothing to remove (a first step stored without its data).",
            capitalised(&steps_words(&r.nothing))
        ));
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Props of [`RedactControl`].
#[derive(Properties, PartialEq)]
struct RedactProps {
    /// The run.
    id: AttrValue,
    /// How many steps it has.
    steps: usize,
    /// Called with the server's reply once the run is redacted.
    on_done: Callback<Redacted>,
}

/// "Redact…": asks for a reason and whether the column statistics go too, says what will be
/// removed and what stays, and redacts every step of the run once confirmed.
#[component]
fn RedactControl(props: &RedactProps) -> Html {
    let client = use_session().client().expect("signed in");
    let open = use_state(|| false);
    let busy = use_state(|| false);
    let error = use_state(|| None::<ApiError>);
    // The reason as typed, kept here so that no render of the form loses it.
    let reason = use_state(String::new);
    // Whether the column statistics are removed too.
    let statistics = use_state(|| false);
    let reason_ref = use_node_ref();
    {
        let reason_ref = reason_ref.clone();
        let was_open = use_mut_ref(|| false);
        use_effect_with(*open, move |open| {
            if *open {
                if let Some(t) = reason_ref.cast::<HtmlInputElement>() {
                    let _ = t.focus();
                }
            } else if *was_open.borrow() {
                // Closed (redacted or cancelled): the focus goes to the result, else back to
                // the button that opened the form, once the page has drawn them.
                gloo::timers::callback::Timeout::new(0, || {
                    let doc = gloo::utils::document();
                    if let Some(el) = doc
                        .get_element_by_id("redact-result")
                        .or_else(|| doc.get_element_by_id("redact-open"))
                        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                    {
                        let _ = el.focus();
                    }
                })
                .forget();
            }
            *was_open.borrow_mut() = *open;
        });
    }
    let on_open = {
        let (open, error) = (open.clone(), error.clone());
        Callback::from(move |_: MouseEvent| {
            error.set(None);
            open.set(true);
        })
    };
    let on_cancel = {
        let (open, error) = (open.clone(), error.clone());
        Callback::from(move |_: MouseEvent| {
            error.set(None);
            open.set(false);
        })
    };
    let on_input = {
        let reason = reason.clone();
        Callback::from(move |e: InputEvent| {
            reason.set(e.target_unchecked_into::<HtmlInputElement>().value());
        })
    };
    let on_statistics = {
        let statistics = statistics.clone();
        Callback::from(move |e: Event| {
            statistics.set(e.target_unchecked_into::<HtmlInputElement>().checked());
        })
    };
    let on_submit = {
        let statistics = *statistics;
        let (open, busy, error, reason, reason_ref, id, on_done) = (
            open.clone(),
            busy.clone(),
            error.clone(),
            reason.clone(),
            reason_ref.clone(),
            props.id.to_string(),
            props.on_done.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let reason = reason.trim().to_string();
            if reason.is_empty() {
                error.set(Some(ApiError::new(
                    0,
                    "give a reason: it is kept with each step and shown in the run's bundles",
                )));
                if let Some(t) = reason_ref.cast::<HtmlInputElement>() {
                    let _ = t.focus();
                }
                return;
            }
            // The server keeps at most MAX_REASON bytes of plain text on one line (the rule
            // of core's check_text, said here in the words of the form).
            let refused = if reason.chars().any(char::is_control) {
                Some("the reason holds a line break or another control character: write it on one line, as plain text".to_string())
            } else if reason.len() > MAX_REASON {
                Some(format!(
                    "the reason is {} bytes long (in UTF-8; an accented letter takes 2 bytes, many other characters 3 or 4); at most {} bytes are kept: shorten it",
                    count(reason.len() as u64),
                    count(MAX_REASON as u64)
                ))
            } else {
                None
            };
            if let Some(why) = refused {
                error.set(Some(ApiError::new(0, why)));
                if let Some(t) = reason_ref.cast::<HtmlInputElement>() {
                    let _ = t.focus();
                }
                return;
            }
            let (client, open, busy, error, id, on_done) = (
                client.clone(),
                open.clone(),
                busy.clone(),
                error.clone(),
                id.clone(),
                on_done.clone(),
            );
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                let body = RedactRun {
                    reason,
                    steps: None,
                    statistics,
                };
                match client.redact(&id, &body).await {
                    Ok(done) => {
                        open.set(false);
                        on_done.emit(done);
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        })
    };
    let error_box = (*error)
        .clone()
        .map(|e| html! { <ErrorBox error={e} doing="Could not redact the run" /> });
    if !*open {
        return html! { <>
            <button type="button" class="danger" id="redact-open" onclick={on_open}>{"Redact…"}</button>
            { for error_box }
        </> };
    }
    html! {
        <form class="redact" id="redact" aria-labelledby="redact-h" onsubmit={on_submit}>
            <h3 id="redact-h">{"Redact this run"}</h3>
            <p>{format!("Removes from the server, for all {}:", counted(props.steps as u64, "step", "steps"))}</p>
            <ul>
                if *statistics {
                    <li><strong>{"removed:"}</strong>{" the detail rows (added, removed and changed rows), any kept copy of the step's data, and its column statistics (nulls, distinct count, minimum, maximum and mean of each column). This cannot be undone."}</li>
                    <li><strong>{"kept:"}</strong>{" the records and their hashes (which still bind the statistics' digest), row hashes, counts and schema, the seal and its log entry. The run still verifies, and its bundle lists the redacted steps and statistics."}</li>
                } else {
                    <li><strong>{"removed:"}</strong>{" the detail rows (added, removed and changed rows) and any kept copy of the step's data. This cannot be undone."}</li>
                    <li><strong>{"kept:"}</strong>{" the records and their hashes, row hashes, counts, schema and statistics, the seal and its log entry. The run still verifies, and its bundle lists the redacted steps."}</li>
                }
            </ul>
            <p class="check">
                <input type="checkbox" id="redact-statistics" checked={*statistics} onchange={on_statistics} disabled={*busy} />
                {" "}<label for="redact-statistics">{"Also remove column statistics"}</label>
            </p>
            <p class="muted" id="redact-statistics-why">{"Each column's minimum and maximum are values of the data: for an erasure request, remove the statistics too. Their digest stays in the records, so the run still verifies."}</p>
            <p class="muted">{ if *statistics {
                "Steps redacted before keep their first redaction; their statistics, if still there, are removed now. Bundles exported before keep their details and statistics."
            } else {
                "Steps redacted before keep their first redaction. Bundles exported before keep their details."
            } }</p>
            <label for="redact-reason">{"Reason (required: kept with each step and shown in the run's bundles)"}</label>
            <input id="redact-reason" type="text" required=true ref={reason_ref} value={(*reason).clone()} oninput={on_input} placeholder="erasure request 2026-118" aria-describedby="redact-reason-limit" />
            <p class="muted" id="redact-reason-limit">{format!("One line of plain text, at most {} bytes.", count(MAX_REASON as u64))}</p>
            <p class="actions">
                <button type="submit" class="danger" disabled={*busy}>{ match (*busy, *statistics) {
                    (true, _) => "Redacting…",
                    (false, false) => "Remove the details and kept data",
                    (false, true) => "Remove the details, kept data and statistics",
                } }</button>
                <button type="button" class="secondary" onclick={on_cancel} disabled={*busy}>{"Cancel"}</button>
            </p>
            { for error_box }
        </form>
    }
}

/// Where a download or a verification started from the run page is.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    /// Under way (shown with a spinner).
    Working(String),
    /// Finished.
    Done(String),
    /// Failed.
    Failed(String),
}

#[component]
fn RunView(props: &RunProps) -> Html {
    crate::app::use_title(format!("Run {}", props.id));
    let session = use_session();
    let client = session.client().expect("signed in");
    let offline = use_offline();
    let navigator = use_navigator();
    let action = use_state(|| None::<Action>);
    // Bumped to load the run again (after a redaction).
    let generation = use_state(|| 0u64);
    let redacted = use_state(|| None::<Redacted>);
    let detail = {
        let client = client.clone();
        use_fetch(
            (props.id.clone(), *generation),
            move |(id, _): (AttrValue, u64)| {
                let client = client.clone();
                async move { client.run(&id).await }
            },
        )
    };
    {
        // After a redaction the run is loaded again; once it is shown, the focus goes to what
        // the redaction did (the form that had it is gone).
        let ready = matches!(&*detail, FetchState::Ready(_));
        use_effect_with(
            (ready, redacted.is_some(), *generation),
            |&(ready, done, _)| {
                if ready
                    && done
                    && let Some(el) = gloo::utils::document()
                        .get_element_by_id("redact-result")
                        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    let _ = el.focus();
                }
            },
        );
    }
    let d = match &*detail {
        FetchState::Loading => {
            return html! { <main id="main"><Loading what="Loading the run…" /></main> };
        }
        FetchState::Failed(e) => {
            return html! { <main id="main"><h1>{"Run "}{props.id.clone()}</h1><ErrorBox error={e.clone()} doing="Could not load the run" retry={detail.retry()} retrying={detail.retrying()} /></main> };
        }
        FetchState::Ready(d) => Rc::clone(d),
    };
    let run = &d.run;
    let admin = session
        .who()
        .is_some_and(|w| w.scopes.contains(&Scope::Admin));
    let on_redacted = {
        let (generation, redacted) = (generation.clone(), redacted.clone());
        Callback::from(move |done: Redacted| {
            redacted.set(Some(done));
            generation.set(*generation + 1);
        })
    };
    let steps = Rc::new(d.steps.iter().map(StepView::from_api).collect::<Vec<_>>());

    let on_verify = {
        let (client, id, action, offline, navigator) = (
            client.clone(),
            props.id.to_string(),
            action.clone(),
            offline.clone(),
            navigator.clone(),
        );
        let sealed_by = d.seal.as_ref().map(|s| s.public_key.clone());
        Callback::from(move |_: MouseEvent| {
            let sealed_by = sealed_by.clone();
            let (client, id, action, offline, navigator) = (
                client.clone(),
                id.clone(),
                action.clone(),
                offline.clone(),
                navigator.clone(),
            );
            action.set(Some(Action::Working(
                "Downloading the bundle and the server's key…".into(),
            )));
            wasm_bindgen_futures::spawn_local(async move {
                // The listed key that sealed the run (an earlier one, if the server's key was
                // rotated since), else the current one.
                let key = client.keys().await.ok().and_then(|k| {
                    let listed: Vec<String> = k.keys.into_iter().map(|k| k.public_key).collect();
                    pick_key(&listed, sealed_by.as_deref()).cloned()
                });
                match client.bundle(&id).await {
                    Err(e) => action.set(Some(Action::Failed(format!(
                        "could not download the bundle: {e}"
                    )))),
                    Ok(bytes) => {
                        action.set(Some(Action::Working(format!(
                            "Verifying {} bytes in the browser…",
                            bytes.len()
                        ))));
                        let checked = match zip_blob(&bytes) {
                            Ok(file) => {
                                drop(bytes);
                                check_bundle(format!("{id}.bundle.zip"), file, key).await
                            }
                            Err(_) => Err("the browser refused to hold the bundle".into()),
                        };
                        match checked {
                            Ok(loaded) => {
                                offline.0.set(Some(Rc::new(loaded)));
                                action.set(None);
                                if let Some(n) = navigator {
                                    n.push(&Route::Verify);
                                }
                            }
                            Err(e) => action.set(Some(Action::Failed(format!(
                                "could not verify the bundle: {e}"
                            )))),
                        }
                    }
                }
            });
        })
    };
    let on_download = {
        let (client, id, action) = (client.clone(), props.id.to_string(), action.clone());
        Callback::from(move |_: MouseEvent| {
            let (client, id, action) = (client.clone(), id.clone(), action.clone());
            action.set(Some(Action::Working("Downloading the bundle…".into())));
            wasm_bindgen_futures::spawn_local(async move {
                match client.bundle(&id).await {
                    Err(e) => action.set(Some(Action::Failed(format!(
                        "could not download the bundle: {e}"
                    )))),
                    Ok(bytes) => match download(&format!("{id}.bundle.zip"), &bytes) {
                        Ok(()) => action.set(Some(Action::Done(format!(
                            "Saved {id}.bundle.zip ({} bytes).",
                            bytes.len()
                        )))),
                        Err(_) => action.set(Some(Action::Failed(
                            "the browser refused to save the file".into(),
                        ))),
                    },
                }
            });
        })
    };

    html! {
        <main id="main">
            <p class="crumbs"><Link<Route> to={Route::Runs}>{"Runs"}</Link<Route>>{" / "}{run.pipeline.clone()}</p>
            <h1>{"Run "}<code>{run.id.clone()}</code></h1>
            <RunFacts run={RunInfo::of(run)} />
            <section aria-labelledby="integrity-h">
                <h2 id="integrity-h">{"Chain and seal"}</h2>
                <ul class="status">
                { for chain_status(&d).into_iter().map(status_item) }
                { for d.seal.clone().map(|seal| html! { <LogStatus {seal} /> }) }
                </ul>
                <p class="actions">
                    <button type="button" onclick={on_verify}>{"Verify this run's bundle in the browser"}</button>
                    <button type="button" onclick={on_download}>{"Download the bundle"}</button>
                    if trace_key(&d.steps).is_some() {
                        <Link<Route> classes="button" to={Route::Trace { id: run.id.clone() }}>{"Trace a row"}</Link<Route>>
                    }
                </p>
                // Only an ended run can be redacted: an open one keeps its last step's data to
                // diff the next step against.
                if admin && run.status != RunStatus::Open {
                    <div class="redact-area">
                        <RedactControl id={props.id.clone()} steps={d.steps.len()} on_done={on_redacted} />
                    </div>
                }
                if let Some(r) = &*redacted {
                    <p role="status" class="done" id="redact-result" tabindex="-1">{redacted_words(r)}</p>
                }
                if trace_key(&d.steps).is_none() {
                    <p class="muted" id="no-trace">{NO_TRACE}</p>
                }
                { match &*action {
                    None => html! {},
                    Some(Action::Working(m)) => html! { <p role="status" class="loading-now" id="action-status"><span class="spinner" aria-hidden="true"></span>{m.clone()}</p> },
                    Some(Action::Done(m)) => html! { <p role="status" class="done" id="action-status">{m.clone()}</p> },
                    Some(Action::Failed(m)) => html! { <div class="error" role="alert">{m.clone()}</div> },
                } }
            </section>
            <Timeline {steps} run={Some(AttrValue::from(run.id.clone()))} />
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeproof_core::Hash;
    use pipeproof_core::sign::KeyPair;

    fn sealed(key: &KeyPair, id: &str) -> Seal {
        let run = RunInfo {
            id: id.into(),
            pipeline: "daily".into(),
            labels: Default::default(),
            code_version: None,
            params: serde_json::json!({}),
            status: "sealed".into(),
            error: None,
            created_at: "2026-11-28T00:00:00Z".into(),
            sealed_at: Some("2026-11-28T00:01:00Z".into()),
        };
        key.seal(&run, 1, Hash([1; 32])).unwrap()
    }

    fn redacted(steps: &[u64], statistics: &[u64], nothing: &[u64]) -> Redacted {
        Redacted {
            run_id: "r".into(),
            at: "2026-11-28T00:03:00.5Z".into(),
            steps: steps.to_vec(),
            statistics: statistics.to_vec(),
            already: Vec::new(),
            nothing: nothing.to_vec(),
            blobs_removed: 2,
            bytes_freed: 1234,
            blobs_pending: 0,
        }
    }

    #[test]
    fn a_redaction_says_what_it_removed() {
        assert_eq!(
            redacted_words(&redacted(&[1, 2], &[], &[0])),
            "Redacted steps 1 and 2 on 2026-11-28 00:03:00Z: their detail rows and kept data \
             were removed from the server (2 files, 1,234 bytes freed). Step 0 held nothing to \
             remove (a first step stored without its data)."
        );
        assert_eq!(
            redacted_words(&redacted(&[1, 2], &[0, 1, 2], &[])),
            "Redacted steps 1 and 2 on 2026-11-28 00:03:00Z: their detail rows and kept data \
             were removed from the server (2 files, 1,234 bytes freed). The column statistics of \
             steps 0, 1 and 2 were removed from the server (their records still bind their \
             digest)."
        );
        assert_eq!(
            redacted_words(&redacted(&[], &[0], &[])),
            "Redacted on 2026-11-28 00:03:00Z: the column statistics of step 0 were removed from \
             the server (their records still bind their digest)."
        );
        assert_eq!(
            redacted_words(&redacted(&[], &[], &[])),
            "Nothing was removed on 2026-11-28 00:03:00Z."
        );
    }

    #[test]
    fn the_log_line_proves_the_seal_and_nothing_else() {
        let key = KeyPair::from_bytes(&[9; 32]);
        let seals: Vec<Seal> = (0..3).map(|i| sealed(&key, &format!("r{i}"))).collect();
        let leaves: Vec<Hash> = seals.iter().map(log::leaf_of).collect();
        let head = key.sign_tree_head(&leaves, "2026-11-28T00:02:00Z");
        let found = LogInclusion {
            run_id: "r1".into(),
            leaf: leaves[1],
            proof: log::inclusion_proof(&leaves, 1),
        };
        let s = log_status(&seals[1], &head, &found, &[]);
        assert!(
            s.ok && s.detail.contains("entry 1 of the server's log of 3 seals")
                && s.detail.ends_with("by the seal's key"),
            "{}",
            s.detail
        );
        // Another seal of the run than the one logged; a head signed by another key.
        assert!(!log_status(&seals[2], &head, &found, &[]).ok);
        let other = KeyPair::from_bytes(&[8; 32]);
        let stranger = other.sign_tree_head(&leaves, "2026-11-28T00:02:00Z");
        let s = log_status(&seals[1], &stranger, &found, &[]);
        assert!(
            !s.ok && s.detail.contains("not by the trusted key"),
            "{}",
            s.detail
        );
        // Signed by the key the seal's key handed over to (a rotation): proved. A hand-over
        // the other way, or one not signed by both, proves nothing.
        let handover = key.hand_over(&other, "2026-11-28T00:01:30Z");
        let s = log_status(
            &seals[1],
            &stranger,
            &found,
            std::slice::from_ref(&handover),
        );
        assert!(
            s.ok && s
                .detail
                .ends_with("by the key the seal's key handed over to"),
            "{}",
            s.detail
        );
        let backwards = other.hand_over(&key, "2026-11-28T00:01:30Z");
        assert!(!log_status(&seals[1], &stranger, &found, &[backwards]).ok);
        let mut forged = handover;
        forged.at = "2026-11-28T00:01:31Z".into();
        assert!(!log_status(&seals[1], &stranger, &found, &[forged]).ok);
    }
}
