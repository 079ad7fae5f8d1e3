// A verification worker (src/worker.rs): loads the pipeproof-verify module that trunk builds as
// a no-modules worker, whose start answers jobs. Tells the page when the module cannot start,
// so that the page verifies by itself. The page loads this script with its build's id as the
// query (`?build=…`); the module's files are fetched with it too, so that a browser which
// cached another build's files does not run them.
const build = self.location.search;
importScripts(`./pipeproof-verify.js${build}`);
wasm_bindgen({ module_or_path: `./pipeproof-verify_bg.wasm${build}` })
  .catch((e) => postMessage({ kind: 'failed', error: String(e) }));
