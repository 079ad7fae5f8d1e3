//! The pipeproof single-page app: review runs and diffs from a server, and verify exported
//! bundles offline with core compiled to WebAssembly.

mod api;
mod app;
mod components;
mod fetch;
mod offline;
mod pages;
mod session;
mod stopped;
mod view;

fn main() {
    stopped::install();
    yew::Renderer::<app::App>::new().render();
}
