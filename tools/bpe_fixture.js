#!/usr/bin/env node
// Writes tests/fixtures/bpe/r50k_cases.json: texts and the ids js-tiktoken's r50k_base gives them,
// which tests/data/test_bpe.cpp requires lmlab's Bpe to reproduce id for id. Run at fixture time
// only (tests need neither node nor the network):
//
//   npm install --prefix /tmp/tk js-tiktoken
//   NODE_PATH=/tmp/tk/node_modules node tools/bpe_fixture.js tests/fixtures/bpe/r50k_cases.json
//
// The texts: a slice of every file of the default corpus (Debian's fortunes: the first ~1.2 KB of
// each of its 43 files, cut at a line end, ~50 KB in all, so that every file's kind of text is
// there), hand-written edge cases (Unicode scripts, emoji and joiners, combining marks, RTL,
// whitespace runs, digits, contractions, special tokens, long pieces) and seeded random strings
// over an alphabet of the regex's tricky characters. The whole corpus is checked too, without
// storing it: per file, the number of ids and a 64-bit FNV-1a hash of them (4 little-endian
// bytes each), which the test recomputes when the corpus is installed.
//
// Every character of the stored texts must get the same class (\s, \p{L}, \p{N}, other) from
// node's regex engine as from data/unicode_tables.h (Python's Unicode version), else the script
// stops: ids that depend on the Unicode version or on JS's \s (U+FEFF is JS whitespace, U+0085 is
// not; tiktoken's Rust regex says the opposite) do not belong in an identity fixture.
"use strict";
const fs = require("fs");
const path = require("path");
const { DEFAULT_CORPUS, corpusFiles, r50k } = require("./tiktoken_corpus.js");

const SLICE_BYTES = 1200;
const RANDOM_CASES = 120;

// ---- the classes of data/unicode_tables.h, to compare with node's ----
function tableClasses() {
  const header = fs.readFileSync(path.join(__dirname, "..", "data", "unicode_tables.h"), "utf8");
  const array = (name) => header.match(new RegExp(`${name}\\[kRangeCount\\] = \\{([^}]*)\\}`))[1]
    .split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const starts = array("kRangeStarts"), classes = array("kRangeClasses");
  return (cp) => {
    let lo = 0, hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= cp) lo = mid; else hi = mid - 1;
    }
    return classes[lo];
  };
}
function nodeClass(ch) {
  if (/\s/u.test(ch)) return 3;
  if (/\p{L}/u.test(ch)) return 1;
  if (/\p{N}/u.test(ch)) return 2;
  return 0;
}
// The characters of `text` whose class differs between node and the table.
function classMismatches(text, tableClass) {
  const bad = new Set();
  for (const ch of text)
    if (nodeClass(ch) !== tableClass(ch.codePointAt(0)))
      bad.add("U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0"));
  return [...bad];
}

// ---- the texts ----
function fortuneSlices(files) {
  return files.map(({ name, text }) => {
    const bytes = Buffer.from(text, "utf8");
    let end = Math.min(bytes.length, SLICE_BYTES);
    const nl = bytes.lastIndexOf(0x0a, end - 1);
    if (end < bytes.length && nl > 0) end = nl + 1;
    return { name: `fortunes/${name}`, text: bytes.subarray(0, end).toString("utf8") };
  });
}

const EDGE_CASES = [
  ["empty", ""],
  ["hello", "Hello, world!"],
  ["spaces/leading", " leading space"],
  ["spaces/two-leading", "  two leading spaces"],
  ["spaces/trailing", "trailing spaces   "],
  ["spaces/only", "     "],
  ["spaces/between", "a b  c   d    e"],
  ["spaces/before-word-run", "x" + " ".repeat(20) + "y"],
  ["spaces/before-digits-and-punct", "a  1  !  ' b"],
  ["tabs", "\tone\t\ttwo\t \tthree \t"],
  ["newlines", "line one\nline two\n\nline four\n\n\n"],
  ["newlines/only", "\n\n\n"],
  ["crlf", "windows\r\nline\r\n\r\nend\r\n"],
  ["mixed-whitespace", "a \t\n b \n\t c\u000b\u000cd"],
  ["space-newline-word", "a \nb \n c\n  d"],
  ["unicode-spaces", "nbsp\u00a0here ideographic\u3000space thin\u2009space narrow\u202fnbsp"],
  ["unicode-spaces/runs", "a\u00a0\u00a0b\u2003\u2003 c \u3000\u3000d\u2028e\u2029f\u205fg\u1680h"],
  ["info-separators", "a\u001cb\u001dc\u001ed\u001ff (not whitespace)"],
  ["control", "bell\u0007 esc\u001b[1mbold\u001b[0m del\u007f nul-free"],
  ["digits", "0 1 12 123 1234 12345 123456 1234567890"],
  ["digits/long", "9".repeat(300)],
  ["digits/decimals", "3.14159 2,718 1,000,000 -42 +7 1e10 0x1F 0b1010"],
  ["digits/mixed", "abc123def 123abc a1b2c3 R2D2 covid19 mp3 4x4"],
  ["digits/dates", "2024-01-01 12:34:56 10/20/30"],
  ["digits/unicode", "٣٤٥ ५६७ ½ ¾ ² ³ Ⅻ ⅷ ① ⑳ 〇"],
  ["contractions", "I'm you're we've they'll she'd it's don't can't won't"],
  ["contractions/upper", "I'M YOU'RE WE'VE THEY'LL SHE'D IT'S DON'T 'S 'T 'RE"],
  ["contractions/bare", "'s 't 're 've 'm 'll 'd ' '' ''' '''s 'x 'ss"],
  ["contractions/curly", "it’s don’t you’re ‘quoted’ “double”"],
  ["contractions/odd", "rock'n'roll ma'am o'clock O'Neil's l'l 'll've y'all''"],
  ["contractions/after-space", " 's  't x 're"],
  ["latin", "héllo wörld naïve café façade Ærøskøbing straße"],
  ["combining", "e\u0301 a\u0300 n\u0303o\u0308 Z\u0351\u0364a\u036d\u0311lgo"],
  ["cjk", "日本語のテキストです。中文字符，한국어 문장."],
  ["cyrillic-greek", "Привет, мир! Ελληνικά κείμενα."],
  ["rtl", "שלום עולם مرحبا بالعالم"],
  ["indic-thai", "नमस्ते दुनिया สวัสดีชาวโลก"],
  ["emoji", "😀 👍🏽 🎉🎉 ❤️ 🇫🇷🇩🇪"],
  ["emoji/zwj", "👨‍👩‍👧‍👦 family 👩🏽‍💻 coder a\u200db\u200cc"],
  ["astral-letters", "𝐀𝐁𝐂 𐍈𐌰 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"],
  ["titlecase", "ǅemal ǈubljana ǋ"],
  ["math-symbols", "∑∞≠√∫ Ω≈ç «»¿¡ §¶†‡ €£¥"],
  ["mixed-scripts", "abc日本def Привет123мир 😀x"],
  ["punctuation-runs", "!!! ??? ... --- *** ===" + "=".repeat(80) + " ()[]{}<>"],
  ["long-word", "supercalifragilisticexpialidocious".repeat(4)],
  ["long-letter-run", "a".repeat(200)],
  ["long-spaces", " ".repeat(100) + "x" + " ".repeat(70)],
  ["long-newlines", "\n".repeat(70) + "end"],
  ["code", "for (int i = 0; i < n; ++i) {\n    x += i; // sum\n}\n"],
  ["code/python", "def f(x):\n\treturn x**2  # square\n"],
  ["url", "https://example.com/a/b?c=d&e=f#g mailto:someone@example.org"],
  ["special/plain", "text <|endoftext|> more"],
  ["special/partial", "<|endoftext <|endoftext| endoftext|> <||>"],
];

