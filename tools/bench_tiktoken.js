#!/usr/bin/env node
// js-tiktoken's r50k_base encode throughput on the default corpus (Debian's fortunes, read as
// lmlab reads it), to set beside bench/bench_bpe.cpp's. js-tiktoken is the pure-JavaScript port
// of tiktoken, not OpenAI's Rust tiktoken (which Python's `tiktoken` wraps and which is several
// times faster): this measures that port on node, single-threaded.
//
//   npm install --prefix /tmp/tk js-tiktoken
//   NODE_PATH=/tmp/tk/node_modules node tools/bench_tiktoken.js [runs (default 5)]
// With --wasm it measures npm's `tiktoken` instead: OpenAI's Rust tiktoken compiled to
// WebAssembly (the same core as Python's tiktoken, run by node's WASM engine):
//   npm install --prefix /tmp/tk tiktoken
//   NODE_PATH=/tmp/tk/node_modules node tools/bench_tiktoken.js 7 --wasm
"use strict";
const fs = require("fs");
const path = require("path");
const { corpusFiles, r50k } = require("./tiktoken_corpus.js");

const wasm = process.argv.includes("--wasm");
const runs = Number(process.argv.filter((a) => a !== "--wasm")[2] || 5);

// npm's tiktoken (Rust via WASM): encode() returns a Uint32Array; encode(text, [], []) is
// encode_ordinary with no special tokens allowed, as js-tiktoken's call below.
function r50kWasm() {
  const { get_encoding } = require("tiktoken");
  const pkg = path.join(path.dirname(require.resolve("tiktoken")), "package.json");
  const version = JSON.parse(fs.readFileSync(pkg, "utf8")).version;
  return { enc: get_encoding("r50k_base"), version };
}
const text = corpusFiles().map((f) => f.text).join("");
const bytes = Buffer.byteLength(text, "utf8");
let t = process.hrtime.bigint();
const { enc, version } = wasm ? r50kWasm() : r50k();
const loadMs = Number(process.hrtime.bigint() - t) / 1e6;
enc.encode("warm up the regex and the maps", [], []);

// Wall-clock MB/s, and MB per second of this process's CPU time (user + system), which a shared
// machine's load distorts less.
const rates = [], cpuRates = [];
let ids = 0;
for (let r = 0; r < runs; ++r) {
  t = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  ids = enc.encode(text, [], []).length;
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  rates.push(bytes / 1e6 / seconds);
  cpuRates.push(bytes / 1e6 / cpuSeconds);
  const ms = (x) => (x * 1e3).toFixed(0);
  console.log(`run ${r + 1}: ${ms(seconds)} ms (CPU ${ms(cpuSeconds)} ms), ` +
              `${rates[r].toFixed(2)} MB/s (${cpuRates[r].toFixed(2)} MB/CPU-s)`);
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
console.log(`${wasm ? "tiktoken" : "js-tiktoken"} ${version} (${wasm ? "Rust, WASM" : "pure JS"}) r50k_base, node ${process.version}: ${bytes} bytes ` +
            `-> ${ids} ids, load ${loadMs.toFixed(0)} ms, median of ${runs}: ` +
            `${median(rates).toFixed(2)} MB/s, ${median(cpuRates).toFixed(2)} MB/CPU-s`);
