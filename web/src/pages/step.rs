//! A step's diff from the server: the summary, the schema, the statistics side by side and
//! the paged detail rows; for a run's first step, which has no diff, its schema and
//! statistics. A step whose details were redacted says so, when and why, where its detail
//! rows would be, and asks the server for none of them; one whose statistics were redacted
//! says so where its statistics would be.

use pipeproof_core::api::{Column, Redaction, Step};
use pipeproof_core::stats::ColumnStats;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::components::details::{DetailSource, DetailsTable};
use crate::components::diff_view::{
    DiffSummaryView, StatsRow, StatsTable, statistics_redacted_notice,
};
use crate::components::signin::RequireSession;
use crate::components::status::{ErrorBox, Loading};
use crate::fetch::{FetchState, use_fetch};
use crate::session::use_session;
use crate::view::{NO_TRACE, count, short, time, trace_key};

/// Props of [`StepPage`].
#[derive(Properties, PartialEq)]
pub struct StepProps {
    /// The run.
    pub id: AttrValue,
    /// The step's index.
    pub index: u64,
}

/// The step page.
#[component]
pub fn StepPage(props: &StepProps) -> Html {
    html! { <RequireSession><StepView id={props.id.clone()} index={props.index} /></RequireSession> }
}

/// Props of [`StepBody`].
#[derive(Properties, PartialEq)]
pub struct StepBodyProps {
    /// The step's index.
    pub index: u64,
    /// Its name.
    pub name: AttrValue,
    /// Its row count.
    pub rows: u64,
    /// When it was stored.
    pub created_at: AttrValue,
    /// Its record hash, hex.
    pub hash: AttrValue,
    /// Its key columns.
    pub key_columns: Vec<String>,
    /// Its columns, in schema order.
    pub schema: Vec<Column>,
    /// Its columns' statistics, in schema order.
    pub stats: Vec<ColumnStats>,
    /// The diff against the previous step.
    pub diff: Option<pipeproof_core::DiffSummary>,
    /// Where the detail rows come from, when they were kept.
    pub details: Option<DetailSource>,
    /// When and why the step's details and kept data were removed, if they were.
    #[prop_or_default]
    pub redacted: Option<Redaction>,
    /// When and why the step's column statistics were removed, if they were.
    #[prop_or_default]
    pub statistics_redacted: Option<Redaction>,
    /// Whether the previous step's column statistics were removed (the diff's "before").
    #[prop_or_default]
    pub before_statistics_redacted: bool,
    /// Whether the step is shown from a bundle (which was written without the redacted rows)
    /// rather than from the server.
    #[prop_or_default]
    pub from_bundle: bool,
}

/// Where a redacted step's detail rows would be: that they were removed, when and why, and
/// what remains to prove the step (its statistics too, unless `statistics_gone`; its diff
/// counts too, unless `summary_gone`: a bundle leaves out a summary that held redacted
/// statistics).
fn redaction_notice(
    r: &Redaction,
    from_bundle: bool,
    first: bool,
    statistics_gone: bool,
    summary_gone: bool,
) -> Html {
    let what = if first {
        "Any copy of this step's data the server kept"
    } else {
        "The added, removed and changed rows of this step, and any copy of its data the server kept,"
    };
    let kept = if statistics_gone {
        "schema"
    } else {
        "schema and statistics"
    };
    let stays = if first {
        format!("Its record, row hashes, {kept}, and the run's seal, remain.")
    } else if summary_gone {
        format!(
            "Its record (which still binds the rows' hash and the diff summary's), row hashes, \
             its {kept}, and the run's seal, remain."
        )
    } else {
        format!(
            "Its record (which still binds the rows' hash), row hashes, its diff counts, its \
             {kept}, and the run's seal, remain."
        )
    };
    html! {
        <section aria-labelledby="redacted-h" class="redacted-box" id="redacted">
            <h2 id="redacted-h">{ if first { "Kept data" } else { "Detail rows" } }</h2>
            <p><strong>{"Removed by a redaction"}</strong>{format!(" on {}. Reason: ", time(&r.at))}<bdi class="reason">{r.reason.clone()}</bdi></p>
            <p>{what}{" were removed from the server"}{ if from_bundle { ", before this bundle was written: the bundle does not hold them. " } else { ". " } }{stays}</p>
        </section>
    }
}

