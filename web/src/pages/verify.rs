//! Verify a bundle offline: pick or drop a bundle file, and core (compiled to WebAssembly)
//! re-checks every root, diff summary, the chain and the signature in the browser; then the
//! run and its diffs are shown from the bundle alone. A data file dropped next to it is
//! checked against the steps. Needs no server: a static host serving `dist/` is enough.

use std::cell::RefCell;
use std::rc::Rc;

use gloo::file::File;
use pipeproof_core::bundle::Check;
use pipeproof_core::sign::pick_key;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::components::checks::Checks;
use crate::components::details::DetailSource;
use crate::components::run_facts::RunFacts;
use crate::components::timeline::Timeline;
use crate::offline::{Ran, check_bundle, check_data, use_offline};
use crate::pages::step::StepBody;
use crate::session::use_session;
use crate::view::count;

/// What the page is doing.
#[derive(Debug, Clone, PartialEq)]
enum Busy {
    Idle,
    Working(String),
    Failed(String),
}

fn first_file(list: Option<web_sys::FileList>) -> Option<File> {
    list.and_then(|l| l.get(0)).map(File::from)
}

/// Starts a new job of a kind: its number, which a later one changes.
fn next_job(counter: &RefCell<u64>) -> u64 {
    let mut n = counter.borrow_mut();
    *n += 1;
    *n
}

