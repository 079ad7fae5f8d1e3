//! One module per page.

pub mod run;
pub mod runs;
pub mod step;
pub mod trace;
pub mod verify;
