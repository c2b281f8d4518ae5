// Tests of KV-cached decoding: for MHA, GQA and MQA with learned positions or RoPE, pre- or
// post-norm, cached logits (one token at a time, or in chunks) equal the full forward's; the
// cache's size in bytes; and the errors when a cache or block_size would overflow.
#include "nn/transformer.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::nn;

namespace {

constexpr int64_t kB = 2, kT = 8;

ModelConfig config(int64_t n_kv_head, PositionType pos, NormPlacement pl) {
  ModelConfig c;
  c.vocab_size = 13;
  c.block_size = kT;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = n_kv_head;
  c.n_embd = 16;
  c.position = pos;
  c.norm_placement = pl;
  c.init_std = 0.1;  // attention far from uniform, so a wrong position or key would show
  return c;
}

Tensor random_ids(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  std::vector<int32_t> v(size_t(B * T));
  for (size_t i = 0; i < v.size(); ++i) v[i] = int32_t(random_bits(seed, i) % uint64_t(V));
  return Tensor::from_vector(v, {B, T});
}

// Feeds ids through the cache in chunks of the given sizes and joins the logits along T.
Tensor decode_in_chunks(const TransformerLM& m, const Tensor& ids,
                        const std::vector<int64_t>& chunks) {
  KVCache cache = m.make_cache(ids.size(0));
  std::vector<Tensor> parts;
  int64_t t = 0;
  for (int64_t n : chunks) {
    Tensor out = m.forward_cached(narrow(ids, 1, t, n).contiguous(), cache);
    EXPECT_FALSE(out.requires_grad());
    EXPECT_EQ(out.shape(), (Shape{ids.size(0), n, m.config().vocab_size}));
    parts.push_back(out);
    t += n;
    EXPECT_EQ(cache.length, t);
  }
  return concat(parts, 1);
}

}  // namespace

TEST(NnKvCache, CachedLogitsMatchFullForward) {
  for (int64_t kvh : {4, 2, 1})
    for (PositionType pos : {PositionType::Learned, PositionType::Rope})
      for (NormPlacement pl : {NormPlacement::Pre, NormPlacement::Post}) {
        const ModelConfig c = config(kvh, pos, pl);
        Generator gen(11);
        TransformerLM m(c, gen);
        m.eval();
        const Tensor ids = random_ids(kB, kT, c.vocab_size, 5);
        NoGradGuard guard;
        const Tensor full = m.forward(ids);
        ASSERT_GT(test::max_abs_diff(full, mul(full, 0.0)), 0.1);  // logits are not trivial
        const std::string what =
            "n_kv_head " + std::to_string(kvh) + " " + to_string(pos) + " " + to_string(pl);
        const Tensor one_by_one = decode_in_chunks(m, ids, {1, 1, 1, 1, 1, 1, 1, 1});
        EXPECT_LT(test::max_abs_diff(one_by_one, full), 1e-5) << what;
        const Tensor chunked = decode_in_chunks(m, ids, {3, 1, 4});
        EXPECT_LT(test::max_abs_diff(chunked, full), 1e-5) << what;
        const Tensor whole = decode_in_chunks(m, ids, {kT});
        EXPECT_LT(test::max_abs_diff(whole, full), 1e-5) << what;
      }
}

// The cache only ever sees the prefix: decoding a prefix matches the full forward of that prefix,
// and the untouched tail of the cache stays zero.
TEST(NnKvCache, PartialDecodeMatchesPrefix) {
  const ModelConfig c = config(2, PositionType::Rope, NormPlacement::Pre);
  Generator gen(12);
  TransformerLM m(c, gen);
  const Tensor ids = random_ids(kB, 5, c.vocab_size, 6);
  NoGradGuard guard;
  KVCache cache = m.make_cache(kB);
  m.forward_cached(narrow(ids, 1, 0, 2).contiguous(), cache);
  const Tensor tail = m.forward_cached(narrow(ids, 1, 2, 3).contiguous(), cache);
  EXPECT_LT(test::max_abs_diff(tail, narrow(m.forward(ids), 1, 2, 3)), 1e-5);
  for (const LayerKV& l : cache.layers) {
    const Tensor unused = narrow(l.k, 2, 5, kT - 5);
    EXPECT_EQ(test::max_abs_diff(unused, mul(unused, 0.0)), 0.0);
    EXPECT_GT(test::max_abs_diff(narrow(l.v, 2, 0, 5), mul(narrow(l.v, 2, 0, 5), 0.0)), 0.0);
  }
}