/// The verify page.
#[component]
pub fn VerifyPage() -> Html {
    crate::app::use_title("Verify a bundle".into());
    let offline = use_offline();
    let session = use_session();
    let busy = use_state(|| Busy::Idle);
    let data_busy = use_state(|| Busy::Idle);
    // The data file's name, what it was compared with, the check, its time and where it ran.
    let data_check = use_state(|| None::<(String, String, Check, f64, Ran)>);
    let key_ref = use_node_ref();
    let step_ref = use_node_ref();
    let dragging = use_state(|| false);
    let last_bundle = use_mut_ref(|| None::<(String, web_sys::Blob)>);
    // The page stays live while a worker checks a file, so another file can be picked
    // meanwhile: only the latest job's result is shown (a new bundle also ends the data
    // check of the one before).
    let bundle_job = use_mut_ref(|| 0u64);
    let data_job = use_mut_ref(|| 0u64);

    let trusted_key = move |r: &NodeRef| {
        r.cast::<HtmlTextAreaElement>()
            .map(|t| t.value().trim().to_string())
            .filter(|v| !v.is_empty())
    };

    // Verifies a bundle file, with the key in the text area.
    let run_check = {
        let (offline, busy, key_ref, data_check, bundle_job, data_job) = (
            offline.clone(),
            busy.clone(),
            key_ref.clone(),
            data_check.clone(),
            bundle_job.clone(),
            data_job.clone(),
        );
        Rc::new(move |name: String, file: web_sys::Blob| {
            let (offline, busy, data_check, bundle_job, data_job) = (
                offline.clone(),
                busy.clone(),
                data_check.clone(),
                bundle_job.clone(),
                data_job.clone(),
            );
            let key = trusted_key(&key_ref);
            let job = next_job(&bundle_job);
            busy.set(Busy::Working(format!(
                "Verifying {name} ({} bytes) in the browser…",
                count(file.size() as u64)
            )));
            wasm_bindgen_futures::spawn_local(async move {
                let checked = check_bundle(name.clone(), file, key).await;
                if *bundle_job.borrow() != job {
                    return;
                }
                match checked {
                    Ok(loaded) => {
                        next_job(&data_job);
                        data_check.set(None);
                        offline.0.set(Some(Rc::new(loaded)));
                        busy.set(Busy::Idle);
                    }
                    Err(e) => busy.set(Busy::Failed(format!(
                        "the browser could not read {name}: {e}"
                    ))),
                }
            });
        })
    };

    let take_bundle = {
        let (run_check, last_bundle) = (run_check.clone(), last_bundle.clone());
        Rc::new(move |file: File| {
            let name = file.name();
            let blob = AsRef::<web_sys::Blob>::as_ref(&file).clone();
            *last_bundle.borrow_mut() = Some((name.clone(), blob.clone()));
            run_check(name, blob);
        })
    };

    let on_pick = {
        let take = take_bundle.clone();
        Callback::from(move |e: Event| {
            let input = e.target_unchecked_into::<HtmlInputElement>();
            if let Some(f) = first_file(input.files()) {
                take(f);
            }
            // Choosing the same file again is a new check (with the key or step now given).
            input.set_value("");
        })
    };
    let on_drop = {
        let (take, dragging) = (take_bundle.clone(), dragging.clone());
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(false);
            if let Some(f) = first_file(e.data_transfer().and_then(|d| d.files())) {
                take(f);
            }
        })
    };
    let on_drag_over = {
        let dragging = dragging.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            if !*dragging {
                dragging.set(true);
            }
        })
    };
    let on_drag_leave = {
        let dragging = dragging.clone();
        Callback::from(move |_: DragEvent| dragging.set(false))
    };
    let on_reverify = {
        let (run_check, last_bundle, busy) = (run_check.clone(), last_bundle.clone(), busy.clone());
        Callback::from(move |_: MouseEvent| match last_bundle.borrow().clone() {
            Some((name, file)) => run_check(name, file),
            None => busy.set(Busy::Failed(
                "pick the bundle file again to verify it with this key".into(),
            )),
        })
    };
    let on_server_key = {
        let (session, key_ref, busy) = (session.clone(), key_ref.clone(), busy.clone());
        // With a bundle loaded, the server's key that sealed it (an earlier one, if the key
        // was rotated since), else the current one.
        let sealed_by = (*offline.0).as_ref().and_then(|l| {
            let seal = l.manifest.as_ref()?.seal.as_ref()?;
            Some(seal.public_key.clone())
        });
        Callback::from(move |_: MouseEvent| {
            let (key_ref, busy, sealed_by) = (key_ref.clone(), busy.clone(), sealed_by.clone());
            if let Some(client) = session.client() {
                wasm_bindgen_futures::spawn_local(async move {
                    match client.keys().await {
                        Ok(k) => {
                            let listed: Vec<String> =
                                k.keys.into_iter().map(|k| k.public_key).collect();
                            match pick_key(&listed, sealed_by.as_deref()) {
                                Some(k) => {
                                    if let Some(t) = key_ref.cast::<HtmlTextAreaElement>() {
                                        t.set_value(k);
                                    }
                                }
                                None => {
                                    busy.set(Busy::Failed("the server publishes no key".into()))
                                }
                            }
                        }
                        Err(e) => busy.set(Busy::Failed(format!(
                            "could not fetch the server's key: {e}"
                        ))),
                    }
                });
            }
        })
    };

    let take_data = {
        let (offline, data_busy, data_check, step_ref, data_job) = (
            offline.clone(),
            data_busy.clone(),
            data_check.clone(),
            step_ref.clone(),
            data_job.clone(),
        );
        Rc::new(move |file: File| {
            let Some(loaded) = (*offline.0).clone() else {
                data_busy.set(Busy::Failed("load a bundle first".into()));
                return;
            };
            let Some(manifest) = loaded.manifest.clone() else {
                data_busy.set(Busy::Failed(
                    "the bundle could not be read, so there is nothing to compare with".into(),
                ));
                return;
            };
            let step = step_ref
                .cast::<HtmlSelectElement>()
                .map(|s| s.value())
                .filter(|v| !v.is_empty() && v != "*");
            // The step compared with, named as the check takes it: the first of that name.
            let against = match &step {
                Some(name) => match manifest.records.iter().find(|r| &r.step == name) {
                    Some(r) => format!("step {} `{}`", r.index, r.step),
                    None => format!("step `{name}`"),
                },
                None => "every step".to_string(),
            };
            let (data_busy, data_check, data_job) =
                (data_busy.clone(), data_check.clone(), data_job.clone());
            let job = next_job(&data_job);
            let name = file.name();
            data_busy.set(Busy::Working(format!(
                "Reading and fingerprinting {name} ({} bytes)…",
                count(file.size())
            )));
            let blob = AsRef::<web_sys::Blob>::as_ref(&file).clone();
            wasm_bindgen_futures::spawn_local(async move {
                let checked = check_data(&manifest, blob, step).await;
                if *data_job.borrow() != job {
                    return;
                }
                match checked {
                    Ok((check, millis, ran)) => {
                        data_check.set(Some((name, against, check, millis, ran)));
                        data_busy.set(Busy::Idle);
                    }
                    Err(e) => data_busy.set(Busy::Failed(format!(
                        "the browser could not read {name}: {e}"
                    ))),
                }
            });
        })
    };
    let on_pick_data = {
        let take = take_data.clone();
        Callback::from(move |e: Event| {
            let input = e.target_unchecked_into::<HtmlInputElement>();
            if let Some(f) = first_file(input.files()) {
                take(f);
            }
            // Choosing the same file again is a new check (with the key or step now given).
            input.set_value("");
        })
    };
    // Another step to compare with: the verdict on the step before no longer holds.
    let on_step_change = {
        let (data_check, data_busy, data_job) =
            (data_check.clone(), data_busy.clone(), data_job.clone());
        Callback::from(move |_: Event| {
            next_job(&data_job);
            data_check.set(None);
            data_busy.set(Busy::Idle);
        })
    };
    let on_drop_data = {
        let take = take_data.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            if let Some(f) = first_file(e.data_transfer().and_then(|d| d.files())) {
                take(f);
            }
        })
    };

    let loaded = (*offline.0).clone();
    // The key text area is left to the user (a `value` binding would reset what they type on
    // each render); on arrival it shows the key the loaded bundle was checked with.
    {
        let (key_ref, key) = (
            key_ref.clone(),
            loaded.as_ref().and_then(|l| l.trusted_key.clone()),
        );
        use_effect_with((), move |_| {
            if let (Some(t), Some(k)) = (key_ref.cast::<HtmlTextAreaElement>(), key) {
                t.set_value(&k);
            }
        });
    }
    let notice = |b: &Busy| match b {
        Busy::Idle => html! {},
        Busy::Working(m) => {
            html! { <p class="loading-now" role="status"><span class="spinner" aria-hidden="true"></span>{m.clone()}</p> }
        }
        Busy::Failed(m) => html! { <div class="error" role="alert">{m.clone()}</div> },
    };

    html! {
        <main id="main">
            <h1>{"Verify a bundle"}</h1>
            <p>{"Everything happens in this browser tab: the bundle is checked with the same Rust code the server uses, compiled to WebAssembly. Nothing is uploaded."}</p>
            <div class={classes!("drop", dragging.then_some("over"))} ondrop={on_drop} ondragover={on_drag_over} ondragleave={on_drag_leave}>
                <label for="bundle-file">{"Bundle file (drop it here or choose it)"}</label>
                <input id="bundle-file" type="file" accept=".zip,.bundle,application/zip" onchange={on_pick} />
            </div>
            <div class="keybox">
                <label for="trusted-key">{"Public key to trust (Ed25519, hex). Leave empty to only check that the signature matches the key inside the bundle."}</label>
                <textarea id="trusted-key" rows="2" ref={key_ref.clone()} spellcheck="false" />
                <p class="actions">
                    if session.who().is_some() {
                        <button type="button" onclick={on_server_key}>{"Use this server's key"}</button>
                    }
                    if loaded.is_some() {
                        <button type="button" onclick={on_reverify}>{"Verify again with this key"}</button>
                    }
                </p>
            </div>
            { notice(&busy) }
            if let Some(l) = &loaded {
                <p class="muted" id="verify-facts" data-ran={l.ran.as_str()}>{format!("{}: {} bytes, verified in {:.0} ms {}{}", l.file_name, count(l.size as u64), l.millis,
                    ran_words(l.ran),
                    match &l.trusted_key { Some(k) => format!(", trusting key {}…", &k[..16.min(k.len())]), None => ", no trusted key given".into() })}</p>
                <Checks report={l.report.clone()} />
                if let Some(m) = &l.manifest {
                    if !l.report.passed() {
                        <p class="error" id="run-untrusted" role="note">{"Verification FAILED: do not trust what follows. The run below is as the bundle says, not as its checks prove."}</p>
                    }
                    <section aria-labelledby="run-h" class={classes!((!l.report.passed()).then_some("untrusted"))}>
                        <h2 id="run-h">{format!("Run {} · {}", m.run.id, m.run.pipeline)}</h2>
                        <RunFacts run={m.run.clone()} />
                        <Timeline steps={l.steps.clone()} run={None::<AttrValue>} />
                    </section>
                    <section aria-labelledby="data-h" class="drop" ondrop={on_drop_data} ondragover={Callback::from(|e: DragEvent| e.prevent_default())}>
                        <h2 id="data-h">{"Is this file a step's output?"}</h2>
                        <label for="data-step">{"Compare with "}</label>
                        <select id="data-step" ref={step_ref} onchange={on_step_change}>
                            <option value="*" selected=true>{"any step"}</option>
                            { for m.records.iter().map(|r| html!{ <option value={r.step.clone()}>{format!("{} {}", r.index, r.step)}</option> }) }
                        </select>
                        <label for="data-file">{" Data file (Parquet, CSV or Arrow; drop it here or choose it) "}</label>
                        <input id="data-file" type="file" accept=".parquet,.csv,.arrow,.arrows,.ipc,.feather" onchange={on_pick_data} />
                        { notice(&data_busy) }
                        if let Some((name, against, c, ms, ran)) = &*data_check {
                            <p id="data-result" class={if c.passed { "verdict ok" } else { "verdict bad" }} role="status" data-ran={ran.as_str()}>
                                { if c.passed { "✔ " } else { "✘ " } }{format!("{name}, compared with {against}: {} ({ms:.0} ms)", c.detail)}
                            </p>
                        }
                    </section>
                }
            }
        </main>
    }
}

