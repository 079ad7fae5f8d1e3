//! Widgets shared by the pages; the diff and timeline widgets serve the online pages and the
//! offline bundle pages alike.

pub mod checks;
pub mod details;
pub mod diff_view;
pub mod run_facts;
pub mod signin;
pub mod status;
pub mod timeline;
