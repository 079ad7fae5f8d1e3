//! A run's steps as a timeline: a small SVG chart of rows added, removed and changed per step,
//! and a table with row counts, schema changes and links to each step's diff; steps whose
//! details or column statistics were redacted are marked, and said when and why.

use std::rc::Rc;

use pipeproof_core::api::Redaction;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::view::{StepView, count, time};

/// Props of [`Timeline`].
#[derive(Properties, PartialEq)]
pub struct TimelineProps {
    /// The steps, in order.
    pub steps: Rc<Vec<StepView>>,
    /// The run's id on the server, or `None` for a bundle loaded offline.
    pub run: Option<AttrValue>,
}

/// Where a step's diff page is.
pub fn step_route(run: Option<&AttrValue>, index: u64) -> Route {
    match run {
        Some(id) => Route::Step {
            id: id.to_string(),
            index,
        },
        None => Route::VerifyStep { index },
    }
}

const W_STEP: f64 = 72.0;
const H: f64 = 110.0;
const BAR: f64 = 14.0;

/// Which steps a chart scrolled to `left` within `width` pixels shows whole: the positions
/// (from 0) of the first and the last, or `None` when it shows every step.
fn in_view(n: usize, left: f64, width: f64) -> Option<(usize, usize)> {
    let whole = |i: usize| {
        let x0 = i as f64 * W_STEP + 10.0;
        x0 >= left - 0.5 && x0 + W_STEP - 16.0 <= left + width + 0.5
    };
    let first = (0..n).find(|&i| whole(i))?;
    let last = (first..n).take_while(|&i| whole(i)).last()?;
    (first > 0 || last + 1 < n).then_some((first, last))
}

/// Steps `a`–`b` by their numbers (`steps 17–54`, `step 54`).
fn steps_from(steps: &[StepView], a: usize, b: usize) -> String {
    if a == b {
        format!("step {}", steps[a].index)
    } else {
        format!("steps {}–{}", steps[a].index, steps[b].index)
    }
}

/// What a chart too wide for its box shows, and where the rest is.
fn scroll_hint(steps: &[StepView], first: usize, last: usize) -> String {
    let n = steps.len();
    let mut rest = Vec::new();
    if first > 0 {
        rest.push(steps_from(steps, 0, first - 1));
    }
    if last + 1 < n {
        rest.push(steps_from(steps, last + 1, n - 1));
    }
    format!(
        "Showing {} of {}: scroll the chart sideways for {}.",
        steps_from(steps, first, last),
        count(n as u64),
        rest.join(" and ")
    )
}

/// Props of [`Chart`].
#[derive(Properties, PartialEq)]
struct ChartProps {
    steps: Rc<Vec<StepView>>,
}

/// The chart, in a box that scrolls sideways when it is wider; then it says which steps are
/// in view and which are further along, fades the edge the rest is behind, and takes the
/// keyboard focus (the arrow keys scroll it).
#[component]
fn Chart(props: &ChartProps) -> Html {
    let scroller = use_node_ref();
    let view = use_state(|| None::<(usize, usize)>);
    let measure = {
        let (scroller, view, n) = (scroller.clone(), view.clone(), props.steps.len());
        Callback::from(move |_: ()| {
            if let Some(el) = scroller.cast::<web_sys::Element>() {
                let now = in_view(n, el.scroll_left() as f64, el.client_width() as f64);
                if *view != now {
                    view.set(now);
                }
            }
        })
    };
    {
        let measure = measure.clone();
        use_effect_with(props.steps.len(), move |_| {
            measure.emit(());
            let listener =
                gloo::events::EventListener::new(&gloo::utils::window(), "resize", move |_| {
                    measure.emit(())
                });
            move || drop(listener)
        });
    }
    let onscroll = measure.reform(|_: Event| ());
    let steps = &props.steps;
    let n = steps.len();
    let class = match *view {
        Some((first, last)) => classes!(
            "chart",
            (first > 0).then_some("more-left"),
            (last + 1 < n).then_some("more-right")
        ),
        None => classes!("chart"),
    };
    let hint = view.map(|(first, last)| scroll_hint(steps, first, last));
    html! {
        <figure {class}>
            <div class="chart-scroll" ref={scroller} {onscroll} tabindex={hint.is_some().then_some("0")}
                 role={hint.is_some().then_some("group")} aria-label={hint.is_some().then_some("Chart of the steps, scrolls sideways")}
                 aria-describedby={hint.is_some().then_some("chart-hint")}>
                { chart(steps) }
            </div>
            <figcaption>
                <span class="key added">{"added"}</span>
                <span class="key removed">{"removed"}</span>
                <span class="key changed">{"changed"}</span>
                <span class="key first">{"first step (rows)"}</span>
                <span class="key schema">{"◆ schema changed"}</span>
                if let Some(h) = hint {
                    <span class="hint" id="chart-hint">{"↔ "}{h}</span>
                }
            </figcaption>
        </figure>
    }
}