/// Where a bundle was verified, in the page's words.
fn ran_words(ran: Ran) -> &'static str {
    match ran {
        Ran::InWorker => "in a background thread",
        Ran::OnPage => "on the page's thread",
    }
}

/// Props of [`BundleStepPage`].
#[derive(Properties, PartialEq)]
pub struct BundleStepProps {
    /// The step's index.
    pub index: u64,
}

/// A step of the loaded bundle, shown with the same components as the online step page.
#[component]
pub fn BundleStepPage(props: &BundleStepProps) -> Html {
    let offline = use_offline();
    crate::app::use_title(match &*offline.0 {
        Some(l) => match l.steps.get(props.index as usize) {
            Some(s) => format!("Step {} {} of bundle {}", props.index, s.name, l.file_name),
            None => format!("Step {} of bundle {}", props.index, l.file_name),
        },
        None => format!("Step {} · no bundle loaded", props.index),
    });
    let Some(l) = (*offline.0).clone() else {
        return html! {
            <main id="main">
                <h1>{"No bundle loaded"}</h1>
                <p>{"Bundles live only in this tab's memory. "}<Link<Route> to={Route::Verify}>{"Choose a bundle file"}</Link<Route>>{" first."}</p>
            </main>
        };
    };
    let i = props.index as usize;
    let (Some(m), Some(s)) = (l.manifest.as_ref(), l.steps.get(i)) else {
        return html! { <main id="main"><div class="error" role="alert">{format!("The bundle has no step {i}.")}</div></main> };
    };
    let n = m.records.len();
    html! {
        <main id="main">
            <p class="crumbs"><Link<Route> to={Route::Verify}>{format!("Bundle {}", l.file_name)}</Link<Route>>
                { if l.report.passed() { " (verified)" } else { " (verification FAILED: do not trust what follows)" } }</p>
            <p class="stepnav">
                if i > 0 { <Link<Route> to={Route::VerifyStep { index: props.index - 1 }}>{"← Previous step"}</Link<Route>> }
                if i + 1 < n { <Link<Route> to={Route::VerifyStep { index: props.index + 1 }}>{"Next step →"}</Link<Route>> }
            </p>
            <StepBody index={s.index} name={s.name.clone()} rows={s.rows} created_at={s.created_at.clone()} hash={s.hash.clone()}
                key_columns={s.key.clone()} schema={s.schema.clone()} stats={s.stats.clone()} diff={s.diff.clone()} details={l.details.get(i).cloned().flatten().map(DetailSource::Bundle)}
                redacted={s.redacted.clone()} statistics_redacted={s.statistics_redacted.clone()}
                before_statistics_redacted={i.checked_sub(1).and_then(|p| l.steps.get(p)).is_some_and(|p| p.statistics_redacted.is_some())}
                from_bundle=true />
        </main>
    }
}
