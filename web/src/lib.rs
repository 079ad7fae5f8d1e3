//! What the app (`src/main.rs`) and its verification worker (`src/bin/verify_worker.rs`)
//! share: the verification jobs, which call core and nothing else, and the messages that carry
//! them to the worker and their results back. The pages, and everything drawn, stay in the app.

pub mod job;
pub mod panicked;
pub mod worker;
