// A verification worker (src/worker.rs): loads the pipeproof-verify module that trunk builds as
// a no-modules worker, whose start answers jobs. Tells the page when the module cannot start,
// so that the page verifies by itself.
importScripts('./pipeproof-verify.js');
wasm_bindgen({ module_or_path: './pipeproof-verify_bg.wasm' })
  .catch((e) => postMessage({ kind: 'failed', error: String(e) }));
