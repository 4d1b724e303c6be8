// Parses Terraform files with HashiCorp's own HCL parser (the Go hcl library
// built to WASM, npm's @cdktf/hcl2json, which scripts/install-deps.sh puts
// under build-tools/) and prints {file: tree} as JSON.  Exits 1 with the
// parser's message on a syntax error.  Usage: node hcl2json.js FILE...
"use strict";
const fs = require("fs");
const path = require("path");
const { parse } = require("@cdktf/hcl2json");

(async () => {
  const out = {};
  for (const file of process.argv.slice(2)) {
    out[path.basename(file)] = await parse(file, fs.readFileSync(file, "utf8"));
  }
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((e) => {
  process.stderr.write(String(e && e.message ? e.message : e) + "\n");
  process.exit(1);
});
