//! The pipeproof single-page app.
fn main() {}
