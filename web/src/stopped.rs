//! What the page shows when the app stops. Built for the browser, a panic cannot be caught:
//! the WebAssembly module traps and the app is gone, with the page as it was (a bundle whose
//! tables make the Arrow decoder panic, verified on the page because no worker could be
//! started, would leave "Verifying…" on screen for ever; in a worker, only the worker stops,
//! see `offline.rs`). The panic hook, which runs before the trap, says so on the page and in
//! the console.

use std::panic::PanicHookInfo;

use pipeproof_web::panicked;

/// Installs the hook; called once, before the app starts (through yew, which would
/// otherwise install its own, which only logs to the console).
pub fn install() {
    yew::set_custom_panic_hook(Box::new(show));
}

fn show(info: &PanicHookInfo<'_>) {
    let (what, place) = (panicked::message(info), panicked::place(info));
    gloo::console::error!(format!("pipeproof stopped: {what}{place}"));
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Some(body) = document.body() else {
        return;
    };
    let Ok(banner) = document.create_element("div") else {
        return;
    };
    banner.set_id("stopped");
    banner.set_class_name("stopped");
    let _ = banner.set_attribute("role", "alert");
    banner.set_text_content(Some(&message(&what, &place)));
    let _ = body.prepend_with_node_1(&banner);
}

/// The banner's text.
fn message(what: &str, place: &str) -> String {
    format!(
        "pipeproof stopped and cannot go on in this page: {what}{place}. Most often this is \
         input its decoders did not expect, such as a damaged or crafted bundle or data file \
         (otherwise, a fault in pipeproof): no verdict was reached for the file being read, and \
         nothing on the page changes any more. Reload the page to go on."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_names_what_stopped_it_and_what_to_do() {
        let m = message("slice offset=0 length=9 selflen=4", " (x.rs:3)");
        assert!(m.starts_with(
            "pipeproof stopped and cannot go on in this page: slice offset=0 length=9 \
             selflen=4 (x.rs:3). "
        ));
        assert!(m.ends_with("Reload the page to go on."));
    }
}
