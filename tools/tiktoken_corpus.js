// Shared by tools/bpe_fixture.js and tools/bench_tiktoken.js: lmlab's corpus reading rules
// (data/corpus.h) and js-tiktoken's r50k_base encoder.
"use strict";
const fs = require("fs");
const path = require("path");

const DEFAULT_CORPUS = "/usr/share/games/fortunes";

// The files lmlab's read_corpus reads in a directory, in its order: regular files directly inside
// (no symlinks, no subdirectories, no hidden files, no strfile .dat indexes), sorted byte-wise.
function corpusFiles(dir = DEFAULT_CORPUS) {
  return fs.readdirSync(dir)
    .filter((name) => !name.startsWith(".") && !name.endsWith(".dat"))
    .filter((name) => fs.lstatSync(path.join(dir, name)).isFile())
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((name) => ({ name, text: fs.readFileSync(path.join(dir, name), "utf8") }));
}

// js-tiktoken's r50k_base (the pure-JS port of tiktoken). `NODE_PATH` must point at a
// node_modules holding it (npm install --prefix /tmp/tk js-tiktoken).
function r50k() {
  const { Tiktoken } = require("js-tiktoken/lite");
  const ranks = require("js-tiktoken/ranks/r50k_base");
  const pkg = path.join(path.dirname(require.resolve("js-tiktoken/lite")), "..", "package.json");
  const version = JSON.parse(fs.readFileSync(pkg, "utf8")).version;
  return { enc: new Tiktoken(ranks), version };
}

module.exports = { DEFAULT_CORPUS, corpusFiles, r50k };
