#!/usr/bin/env python3
"""The reference for lmlab's BPE training (Bpe::train, data/bpe_train.cpp): the plain algorithm,
recounting every pair after every merge, on an ASCII text. Writes
tests/fixtures/bpe/train_reference.json ({"text", "vocab_size", "merges"}), which
tests/data/test_bpe.cpp requires lmlab's incremental trainer to reproduce merge for merge.

  python3 tools/bpe_train_reference.py tests/fixtures/bpe/train_reference.json

The rules, as lmlab's: GPT-2's pre-tokenization (for ASCII text \\p{L} is [A-Za-z] and \\p{N} is
[0-9]; whitespace is spelt out because Python's \\s also matches U+001C..U+001F), pieces counted;
then, while the vocabulary has room, the most frequent adjacent pair is merged everywhere (left to
right, without overlaps), ties going to the smaller (left bytes, right bytes); a pair whose bytes
are already a token merges into that token without a new entry; stop below 2 occurrences. Merges
are written as tokenizer.json writes them (GPT-2's byte-to-unicode alphabet).
"""
import collections
import json
import re
import sys

CORPUS = "/usr/share/games/fortunes"
FILES = ["computers", "linux", "science"]  # a slice of each: prose, code-ish text, numbers
SLICE = 7000
VOCAB_SIZE = 256 + 300 + 1

WS = r"[ \t\n\r\x0b\x0c]"
PATTERN = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^ \t\n\r\x0b\x0cA-Za-z0-9]+"
                     rf"|{WS}+(?!(?:(?!{WS}).))|{WS}+", re.DOTALL)


def corpus_text() -> str:
    parts = []
    for name in FILES:
        with open(f"{CORPUS}/{name}", encoding="utf-8") as f:
            text = f.read()[:SLICE]
        parts.append(text[: text.rfind("\n") + 1])
    text = "".join(parts)
    return "".join(c for c in text if 0x20 <= ord(c) < 0x7F or c in "\t\n")


def train(text: str, vocab_size: int):
    counts = collections.Counter(m.group(0) for m in PATTERN.finditer(text))
    assert "".join(m.group(0) for m in PATTERN.finditer(text)) == text
    words = [[bytes([b]) for b in w.encode()] for w in sorted(counts)]
    freq = [counts[w] for w in sorted(counts)]
    vocab = {bytes([b]) for b in range(256)}
    merges = []
    while 256 + len(merges) < vocab_size - 1:
        pairs = collections.Counter()
        for w, c in zip(words, freq):
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p[0], p[1]))
        if pairs[best] < 2:
            break
        made = best[0] + best[1]
        if made not in vocab:
            vocab.add(made)
            merges.append(best)
        words = [merge_word(w, best, made) for w in words]
    return merges


def merge_word(w, pair, made):
    out, k = [], 0
    while k < len(w):
        if k + 1 < len(w) and (w[k], w[k + 1]) == pair:
            out.append(made)
            k += 2
        else:
            out.append(w[k])
            k += 1
    return out


def byte_level(b: bytes) -> str:
    table, n = {}, 256
    for x in range(256):
        if 0x21 <= x <= 0x7E or 0xA1 <= x <= 0xAC or x >= 0xAE:
            table[x] = chr(x)
        else:
            table[x] = chr(n)
            n += 1
    return "".join(table[x] for x in b)


def main() -> None:
    text = corpus_text()
    merges = train(text, VOCAB_SIZE)
    out = {"generator": "tools/bpe_train_reference.py", "vocab_size": VOCAB_SIZE, "text": text,
           "merges": [byte_level(a) + " " + byte_level(b) for a, b in merges]}
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"{sys.argv[1]}: {len(text)} bytes of text, {len(merges)} merges")


if __name__ == "__main__":
    main()