/// A step on its own (a run's first step, which has no diff): its columns with their types,
/// then their statistics in the same table as a diff's, with one side (or, once a redaction
/// removed them, the note saying so).
/// A step's own statistics, a row per column, named by its schema.
fn own_stats(schema: &[Column], stats: &[ColumnStats]) -> Vec<StatsRow> {
    stats
        .iter()
        .enumerate()
        .map(|(i, s)| StatsRow {
            name: schema
                .get(i)
                .map_or_else(|| format!("column {i}"), |c| c.name.clone()),
            sides: vec![Some(s.clone())],
        })
        .collect()
}

fn own_schema_and_stats(
    schema: &[Column],
    stats: &[ColumnStats],
    redacted: Option<&Redaction>,
    from_bundle: bool,
) -> Html {
    let rows = own_stats(schema, stats);
    html! { <>
        <section aria-labelledby="schema-h">
            <h2 id="schema-h">{"Schema"}</h2>
            <div class="scroll">
            <table class="columns">
                <thead><tr><th scope="col">{"Column"}</th><th scope="col">{"Type"}</th><th scope="col">{"Nulls allowed"}</th></tr></thead>
                <tbody>
                { for schema.iter().map(|c| html! {
                    <tr><th scope="row">{c.name.clone()}</th><td><code>{c.data_type.clone()}</code></td><td>{ if c.nullable { "yes" } else { "no" } }</td></tr>
                }) }
                </tbody>
            </table>
            </div>
        </section>
        if let Some(r) = redacted {
            { statistics_redacted_notice(r, from_bundle, "Statistics") }
        } else {
            <section aria-labelledby="stats-h">
                <h2 id="stats-h">{"Statistics"}</h2>
                if rows.is_empty() {
                    <p class="muted">{"No statistics were recorded for this step."}</p>
                } else {
                    <StatsTable sides={vec![AttrValue::from("This step")]} {rows} />
                }
            </section>
        }
    </> }
}

/// What a step page shows, online or from a bundle.
#[component]
pub fn StepBody(props: &StepBodyProps) -> Html {
    html! { <>
        <h1>{format!("Step {} · {}", props.index, props.name)}</h1>
        <dl class="facts">
            <div><dt>{"Rows"}</dt><dd>{count(props.rows)}</dd></div>
            <div><dt>{"Stored"}</dt><dd>{time(&props.created_at)}</dd></div>
            <div><dt>{"Key"}</dt><dd>{ if props.key_columns.is_empty() { "none (multiset diff)".to_string() } else { props.key_columns.join(", ") } }</dd></div>
            <div><dt>{"Record"}</dt><dd><code title={props.hash.clone()}>{short(&props.hash)}</code></dd></div>
        </dl>
        { match &props.diff {
            // A later step without its summary: a bundle leaves out a summary that held
            // statistics a redaction removed (its own, or the previous step's).
            None if props.index > 0 => html! { <>
                <p id="summary-not-in-bundle">{"This step's diff summary is not in this bundle: it held column statistics (this step's or the previous step's) that a redaction removed, so its counts are not shown. Its record still binds the summary's hash."}</p>
                { own_schema_and_stats(&props.schema, &props.stats, props.statistics_redacted.as_ref(), props.from_bundle) }
                { for props.redacted.as_ref().map(|r| redaction_notice(r, props.from_bundle, false, props.statistics_redacted.is_some(), true)) }
            </> },
            None => html! { <>
                <p>{ if props.statistics_redacted.is_some() {
                    "This is the run's first step: there is nothing before it to diff against. These are its columns as recorded; a redaction removed its statistics."
                } else {
                    "This is the run's first step: there is nothing before it to diff against. These are its columns and statistics as recorded."
                } }</p>
                { own_schema_and_stats(&props.schema, &props.stats, props.statistics_redacted.as_ref(), props.from_bundle) }
                { for props.redacted.as_ref().map(|r| redaction_notice(r, props.from_bundle, true, props.statistics_redacted.is_some(), false)) }
            </> },
            Some(d) => html! { <>
                <DiffSummaryView summary={d.clone()} statistics_redacted={props.statistics_redacted.clone()}
                    before_redacted={props.before_statistics_redacted} own_stats={own_stats(&props.schema, &props.stats)}
                    from_bundle={props.from_bundle} />
                { match (&props.details, &props.redacted) {
                    (_, Some(r)) => redaction_notice(r, props.from_bundle, false, props.statistics_redacted.is_some(), false),
                    // Skipped by the diff's summary-only threshold: there are no rows to page,
                    // filter or search, so no table is offered.
                    (_, None) if d.summary_only => html! { <p class="muted" id="summary-only">{"No detail rows were kept for this step (its diff was summary-only: more rows differed than the summary-only threshold allows). The counts above are complete."}</p> },
                    // The table's tab, page, column and search are in the address; the links
                    // to another step carry none, so its details start afresh. Keyed by the
                    // step all the same, so nothing of this step's table is reused.
                    (Some(source), None) => html! { <DetailsTable key={props.hash.to_string()} source={source.clone()} key_columns={props.key_columns.clone()} columns={d.compared_columns.clone()}
                        retyped={d.schema.retyped.iter().filter(|r| r.family_changed).map(|r| (r.name.clone(), format!("{} → {}", r.before, r.after))).collect::<Vec<_>>()} /> },
                    (None, None) => html! { <p class="muted">{"No detail rows were kept for this step."}</p> },
                } }
            </> },
        } }
    </> }
}

