//! The verification worker's module: trunk builds it as a no-modules worker, and
//! `verify-worker.js` starts it in a worker the page made for a job (see `worker.rs`).

fn main() {
    pipeproof_web::worker::serve();
}