fn chart(steps: &[StepView]) -> Html {
    let max = steps
        .iter()
        .filter_map(|s| s.diff.as_ref())
        .map(|d| d.added.max(d.removed).max(d.changed))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let width = (steps.len() as f64 * W_STEP).max(240.0);
    let base = H - 22.0;
    let scale = |n: u64| {
        if n == 0 {
            0.0
        } else {
            ((n as f64 / max) * (base - 8.0)).max(2.0)
        }
    };
    let bars = steps.iter().enumerate().map(|(i, s)| {
        let x0 = i as f64 * W_STEP + 10.0;
        let label = format!("{} {}", s.index, s.name);
        let parts = match &s.diff {
            Some(d) => vec![("added", d.added), ("removed", d.removed), ("changed", d.changed)],
            None => vec![("added", s.rows)],
        };
        let first = s.diff.is_none();
        html! {
            <g>
                <title>{ match &s.diff {
                    Some(d) => format!("{label}: +{} added, -{} removed, ~{} changed, {} rows", count(d.added), count(d.removed), count(d.changed), count(s.rows)),
                    None => format!("{label}: first step, {} rows", count(s.rows)),
                } }{ if s.redacted.is_some() { "; details redacted" } else { "" } }{ if s.statistics_redacted.is_some() { "; statistics redacted" } else { "" } }</title>
                { for parts.into_iter().enumerate().map(|(j, (kind, n))| {
                    let h = if first { base - 8.0 } else { scale(n) };
                    let class = if first { "bar first".to_string() } else { format!("bar {kind}") };
                    html! { <rect class={class} x={format!("{:.1}", x0 + j as f64 * (BAR + 2.0))} y={format!("{:.1}", base - h)} width={BAR.to_string()} height={format!("{h:.1}")} /> }
                }) }
                if s.schema_changed() {
                    <text class="schema-mark" x={format!("{:.1}", x0 + 50.0)} y="12">{"◆"}</text>
                }
                <text class="axis" x={format!("{:.1}", x0)} y={format!("{:.1}", H - 6.0)}>{format!("{}", s.index)}</text>
            </g>
        }
    });
    html! {
        <svg viewBox={format!("0 0 {width} {H}")} width={width.to_string()} height={H.to_string()} role="img"
             aria-label="Rows added, removed and changed per step">
            <line class="base" x1="0" x2={width.to_string()} y1={base.to_string()} y2={base.to_string()} />
            { for bars }
        </svg>
    }
}

/// One redaction of a run (when, why): the steps whose details it removed, and those whose
/// column statistics it removed.
struct Group<'a> {
    redaction: &'a Redaction,
    details: Vec<&'a StepView>,
    statistics: Vec<&'a StepView>,
}

