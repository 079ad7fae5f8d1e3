//! A run's description (pipeline, status, times, code version, labels, parameters, and why it
//! failed), shown alike from the server's run and from a bundle's manifest: it is what a seal
//! v2 signs, so the auditor verifying a bundle sees all of it.

use pipeproof_core::bundle::RunInfo;
use yew::prelude::*;

use crate::view::time;

/// Props of [`RunFacts`].
#[derive(Properties, PartialEq)]
pub struct RunFactsProps {
    /// The run.
    pub run: RunInfo,
}

/// The run's description as facts, and its failure message when it failed.
#[component]
pub fn RunFacts(props: &RunFactsProps) -> Html {
    let run = &props.run;
    let badge = match run.status.as_str() {
        "sealed" => "badge ok",
        "failed" => "badge bad",
        _ => "badge",
    };
    let params = match &run.params {
        serde_json::Value::Null => None,
        serde_json::Value::Object(m) if m.is_empty() => None,
        p => Some(p.to_string()),
    };
    html! { <>
        <dl class="facts">
            <div><dt>{"Pipeline"}</dt><dd>{run.pipeline.clone()}</dd></div>
            <div><dt>{"Status"}</dt><dd><span class={badge}>{run.status.clone()}</span></dd></div>
            <div><dt>{"Created"}</dt><dd>{time(&run.created_at)}</dd></div>
            if let Some(s) = &run.sealed_at { <div><dt>{"Ended"}</dt><dd>{time(s)}</dd></div> }
            if let Some(v) = &run.code_version { <div><dt>{"Code version"}</dt><dd><code>{v.clone()}</code></dd></div> }
            if !run.labels.is_empty() {
                <div><dt>{"Labels"}</dt><dd>{ for run.labels.iter().map(|(k, v)| html!{ <span class="label">{format!("{k}={v}")}</span> }) }</dd></div>
            }
            if let Some(p) = params { <div><dt>{"Parameters"}</dt><dd><code>{p}</code></dd></div> }
        </dl>
        if let Some(e) = &run.error { <div class="error" role="note"><strong>{"The pipeline failed: "}</strong>{e.clone()}</div> }
    </> }
}
