//! A verification report: every check, passed or failed, with its step and what was found.

use pipeproof_core::bundle::VerifyReport;
use yew::prelude::*;

/// Props of [`Checks`].
#[derive(Properties, PartialEq)]
pub struct ChecksProps {
    /// The report.
    pub report: VerifyReport,
}

/// The report as a verdict and a table.
#[component]
pub fn Checks(props: &ChecksProps) -> Html {
    let r = &props.report;
    let failed = r.checks.iter().filter(|c| !c.passed).count();
    html! {
        <section aria-labelledby="checks-h">
            <h2 id="checks-h">{"Checks"}</h2>
            if r.passed() {
                <p class="verdict ok" role="status">{format!("✔ All {} checks passed.", r.checks.len())}</p>
            } else {
                <p class="verdict bad" role="alert">{format!("✘ {failed} of {} checks failed.", r.checks.len())}</p>
            }
            <div class="scroll">
            <table class="checks">
                <thead><tr><th scope="col">{"Result"}</th><th scope="col">{"Check"}</th><th scope="col">{"Step"}</th><th scope="col">{"Detail"}</th></tr></thead>
                <tbody>
                { for r.checks.iter().map(|c| html! {
                    <tr class={if c.passed { "pass" } else { "fail" }}>
                        <td>{ if c.passed { "✔ passed" } else { "✘ failed" } }</td>
                        <td>{c.name.clone()}</td>
                        <td>{c.step.clone().unwrap_or_default()}</td>
                        <td>{c.detail.clone()}</td>
                    </tr>
                }) }
                </tbody>
            </table>
            </div>
        </section>
    }
}
