//! Row trace: one key through every step of a run, with its state, values and changed cells.
//! A run with no keyed step has no rows to follow: its trace page says why, as the run page
//! does, and offers no form. Steps whose details were redacted are marked: the row's state
//! there is known from its hashes, its values and changes are not any more.

use std::collections::BTreeSet;
use std::rc::Rc;

use pipeproof_core::api::{Redaction, TraceState};
use serde::{Deserialize, Serialize};
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::components::signin::RequireSession;
use crate::components::status::{ErrorBox, Loading};
use crate::fetch::{FetchState, use_fetch};
use crate::session::use_session;
use crate::view::{NO_TRACE, short, time, trace_key, value};

/// Props of [`TracePage`].
#[derive(Properties, PartialEq)]
pub struct TraceProps {
    /// The run.
    pub id: AttrValue,
}

/// The trace page.
#[component]
pub fn TracePage(props: &TraceProps) -> Html {
    html! { <RequireSession><TraceView id={props.id.clone()} /></RequireSession> }
}

fn state_word(s: TraceState) -> (&'static str, &'static str) {
    match s {
        TraceState::Added => ("added", "added"),
        TraceState::Unchanged => ("unchanged", ""),
        TraceState::Changed => ("changed", "changed"),
        TraceState::Removed => ("removed", "removed"),
        TraceState::Absent => ("absent", "muted"),
        TraceState::Unknown => ("unknown (details not kept)", "muted"),
    }
}

/// The traced key, in the address (`#/runs/ID/trace?key=4711`), so that a reload, Back from a
/// step and a shared link show the same trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct TraceQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

/// The run's steps first: the form only for a run whose rows have a key to be traced by.
#[component]
fn TraceView(props: &TraceProps) -> Html {
    crate::app::use_title(format!("Trace a row of run {}", props.id));
    let client = use_session().client().expect("signed in");
    let detail = use_fetch(props.id.clone(), move |id: AttrValue| {
        let client = client.clone();
        async move { client.run(&id).await }
    });
    let body = match &*detail {
        FetchState::Loading => html! { <Loading what="Loading the run…" /> },
        FetchState::Failed(e) => {
            html! { <ErrorBox error={e.clone()} doing="Could not load the run" retry={detail.retry()} retrying={detail.retrying()} /> }
        }
        FetchState::Ready(d) => {
            if trace_key(&d.steps).is_some() {
                let redacted = Rc::new(
                    d.steps
                        .iter()
                        .map(|s| s.redacted.clone())
                        .collect::<Vec<_>>(),
                );
                html! { <TraceForm id={props.id.clone()} {redacted} /> }
            } else {
                html! { <p class="muted" id="no-trace">{NO_TRACE}</p> }
            }
        }
    };
    html! {
        <main id="main">
            <p class="crumbs">
                <Link<Route> to={Route::Runs}>{"Runs"}</Link<Route>>{" / "}
                <Link<Route> to={Route::Run { id: props.id.to_string() }}>{props.id.clone()}</Link<Route>>
            </p>
            <h1>{"Trace a row"}</h1>
            { body }
        </main>
    }
}

/// Props of [`TraceForm`].
#[derive(Properties, PartialEq)]
struct TraceFormProps {
    /// The run.
    id: AttrValue,
    /// Each step's redaction, by index, if it was redacted.
    redacted: Rc<Vec<Option<Redaction>>>,
}