const SPECIAL_CASES = [
  ["special/allowed", "text <|endoftext|> more"],
  ["special/allowed-adjacent", "a<|endoftext|>b<|endoftext|><|endoftext|>c"],
  ["special/allowed-edges", "<|endoftext|> start and end <|endoftext|>"],
  ["special/allowed-only", "<|endoftext|>"],
  ["special/allowed-spaces", "  <|endoftext|>  \n<|endoftext|>\n"],
];

// Seeded random strings over the regex's tricky characters (mulberry32).
function randomCases() {
  let seed = 20240607;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const alphabet = [..."  \t\n\r'''sStTmdlrve aA zZ 0 9 .,!?-_\"()é日😀\u00a0\u3000\u0301٣½"];
  const out = [];
  for (let k = 0; k < RANDOM_CASES; ++k) {
    const n = 1 + Math.floor(rand() * 60);
    let s = "";
    for (let i = 0; i < n; ++i) s += alphabet[Math.floor(rand() * alphabet.length)];
    out.push([`random/${k}`, s]);
  }
  return out;
}

// ---- the whole corpus, as counts and hashes ----
function fnv1a64(ids) {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n, mask = (1n << 64n) - 1n;
  for (const id of ids)
    for (let k = 0; k < 4; ++k) h = ((h ^ BigInt((id >>> (8 * k)) & 0xff)) * prime) & mask;
  return h.toString(16).padStart(16, "0");
}

function main() {
  const out = process.argv[2];
  if (!out) {
    console.error("usage: node tools/bpe_fixture.js OUT.json");
    process.exit(2);
  }
  const { enc, version } = r50k();
  const tableClass = tableClasses();
  const files = corpusFiles();
  const cases = [];
  const add = (name, text, allowed) => {
    const bad = classMismatches(text, tableClass);
    if (bad.length) throw new Error(`${name}: node and data/unicode_tables.h disagree on ${bad}`);
    const ids = allowed ? enc.encode(text, "all") : enc.encode(text, [], []);
    cases.push({ name, allowed_special: allowed, text, ids });
  };
  for (const { name, text } of fortuneSlices(files)) add(name, text, false);
  for (const [name, text] of EDGE_CASES) add(name, text, false);
  for (const [name, text] of SPECIAL_CASES) add(name, text, true);
  for (const [name, text] of randomCases()) add(name, text, false);
  const corpus = files.map(({ name, text }) => {
    const bad = classMismatches(text, tableClass);
    if (bad.length) return { name, skip: `node and the table disagree on ${bad}` };
    const ids = enc.encode(text, [], []);
    return { name, bytes: Buffer.byteLength(text), tokens: ids.length, fnv1a64: fnv1a64(ids) };
  });
  const q = JSON.stringify;
  const lines = [
    "{",
    `  "encoding": "r50k_base", "generator": "tools/bpe_fixture.js", "js_tiktoken": ${q(version)},`,
    `  "corpus_path": ${q(DEFAULT_CORPUS)},`,
    '  "corpus": [',
    corpus.map((c) => "    " + q(c)).join(",\n"),
    "  ],",
    '  "cases": [',
    cases.map((c) => "    " + q(c)).join(",\n"),
    "  ]",
    "}",
  ];
  fs.writeFileSync(out, lines.join("\n") + "\n");
  const tokens = cases.reduce((n, c) => n + c.ids.length, 0);
  console.log(`${out}: ${cases.length} cases, ${tokens} ids, corpus ${corpus.length} files, ` +
              `${fs.statSync(out).size} bytes`);
}

main();
