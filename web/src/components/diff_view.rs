//! A step's diff summary: the counts, per-column change counts as bars, the schema diff, and
//! each column's statistics before and after, side by side; where a redaction removed the
//! step's statistics, a note saying so, when and why.

use pipeproof_core::DiffSummary;
use pipeproof_core::api::Redaction;
use pipeproof_core::stats::ColumnStats;
use yew::prelude::*;

use crate::view::{count, text, time};

/// Props of [`DiffSummaryView`].
#[derive(Properties, PartialEq)]
pub struct SummaryProps {
    /// The diff.
    pub summary: DiffSummary,
    /// When and why a redaction removed the step's column statistics, if it did: the note
    /// stands where the statistics before and after would be.
    #[prop_or_default]
    pub statistics_redacted: Option<Redaction>,
    /// Whether a redaction removed the previous step's statistics (the "before" side): the
    /// summary then holds none (they went from it too), and only the step's own are shown.
    #[prop_or_default]
    pub before_redacted: bool,
    /// The step's own statistics, by column: shown when `before_redacted`.
    #[prop_or_default]
    pub own_stats: Vec<StatsRow>,
    /// Whether the step is shown from a bundle rather than from the server.
    #[prop_or_default]
    pub from_bundle: bool,
}

/// Where a step's statistics would be once a redaction removed them: that they were removed,
/// when and why, and that the record still binds their digest. `heading` is the section's.
pub fn statistics_redacted_notice(r: &Redaction, from_bundle: bool, heading: &str) -> Html {
    html! {
        <section aria-labelledby="stats-h" class="redacted-box" id="statistics-redacted">
            <h2 id="stats-h">{heading.to_string()}</h2>
            <p><strong>{"Removed by a redaction"}</strong>{format!(" on {}. Reason: ", time(&r.at))}<bdi class="reason">{r.reason.clone()}</bdi></p>
            <p>{"This step's column statistics (each column's nulls, distinct count, minimum, maximum and mean; the minimum and maximum are values of the data) were removed from the server"}
                { if from_bundle { ", before this bundle was written: the bundle does not hold them. " } else { ". " } }
                {"Its record still binds their digest, so the run still verifies."}</p>
        </section>
    }
}

fn stat_cells(s: Option<&ColumnStats>) -> Html {
    match s {
        None => html! { <><td class="muted" colspan="5">{"(column absent)"}</td></> },
        Some(s) => html! { <>
            <td class="num">{count(s.nulls)}{ if s.nans > 0 { format!(" / {} NaN", count(s.nans)) } else { String::new() } }</td>
            <td class="num">{count(s.distinct)}</td>
            <td>{s.min.as_deref().map(text).unwrap_or_default()}</td>
            <td>{s.max.as_deref().map(text).unwrap_or_default()}</td>
            <td class="num">{s.mean.map(|m| format!("{m:.4}")).unwrap_or_default()}</td>
        </> },
    }
}

/// One row of a [`StatsTable`]: a column and its statistics on each side shown (`None`
/// where the column is absent).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    /// The column's name.
    pub name: String,
    /// Its statistics, one per side.
    pub sides: Vec<Option<ColumnStats>>,
}

/// Props of [`StatsTable`].
#[derive(Properties, PartialEq)]
pub struct StatsTableProps {
    /// The sides' headings (`Before`, `After`); with one side, a single step's statistics
    /// under one row of headings.
    pub sides: Vec<AttrValue>,
    /// The columns, in order.
    pub rows: Vec<StatsRow>,
}

/// Per-column statistics (nulls, distinct, min, max, mean) of one step, or of several side
/// by side with the rows whose statistics differ marked.
#[component]
pub fn StatsTable(props: &StatsTableProps) -> Html {
    let several = props.sides.len() > 1;
    let heads = html! { <>
        <th scope="col" class="num">{"Nulls"}</th><th scope="col" class="num">{"Distinct"}</th>
        <th scope="col">{"Min"}</th><th scope="col">{"Max"}</th><th scope="col" class="num">{"Mean"}</th>
    </> };
    html! { <>
        <div class="scroll">
        <table class="stats">
            <thead>
                if several {
                    <tr><th scope="col" rowspan="2">{"Column"}</th>
                        { for props.sides.iter().map(|s| html! { <th scope="colgroup" colspan="5">{s.clone()}</th> }) }</tr>
                    <tr>{ for props.sides.iter().map(|_| heads.clone()) }</tr>
                } else {
                    <tr><th scope="col">{"Column"}</th>{heads.clone()}</tr>
                }
            </thead>
            <tbody>
            { for props.rows.iter().map(|r| {
                let drift = several && r.sides.windows(2).any(|w| w[0] != w[1]);
                html! {
                    <tr class={classes!(drift.then_some("drift"))}>
                        <th scope="row">{r.name.clone()}</th>
                        { for r.sides.iter().map(|s| stat_cells(s.as_ref())) }
                    </tr>
                }
            }) }
            </tbody>
        </table>
        </div>
        <p class="muted">{"Distinct counts are estimates (typical error about 1.6 %). Means leave out nulls and NaN; a boolean column's mean is its share of true."}</p>
    </> }
}

