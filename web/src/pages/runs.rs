//! The runs list: newest first, filtered by pipeline, label and status, paged.

use pipeproof_core::api::{RunQuery, RunStatus};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::components::signin::RequireSession;
use crate::components::status::{ErrorBox, Loading};
use crate::fetch::{FetchState, use_fetch};
use crate::session::use_session;
use crate::view::{count, counted, time};

const PAGE: u64 = 20;

/// The runs page (signs in first when needed).
#[component]
pub fn Runs() -> Html {
    html! { <RequireSession><RunsList /></RequireSession> }
}

fn status_badge(s: RunStatus) -> Html {
    let class = match s {
        RunStatus::Open => "badge",
        RunStatus::Sealed => "badge ok",
        RunStatus::Failed => "badge bad",
    };
    html! { <span class={class}>{s.as_str()}</span> }
}

/// The filters and page in the address (`#/runs?status=failed&offset=40`), so that Back from a
/// run, a reload or a shared link shows the same runs; a query that does not parse is ignored.
fn query_of(location: Option<Location>) -> RunQuery {
    let q = location
        .and_then(|l| l.query::<RunQuery>().ok())
        .unwrap_or_default();
    RunQuery {
        offset: Some(q.offset.unwrap_or(0)),
        limit: Some(PAGE),
        ..q
    }
}

