//! The pipeproof single-page app: review runs and diffs from a server, and verify exported
//! bundles offline with core compiled to WebAssembly.

mod api;
mod app;
mod components;
mod fetch;
mod offline;
mod pages;
mod session;
mod view;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