/// The summary of a diff.
#[component]
pub fn DiffSummaryView(props: &SummaryProps) -> Html {
    let d = &props.summary;
    let max = d
        .columns
        .iter()
        .map(|c| c.changed)
        .max()
        .unwrap_or(0)
        .max(1);
    let schema = &d.schema;
    html! {
        <>
        <section aria-labelledby="counts-h">
            <h2 id="counts-h">{"Summary"}</h2>
            <dl class="counts">
                <div><dt>{"Rows before"}</dt><dd>{count(d.rows_before)}</dd></div>
                <div><dt>{"Rows after"}</dt><dd>{count(d.rows_after)}</dd></div>
                <div class="added"><dt>{"Added"}</dt><dd>{count(d.added)}</dd></div>
                <div class="removed"><dt>{"Removed"}</dt><dd>{count(d.removed)}</dd></div>
                <div class="changed"><dt>{"Changed"}</dt><dd>{count(d.changed)}</dd></div>
                <div><dt>{"Unchanged"}</dt><dd>{count(d.unchanged)}</dd></div>
                if d.within_tolerance > 0 {
                    <div><dt>{"Equal within tolerance"}</dt><dd>{count(d.within_tolerance)}</dd></div>
                }
            </dl>
            <p class="muted">
                { if d.key.is_empty() { "No key: a multiset diff of whole rows.".to_string() } else { format!("Keyed by {}.", d.key.join(", ")) } }
                if d.summary_only { {" Details were not kept: more rows differ than the summary-only threshold allows."} }
                if d.details_truncated { {" Details were cut at the maximum number of detail rows."} }
            </p>
        </section>
        if !d.columns.is_empty() && !d.key.is_empty() {
            <section aria-labelledby="cols-h">
                <h2 id="cols-h">{"Changed cells per column"}</h2>
                <table class="bars">
                    <thead><tr><th scope="col">{"Column"}</th><th scope="col" class="num">{"Changed"}</th><th scope="col">{""}</th></tr></thead>
                    <tbody>
                    { for d.columns.iter().map(|c| {
                        let pct = c.changed as f64 * 100.0 / max as f64;
                        html! {
                            <tr>
                                <th scope="row">{c.name.clone()}</th>
                                <td class="num">{count(c.changed)}{ if c.within_tolerance > 0 { format!(" (+{} within tolerance)", count(c.within_tolerance)) } else { String::new() } }</td>
                                <td class="barcell"><span class="hbar" style={format!("width:{pct:.1}%")}></span></td>
                            </tr>
                        }
                    }) }
                    </tbody>
                </table>
            </section>
        }
        <section aria-labelledby="schema-h">
            <h2 id="schema-h">{"Schema"}</h2>
            if schema.is_empty() {
                <p>{"No schema change."}</p>
            } else {
                <ul class="schema">
                    { for schema.added.iter().map(|c| html!{ <li class="added">{format!("+ {} ({})", c.name, c.data_type)}</li> }) }
                    { for schema.removed.iter().map(|c| html!{ <li class="removed">{format!("− {} ({})", c.name, c.data_type)}</li> }) }
                    { for schema.retyped.iter().map(|c| html!{ <li class="changed">{format!("~ {}: {} → {}{}", c.name, c.before, c.after, if c.family_changed { " (type family changed: every value differs)" } else { " (width or encoding only)" })}</li> }) }
                    if schema.reordered { <li>{"Columns were reordered."}</li> }
                </ul>
            }
        </section>
        if let Some(r) = &props.statistics_redacted {
            { statistics_redacted_notice(r, props.from_bundle, "Statistics before → after") }
        } else if props.before_redacted {
            <section aria-labelledby="stats-h">
                <h2 id="stats-h">{"Statistics after"}</h2>
                <p class="muted" id="before-statistics-redacted">{"The previous step's statistics were removed by a redaction: only this step's are shown."}</p>
                <StatsTable sides={vec![AttrValue::from("After")]} rows={props.own_stats.clone()} />
            </section>
        } else {
            <section aria-labelledby="stats-h">
                <h2 id="stats-h">{"Statistics before → after"}</h2>
                <StatsTable sides={vec![AttrValue::from("Before"), AttrValue::from("After")]}
                    rows={d.stats.iter().map(|p| StatsRow { name: p.name.clone(), sides: vec![p.before.clone(), p.after.clone()] }).collect::<Vec<_>>()} />
            </section>
        }
        </>
    }
}