/// Steps as `step 1 clean` or `steps 1 clean, 2 enrich`.
fn named(list: &[&StepView]) -> String {
    let names = list
        .iter()
        .map(|s| format!("{} {}", s.index, s.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{} {names}", if list.len() == 1 { "step" } else { "steps" })
}

/// The redactions of a run's steps, one line for each (when, why) with the steps it removed
/// the details or the statistics of.
fn redactions(steps: &[StepView]) -> Html {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for s in steps {
        for (r, statistics) in [(&s.redacted, false), (&s.statistics_redacted, true)] {
            let Some(r) = r else { continue };
            let g = match groups.iter().position(|g| g.redaction == r) {
                Some(i) => &mut groups[i],
                None => {
                    groups.push(Group {
                        redaction: r,
                        details: Vec::new(),
                        statistics: Vec::new(),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            if statistics {
                g.statistics.push(s);
            } else {
                g.details.push(s);
            }
        }
    }
    if groups.is_empty() {
        return html! {};
    }
    html! {
        <div class="redactions" id="redactions" role="note">
            { for groups.into_iter().map(|g| {
                let at = time(&g.redaction.at);
                let (title, words) = match (g.details.is_empty(), g.statistics.is_empty()) {
                    (false, true) => ("Details redacted", format!(
                        " on {at} from {}: their detail rows and kept data were removed; records, row hashes, counts, statistics and seal remain. Reason: ",
                        named(&g.details))),
                    (true, _) => ("Statistics redacted", format!(
                        " on {at} from {}: their column statistics were removed; records (which still bind the statistics' digest), row hashes, counts and seal remain. Reason: ",
                        named(&g.statistics))),
                    (false, false) => ("Details and statistics redacted", format!(
                        " on {at}: the detail rows and kept data of {}, and the column statistics of {}, were removed; records (which still bind their hashes), row hashes, counts and seal remain. Reason: ",
                        named(&g.details), named(&g.statistics))),
                };
                html! {
                    <p><strong>{title}</strong>{words}<bdi class="reason">{g.redaction.reason.clone()}</bdi></p>
                }
            }) }
        </div>
    }
}

/// The timeline.
#[component]
pub fn Timeline(props: &TimelineProps) -> Html {
    let steps = &props.steps;
    if steps.is_empty() {
        return html! { <p class="muted">{"This run has no steps yet."}</p> };
    }
    html! {
        <section aria-labelledby="timeline-h">
            <h2 id="timeline-h">{"Steps"}</h2>
            { redactions(steps) }
            <Chart steps={Rc::clone(steps)} />
            <div class="scroll">
            <table class="steps">
                <thead><tr>
                    <th scope="col">{"#"}</th><th scope="col">{"Step"}</th><th scope="col" class="num">{"Rows"}</th>
                    <th scope="col" class="num">{"Added"}</th><th scope="col" class="num">{"Removed"}</th>
                    <th scope="col" class="num">{"Changed"}</th><th scope="col">{"Schema"}</th><th scope="col">{"Stored"}</th>
                </tr></thead>
                <tbody>
                { for steps.iter().map(|s| {
                    let d = s.diff.as_ref();
                    let n = |f: fn(&pipeproof_core::DiffSummary) -> u64| d.map(|d| count(f(d))).unwrap_or_else(|| "–".into());
                    html! {
                        <tr>
                            <td>{s.index}</td>
                            <td><Link<Route> to={step_route(props.run.as_ref(), s.index)}>{s.name.clone()}</Link<Route>>
                                if let Some(r) = &s.redacted {
                                    {" "}<span class="badge redacted" title={format!("redacted on {}: {}", time(&r.at), r.reason)}>{"details redacted"}</span>
                                }
                                if let Some(r) = &s.statistics_redacted {
                                    {" "}<span class="badge redacted statistics" title={format!("statistics redacted on {}: {}", time(&r.at), r.reason)}>{"statistics redacted"}</span>
                                }
                            </td>
                            <td class="num">{count(s.rows)}</td>
                            <td class="num added">{n(|d| d.added)}</td>
                            <td class="num removed">{n(|d| d.removed)}</td>
                            <td class="num changed">{n(|d| d.changed)}</td>
                            <td>{ if s.schema_changed() { html!{<span class="badge warn">{"◆ changed"}</span>} } else if d.is_some() { html!{"same"} } else { html!{"–"} } }</td>
                            <td>{time(&s.created_at)}</td>
                        </tr>
                    }
                }) }
                </tbody>
            </table>
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(n: u64) -> Vec<StepView> {
        (0..n)
            .map(|index| StepView {
                index,
                name: format!("s{index}"),
                rows: 1,
                created_at: String::new(),
                key: Vec::new(),
                schema: Vec::new(),
                stats: Vec::new(),
                diff: None,
                hash: String::new(),
                redacted: None,
                statistics_redacted: None,
            })
            .collect()
    }

    #[test]
    fn a_chart_that_fits_needs_no_hint() {
        assert_eq!(in_view(3, 0.0, 1180.0), None);
        assert_eq!(in_view(15, 0.0, 15.0 * W_STEP), None);
    }

    #[test]
    fn a_wide_chart_says_which_steps_are_in_view_and_where_the_rest_is() {
        let s = steps(55);
        let (first, last) = in_view(55, 0.0, 1180.0).unwrap();
        assert_eq!((first, last), (0, 15));
        assert_eq!(
            scroll_hint(&s, first, last),
            "Showing steps 0–15 of 55: scroll the chart sideways for steps 16–54."
        );
        let end = 55.0 * W_STEP - 1180.0;
        let (first, last) = in_view(55, end, 1180.0).unwrap();
        assert_eq!(last, 54);
        assert_eq!(
            scroll_hint(&s, first, last),
            format!(
                "Showing steps {first}–54 of 55: scroll the chart sideways for steps 0–{}.",
                first - 1
            )
        );
        let (first, last) = in_view(55, 20.0 * W_STEP, 1180.0).unwrap();
        assert_eq!(
            scroll_hint(&s, first, last),
            format!(
                "Showing steps {first}–{last} of 55: scroll the chart sideways for steps 0–{} and steps {}–54.",
                first - 1,
                last + 1
            )
        );
        assert_eq!(
            scroll_hint(&s, 1, 53),
            "Showing steps 1–53 of 55: scroll the chart sideways for step 0 and step 54."
        );
    }
}