#[component]
fn StepView(props: &StepProps) -> Html {
    let client = use_session().client().expect("signed in");
    let detail = {
        let client = client.clone();
        use_fetch(props.id.clone(), move |id: AttrValue| {
            let client = client.clone();
            async move { client.run(&id).await }
        })
    };
    crate::app::use_title(match &*detail {
        FetchState::Ready(d) => match d.steps.get(props.index as usize) {
            Some(s) => format!("Step {} {} of run {}", props.index, s.record.step, props.id),
            None => format!("Step {} of run {}", props.index, props.id),
        },
        _ => format!("Step {} of run {}", props.index, props.id),
    });
    let crumbs = html! {
        <p class="crumbs">
            <Link<Route> to={Route::Runs}>{"Runs"}</Link<Route>>{" / "}
            <Link<Route> to={Route::Run { id: props.id.to_string() }}>{props.id.clone()}</Link<Route>>
        </p>
    };
    let body = match &*detail {
        FetchState::Loading => html! { <Loading what="Loading the step…" /> },
        FetchState::Failed(e) => {
            html! { <ErrorBox error={e.clone()} doing="Could not load the step" retry={detail.retry()} retrying={detail.retrying()} /> }
        }
        FetchState::Ready(d) => match d.steps.get(props.index as usize) {
            None => {
                html! { <div class="error" role="alert">{format!("Run {} has no step {} (it has {}).", props.id, props.index, d.steps.len())}</div> }
            }
            Some(s) => {
                let Step {
                    record,
                    hash,
                    diff,
                    schema,
                    stats,
                    redacted,
                    statistics_redacted,
                    ..
                } = s;
                let before_statistics_redacted = (props.index as usize)
                    .checked_sub(1)
                    .and_then(|i| d.steps.get(i))
                    .is_some_and(|p| p.statistics_redacted.is_some());
                // A redacted step's details answer 410: none are asked for.
                let details = (diff.is_some() && redacted.is_none()).then(|| DetailSource::Api {
                    client: client.clone(),
                    run: props.id.to_string(),
                    index: props.index,
                });
                let nav = |i: u64, label: &str| html! { <Link<Route> to={Route::Step { id: props.id.to_string(), index: i }}>{label.to_string()}</Link<Route>> };
                html! { <>
                    <p class="stepnav">
                        if props.index > 0 { { nav(props.index - 1, "← Previous step") } }
                        if (props.index as usize) + 1 < d.steps.len() { { nav(props.index + 1, "Next step →") } }
                        if trace_key(&d.steps).is_some() {
                            <Link<Route> to={Route::Trace { id: props.id.to_string() }}>{"Trace a row"}</Link<Route>>
                        } else {
                            <span class="muted" id="no-trace">{NO_TRACE}</span>
                        }
                    </p>
                    <StepBody index={props.index} name={record.step.clone()} rows={record.rows} created_at={record.created_at.clone()}
                        hash={hash.to_hex()} key_columns={record.key.clone()} schema={schema.clone()} stats={stats.clone()} diff={diff.clone()}
                        {details} redacted={redacted.clone()} statistics_redacted={statistics_redacted.clone()} {before_statistics_redacted} />
                </> }
            }
        },
    };
    html! { <main id="main">{crumbs}{body}</main> }
}
