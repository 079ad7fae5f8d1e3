//! A verification report: every check, passed or failed, with its step and what was found;
//! when some failed, a switch to list only those (a big bundle has hundreds of checks).

use pipeproof_core::bundle::VerifyReport;
use web_sys::HtmlInputElement;
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
    let only_failed = use_state(|| false);
    let on_toggle = {
        let only_failed = only_failed.clone();
        Callback::from(move |e: Event| {
            only_failed.set(e.target_unchecked_into::<HtmlInputElement>().checked());
        })
    };
    // Only while some failed: with none, the switch would empty the table.
    let only_failed = *only_failed && failed > 0;
    html! {
        <section aria-labelledby="checks-h">
            <h2 id="checks-h">{"Checks"}</h2>
            if r.passed() {
                <p class="verdict ok" role="status">{format!("✔ All {} checks passed.", r.checks.len())}</p>
            } else {
                <p class="verdict bad" role="alert">{format!("✘ {failed} of {} checks failed.", r.checks.len())}</p>
            }
            if failed > 0 {
                <p class="filters">
                    <label class="check"><input type="checkbox" id="failed-only" checked={only_failed} onchange={on_toggle} />
                        {format!(" Failures only ({failed})")}</label>
                    <span class="muted" aria-live="polite">{ if only_failed {
                        format!("Showing the {failed} failed of {} checks.", r.checks.len())
                    } else {
                        format!("Showing all {} checks.", r.checks.len())
                    } }</span>
                </p>
            }
            <div class="scroll">
            <table class="checks">
                <thead><tr><th scope="col">{"Result"}</th><th scope="col">{"Check"}</th><th scope="col">{"Step"}</th><th scope="col">{"Detail"}</th></tr></thead>
                <tbody>
                { for r.checks.iter().filter(|c| !only_failed || !c.passed).map(|c| html! {
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