/// The form, and the trace of the key in the address.
#[component]
fn TraceForm(props: &TraceFormProps) -> Html {
    let client = use_session().client().expect("signed in");
    let navigator = use_navigator();
    let key = use_location()
        .and_then(|l| l.query::<TraceQuery>().ok())
        .and_then(|q| q.key)
        .filter(|k| !k.trim().is_empty());
    let input = use_node_ref();
    {
        let input = input.clone();
        use_effect_with(key.clone(), move |k| {
            if let Some(i) = input.cast::<HtmlInputElement>() {
                i.set_value(k.as_deref().unwrap_or(""));
            }
        });
    }
    let trace = {
        let client = client.clone();
        use_fetch(
            (props.id.clone(), key.clone()),
            move |(id, key): (AttrValue, Option<String>)| {
                let client = client.clone();
                async move {
                    match key {
                        Some(k) => client.trace(&id, &k).await.map(Some),
                        None => Ok(None),
                    }
                }
            },
        )
    };
    let onsubmit = {
        let (input, id) = (input.clone(), props.id.to_string());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let v = input
                .cast::<HtmlInputElement>()
                .map(|i| i.value().trim().to_string())
                .unwrap_or_default();
            let query = TraceQuery {
                key: (!v.is_empty()).then_some(v),
            };
            if let Some(n) = &navigator {
                let _ = n.push_with_query(&Route::Trace { id: id.clone() }, &query);
            }
        })
    };
    let result = match &*trace {
        FetchState::Loading => html! { <Loading what="Tracing…" /> },
        FetchState::Failed(e) => {
            html! { <ErrorBox error={e.clone()} doing="Could not trace the key" retry={trace.retry()} retrying={trace.retrying()} /> }
        }
        FetchState::Ready(t) => match &**t {
            None => {
                html! { <p class="muted">{"Enter a key value to follow that row through the run."}</p> }
            }
            Some(t) => {
                let mut columns: Vec<String> = Vec::new();
                for s in &t.steps {
                    let names = s
                        .values
                        .iter()
                        .flat_map(|v| v.keys())
                        .chain(s.changes.iter().map(|c| &c.column));
                    for c in names {
                        if !columns.contains(c) {
                            columns.push(c.clone());
                        }
                    }
                }
                let nowhere = t.steps.iter().all(|s| s.state == TraceState::Absent);
                let redaction = |i: u64| props.redacted.get(i as usize).cloned().flatten();
                let unknown: Vec<String> = t
                    .steps
                    .iter()
                    .filter(|s| s.redacted)
                    .map(|s| format!("{} {}", s.index, s.step))
                    .collect();
                html! { <>
                    <p>{format!("Key {} = {}", t.key.join(", "), t.value)}</p>
                    if nowhere {
                        <p class="error" role="status">{format!("No step of this run has a row with this key ({} = {}).", t.key.join(", "), t.value)}</p>
                    }
                    <div class="scroll">
                    <table class="trace">
                        <thead><tr>
                            <th scope="col">{"#"}</th><th scope="col">{"Step"}</th><th scope="col">{"State"}</th><th scope="col">{"Row hash"}</th>
                            { for columns.iter().map(|c| html!{ <th scope="col">{c.clone()}</th> }) }
                        </tr></thead>
                        <tbody>
                        { for t.steps.iter().map(|s| {
                            let (word, class) = match (s.state, s.redacted) {
                                (TraceState::Unknown, true) => ("unknown", "muted"),
                                (state, _) => state_word(state),
                            };
                            let why = redaction(s.index).map_or_else(
                                || "the step's details were redacted".to_string(),
                                |r| format!("redacted on {}: {}", time(&r.at), r.reason),
                            );
                            let changed: BTreeSet<&str> = s.changes.iter().map(|c| c.column.as_str()).collect();
                            html! {
                                <tr class={classes!(class, s.redacted.then_some("redacted"))}>
                                    <td>{s.index}</td>
                                    <td><Link<Route> to={Route::Step { id: props.id.to_string(), index: s.index }}>{s.step.clone()}</Link<Route>></td>
                                    <td>{word}
                                        if s.redacted { {" "}<span class="badge redacted" title={why.clone()}>{"values redacted"}</span> }
                                    </td>
                                    <td><code>{s.row_hash.map(|h| short(&h.to_hex())).unwrap_or_default()}</code></td>
                                    { for columns.iter().map(|c| {
                                        if let Some(ch) = s.changes.iter().find(|ch| &ch.column == c) {
                                            html!{ <td class="change"><del>{value(Some(&ch.old))}</del>{" → "}<ins>{value(Some(&ch.new))}</ins></td> }
                                        } else {
                                            let v = match &s.values {
                                                Some(v) => value(v.get(c)),
                                                None if s.redacted => html! { <span class="muted" title={why.clone()}>{"redacted"}</span> },
                                                None => html! {},
                                            };
                                            html!{ <td class={classes!(changed.contains(c.as_str()).then_some("cellchanged"))}>{v}</td> }
                                        }
                                    }) }
                                </tr>
                            }
                        }) }
                        </tbody>
                    </table>
                    </div>
                    if !unknown.is_empty() {
                        <p class="muted" id="trace-redacted">{format!(
                            "The row's values and changes at {} {} are not known any more: the details were redacted (the state comes from the row hashes, which remain).",
                            if unknown.len() == 1 { "step" } else { "steps" }, unknown.join(", "))}</p>
                    }
                </> }
            }
        },
    };
    html! { <>
        <form class="inline" {onsubmit}>
            <label for="trace-key">{"Key value "}</label>
            <input id="trace-key" type="search" ref={input} placeholder="4711" />
            <button type="submit">{"Trace"}</button>
        </form>
        <p class="muted">{"For a key of several columns, give the values in the key's order joined with |, for example EU|4711."}</p>
        { result }
    </> }
}