#[component]
fn RunsList() -> Html {
    crate::app::use_title("Runs".into());
    let client = use_session().client().expect("signed in");
    let navigator = use_navigator();
    let query = query_of(use_location());
    let show = {
        let navigator = navigator.clone();
        move |q: RunQuery| {
            if let Some(n) = &navigator {
                let _ = n.push_with_query(&Route::Runs, &q);
            }
        }
    };
    let pipeline_ref = use_node_ref();
    let label_ref = use_node_ref();
    let status_ref = use_node_ref();
    // The form shows the filters in force, also after Back or Forward changed them.
    {
        let (p, l, s) = (pipeline_ref.clone(), label_ref.clone(), status_ref.clone());
        use_effect_with(query.clone(), move |q| {
            if let Some(x) = p.cast::<HtmlSelectElement>() {
                x.set_value(q.pipeline.as_deref().unwrap_or("*"));
            }
            if let Some(x) = l.cast::<HtmlInputElement>() {
                x.set_value(q.label.as_deref().unwrap_or(""));
            }
            if let Some(x) = s.cast::<HtmlSelectElement>() {
                x.set_value(q.status.map_or("*", |s| s.as_str()));
            }
        });
    }

    let pipelines = {
        let client = client.clone();
        use_fetch((), move |_| {
            let client = client.clone();
            async move { client.pipelines().await }
        })
    };
    let runs = {
        let client = client.clone();
        use_fetch(query.clone(), move |q: RunQuery| {
            let client = client.clone();
            async move { client.runs(&q).await }
        })
    };

    let on_filter = {
        let (show, p, l, s) = (
            show.clone(),
            pipeline_ref.clone(),
            label_ref.clone(),
            status_ref.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let pipeline = p
                .cast::<HtmlSelectElement>()
                .map(|x| x.value())
                .filter(|v| !v.is_empty() && v != "*");
            let label = l
                .cast::<HtmlInputElement>()
                .map(|x| x.value().trim().to_string())
                .filter(|v| !v.is_empty());
            let status = s
                .cast::<HtmlSelectElement>()
                .and_then(|x| match x.value().as_str() {
                    "open" => Some(RunStatus::Open),
                    "sealed" => Some(RunStatus::Sealed),
                    "failed" => Some(RunStatus::Failed),
                    _ => None,
                });
            show(RunQuery {
                pipeline,
                label,
                status,
                offset: Some(0),
                limit: Some(PAGE),
            });
        })
    };

    let pipeline_options = match &*pipelines {
        FetchState::Ready(list) => list
            .iter()
            .map(|p| html! { <option value={p.name.clone()} selected={query.pipeline.as_ref() == Some(&p.name)}>{format!("{} ({})", p.name, counted(p.runs, "run", "runs"))}</option> })
            .collect::<Html>(),
        _ => html! {},
    };

    let table = match &*runs {
        FetchState::Loading => html! { <Loading what="Loading runs…" /> },
        FetchState::Failed(e) => {
            // The pipelines (for the filter) failed with the runs, most likely: ask both again.
            let retry = {
                let pipelines_failed = matches!(&*pipelines, FetchState::Failed(_));
                let (runs, pipelines) =
                    (runs.retry::<MouseEvent>(), pipelines.retry::<MouseEvent>());
                Callback::from(move |e: MouseEvent| {
                    if pipelines_failed {
                        pipelines.emit(e.clone());
                    }
                    runs.emit(e);
                })
            };
            html! { <ErrorBox error={e.clone()} doing="Could not list the runs" {retry} retrying={runs.retrying()} /> }
        }
        FetchState::Ready(page) => {
            let go = |to: u64| {
                let (query, show) = (query.clone(), show.clone());
                Callback::from(move |_: MouseEvent| {
                    show(RunQuery {
                        offset: Some(to),
                        ..query.clone()
                    })
                })
            };
            let last = page.offset + page.items.len() as u64;
            html! { <>
                if page.items.is_empty() && page.total > 0 {
                    <p>{format!("This page is past the last of the {} that match (an old or edited address). ", counted(page.total, "run", "runs"))}
                       <button type="button" class="link" onclick={go(0)}>{"Go to the newest runs"}</button></p>
                } else if page.items.is_empty() && query.pipeline.is_none() && query.label.is_none() && query.status.is_none() {
                    <p>{"No runs yet. Send steps with the Python client or `pipeproof send`."}</p>
                } else if page.items.is_empty() {
                    <p>{"No runs match. Send steps with the Python client or `pipeproof send`, or clear the filters."}</p>
                } else {
                    <div class="scroll">
                    <table class="runs">
                        <thead><tr>
                            <th scope="col">{"Run"}</th><th scope="col">{"Pipeline"}</th><th scope="col">{"Status"}</th>
                            <th scope="col" class="num">{"Steps"}</th><th scope="col" class="num">{"Rows"}</th>
                            <th scope="col">{"Labels"}</th><th scope="col">{"Created"}</th>
                        </tr></thead>
                        <tbody>
                        { for page.items.iter().map(|r| html! {
                            <tr>
                                <td><Link<Route> to={Route::Run { id: r.id.clone() }}>{r.id.clone()}</Link<Route>></td>
                                <td>{r.pipeline.clone()}</td>
                                <td>{status_badge(r.status)}</td>
                                <td class="num">{r.steps}</td>
                                <td class="num">{r.rows.map(count).unwrap_or_else(|| "–".into())}</td>
                                <td>{ for r.labels.iter().map(|(k, v)| html!{ <span class="label">{format!("{k}={v}")}</span> }) }</td>
                                <td>{time(&r.created_at)}</td>
                            </tr>
                        }) }
                        </tbody>
                    </table>
                    </div>
                }
                <p class="pager">
                    <button type="button" disabled={page.offset == 0} onclick={go(page.offset.saturating_sub(PAGE))}>{"← Newer"}</button>
                    <span class="range">{ if page.items.is_empty() { counted(page.total, "run", "runs") } else { format!("{}–{} of {}", page.offset + 1, last, counted(page.total, "run", "runs")) } }</span>
                    <button type="button" disabled={last >= page.total} onclick={go(page.offset + PAGE)}>{"Older →"}</button>
                </p>
            </> }
        }
    };

    html! {
        <main id="main">
            <h1>{"Runs"}</h1>
            <form class="filters" onsubmit={on_filter} aria-label="Filter runs">
                <label>{"Pipeline "}
                    <select ref={pipeline_ref}>
                        <option value="*" selected={query.pipeline.is_none()}>{"all pipelines"}</option>
                        { pipeline_options }
                    </select>
                </label>
                <label>{"Label "}<input ref={label_ref} type="text" placeholder="env=prod" /></label>
                <label>{"Status "}
                    <select ref={status_ref}>
                        <option value="*" selected={query.status.is_none()}>{"any"}</option>
                        { for [RunStatus::Open, RunStatus::Sealed, RunStatus::Failed].into_iter().map(|s| html! {
                            <option value={s.as_str()} selected={query.status == Some(s)}>{s.as_str()}</option>
                        }) }
                    </select>
                </label>
                <button type="submit">{"Apply filters"}</button>
            </form>
            { table }
        </main>
    }
}
