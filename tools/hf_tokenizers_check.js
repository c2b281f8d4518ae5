#!/usr/bin/env node
// Checks that Hugging Face's own reader takes lmlab's tokenizer.json layout: loads a
// tokenizer.json (default tests/fixtures/bpe/r50k_base.json) with the npm package
// @huggingface/tokenizers (tokenizers.js) and encodes the texts of
// tests/fixtures/bpe/r50k_cases.json, which must give tiktoken's ids. Hugging Face matches added
// tokens everywhere, so a text with "<|endoftext|>" is compared with the allowed-special ids.
//
//   npm install --prefix /tmp/hftk @huggingface/tokenizers
//   NODE_PATH=/tmp/hftk/node_modules node tools/hf_tokenizers_check.js [tokenizer.json]
"use strict";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("@huggingface/tokenizers");

const root = path.join(__dirname, "..");
const file = process.argv[2] || path.join(root, "tests/fixtures/bpe/r50k_base.json");
const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(file, "utf8")), {});
const fixture = JSON.parse(
  fs.readFileSync(path.join(root, "tests/fixtures/bpe/r50k_cases.json"), "utf8"));
let equal = 0, skipped = 0;
const differ = [];
for (const c of fixture.cases) {
  if (!c.allowed_special && c.text.includes("<|endoftext|>")) {
    ++skipped;
    continue;
  }
  const ids = tokenizer.encode(c.text, { add_special_tokens: false }).ids;
  if (JSON.stringify(ids) === JSON.stringify(c.ids)) ++equal; else differ.push(c.name);
}
console.log(`${file}: tokenizers.js gives tiktoken's ids on ${equal} texts, differs on ` +
            `${differ.length}${differ.length ? " (" + differ.join(", ") + ")" : ""}; ` +
            `${skipped} plain-text <|endoftext|> cases skipped`);
process.exit(differ.length ? 1 : 0);