// bytes = 2 (k and v) * n_layer * B * n_kv_head * max_T * head_size * sizeof(float).
TEST(NnKvCache, BytesFormulaAndGqaSaving) {
  int64_t mha_bytes = 0;
  for (int64_t kvh : {4, 2, 1}) {
    const ModelConfig c = config(kvh, PositionType::Rope, NormPlacement::Pre);
    Generator gen(1);
    TransformerLM m(c, gen);
    const KVCache cache = m.make_cache(3, 6);
    ASSERT_EQ(int64_t(cache.layers.size()), c.n_layer);
    EXPECT_EQ(cache.layers[0].k.shape(), (Shape{3, kvh, 6, c.head_size()}));
    EXPECT_EQ(cache.bytes(), 2 * c.n_layer * 3 * kvh * 6 * c.head_size() * 4);
    if (kvh == 4) mha_bytes = cache.bytes();
    EXPECT_EQ(mha_bytes, cache.bytes() * (c.n_head / kvh));
    EXPECT_EQ(m.make_cache(1).bytes(), 2 * c.n_layer * kvh * kT * c.head_size() * 4);
  }
}

TEST(NnKvCache, OverflowIsAClearError) {
  const ModelConfig c = config(2, PositionType::Learned, NormPlacement::Pre);
  Generator gen(1);
  TransformerLM m(c, gen);
  const Tensor ids = random_ids(kB, kT, c.vocab_size, 7);
  EXPECT_TRUE(test::ThrowsWith([&] { m.make_cache(kB, kT + 1); },
                               {"[model]", "KV cache of 9 positions", "block_size 8"}));

  KVCache small = m.make_cache(kB, 4);
  m.forward_cached(narrow(ids, 1, 0, 3).contiguous(), small);
  EXPECT_TRUE(test::ThrowsWith([&] { m.forward_cached(narrow(ids, 1, 3, 2).contiguous(), small); },
                               {"KV cache holds 4 positions", "5 requested"}));

  KVCache full = m.make_cache(kB);
  m.forward_cached(ids, full);
  EXPECT_TRUE(test::ThrowsWith([&] { m.forward_cached(narrow(ids, 1, 0, 1).contiguous(), full); },
                               {"[model]", "sequence length 9", "block_size 8"}));

  KVCache empty;
  EXPECT_TRUE(test::ThrowsWith([&] { m.forward_cached(ids, empty); },
                               {"[model]", "KV cache has 0 layers", "2", "make_cache"}));

  KVCache other = m.make_cache(3);
  EXPECT_TRUE(test::ThrowsWith([&] { m.forward_cached(ids, other); }, {"[model]", "batch 2", "3"}));
}

// A RoPE model has no position table, so the block_size check is what stops decoding.
TEST(NnKvCache, RopeModelStopsAtBlockSize) {
  const ModelConfig c = config(1, PositionType::Rope, NormPlacement::Post);
  Generator gen(1);
  TransformerLM m(c, gen);
  KVCache cache = m.make_cache(1);
  const Tensor one = Tensor::from_vector(std::vector<int32_t>{3}, {1, 1});
  for (int64_t t = 0; t < kT; ++t) m.forward_cached(one, cache);
  EXPECT_TRUE(test::ThrowsWith([&] { m.forward_cached(one, cache); },
                               {"[model]", "sequence length 9", "block_size 8"}));
  EXPECT_EQ(cache.length, kT);
}
