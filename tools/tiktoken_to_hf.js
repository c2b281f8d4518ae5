#!/usr/bin/env node
// Converts tiktoken's r50k_base (GPT-2's byte-level BPE) as shipped in the npm package js-tiktoken
// into a Hugging Face tokenizer.json, in the exact layout lmlab's Bpe::to_json writes (so
// lmlab's load + to_json reproduces the file byte for byte; tests/data/test_bpe.cpp checks it).
//
//   npm install --prefix /tmp/tk js-tiktoken        # once; nothing is installed in the repository
//   NODE_PATH=/tmp/tk/node_modules node tools/tiktoken_to_hf.js tests/fixtures/bpe/r50k_base.json
//
// js-tiktoken's ranks file (js-tiktoken/ranks/r50k_base) holds `bpe_ranks`: lines
// "<name> <first rank> <base64 token> <base64 token> ...", rank = first rank + position, and
// `special_tokens` ({"<|endoftext|>": 50256}). tiktoken has ranks only (bytes -> rank = id);
// tokenizer.json wants merges: token r (r >= 256) is the merge of the two parts that byte-pair
// merging its own bytes with the ranks below r ends with (exactly two, or the script stops).
// Strings are in GPT-2's byte-to-unicode alphabet.
"use strict";
const fs = require("fs");

function loadRanks(name) {
  const data = require(`js-tiktoken/ranks/${name}`);
  const ranks = new Map();  // latin1 string of the token's bytes -> rank
  for (const line of data.bpe_ranks.split("\n").filter(Boolean)) {
    const [, offset, ...tokens] = line.split(" ");
    tokens.forEach((t, i) => ranks.set(Buffer.from(t, "base64").toString("latin1"),
                                       Number.parseInt(offset, 10) + i));
  }
  return { ranks, special: data.special_tokens, nVocab: data.explicit_n_vocab };
}

// GPT-2's bytes_to_unicode.
function byteToUnicode() {
  const table = [];
  let next = 256;
  for (let b = 0; b < 256; ++b) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    table.push(String.fromCodePoint(printable ? b : next++));
  }
  return table;
}

// tiktoken's byte-pair merge of `bytes` (a latin1 string) using only the ranks below maxRank.
function mergeBelow(bytes, ranks, maxRank) {
  let parts = [...bytes];
  for (;;) {
    let best = -1, bestRank = maxRank;
    for (let i = 0; i + 1 < parts.length; ++i) {
      const r = ranks.get(parts[i] + parts[i + 1]);
      if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0) return parts;
    parts.splice(best, 2, parts[best] + parts[best + 1]);
  }
}

function convert(name) {
  const { ranks, special, nVocab } = loadRanks(name);
  const u = byteToUnicode();
  const show = (latin1) => [...latin1].map((c) => u[c.charCodeAt(0)]).join("");
  const byRank = [];
  for (const [bytes, rank] of ranks) byRank[rank] = bytes;
  for (let r = 0; r < byRank.length; ++r) {
    if (byRank[r] === undefined) throw new Error(`rank ${r} is missing`);
    if ((r < 256) !== (byRank[r].length === 1)) throw new Error(`rank ${r}: not bytes first`);
  }
  const merges = [];
  for (let r = 256; r < byRank.length; ++r) {
    const parts = mergeBelow(byRank[r], ranks, r);
    if (parts.length !== 2) throw new Error(`rank ${r} does not split into two lower ranks`);
    merges.push(show(parts[0]) + " " + show(parts[1]));
  }
  const vocab = byRank.map(show);
  const specials = Object.entries(special).sort((a, b) => a[1] - b[1]);
  for (const [text, id] of specials) vocab[id] = show(Buffer.from(text, "utf8").toString("latin1"));
  if (vocab.length !== nVocab) throw new Error(`${vocab.length} tokens, expected ${nVocab}`);
  return { vocab, merges, specials };
}

// The layout of lmlab's Bpe::to_json (data/bpe_json.cpp), byte for byte.
function render({ vocab, merges, specials }) {
  const q = JSON.stringify;
  const added = specials.map(([text, id]) =>
    `\n    {"id": ${id}, "content": ${q(text)}, "single_word": false, "lstrip": false, ` +
    `"rstrip": false, "normalized": false, "special": true}`).join(",");
  return "{\n" +
    '  "version": "1.0",\n  "truncation": null,\n  "padding": null,\n' +
    `  "added_tokens": [${added}${specials.length ? "\n  " : ""}],\n  "normalizer": null,\n` +
    '  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, ' +
    '"use_regex": true},\n' +
    '  "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, ' +
    '"use_regex": true},\n' +
    '  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, ' +
    '"use_regex": true},\n' +
    '  "model": {\n    "type": "BPE",\n    "dropout": null,\n    "unk_token": null,\n' +
    '    "continuing_subword_prefix": "",\n    "end_of_word_suffix": "",\n' +
    '    "fuse_unk": false,\n    "byte_fallback": false,\n    "vocab": {' +
    vocab.map((t, id) => `\n${q(t)}: ${id}`).join(",") +
    "\n    },\n    \"merges\": [" + merges.map((m) => `\n${q(m)}`).join(",") +
    `${merges.length ? "\n    " : ""}]\n  }\n}\n`;
}

const out = process.argv[2];
if (!out) {
  console.error("usage: node tools/tiktoken_to_hf.js OUT.json [encoding (default r50k_base)]");
  process.exit(2);
}
const converted = convert(process.argv[3] || "r50k_base");
fs.writeFileSync(out, render(converted));
console.log(`${out}: ${converted.vocab.length} tokens, ${converted.merges.length} merges, ` +
            `${fs.statSync(out).size} bytes`);
