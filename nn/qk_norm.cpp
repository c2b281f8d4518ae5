// QK-norm (`model.qk_norm`): an RMSNorm over each head's queries and keys, right after their
// projections and before RoPE, with one weight vector of head_size shared by the heads (as Qwen3
// and Gemma 3 do; OLMo-2 normalises the whole projection instead). It bounds the attention logits,
// which keeps them from growing with the learning rate (Dehghani et al. 2023, Wortsman et al.
// 2023). The whole layer is this file: its row in the option table puts a "q_norm" and a "k_norm"
// into every attention layer when the option is on (docs/extending.md walks through it).
#include "nn/norm.h"
#include "nn/options.h"

namespace lmlab::nn {
namespace {

// y = x * rsqrt(mean(x^2) + eps) * weight over the head dim of q (B, H, T, HS) or k.
class HeadRmsNorm : public SiteLayer {
 public:
  explicit HeadRmsNorm(const ModelConfig& c) : eps_(c.norm_eps) {
    weight_ = register_parameter("weight", Tensor::ones({c.head_size()}));
  }
  Tensor forward(const Tensor& x) const override { return rms_norm(x, weight_, eps_); }

 private:
  Tensor weight_;
  double eps_;
};

std::shared_ptr<SiteLayer> make_head_norm(const ModelConfig& c, Generator&) {
  return std::make_shared<HeadRmsNorm>(c);
}

// Its row in the option table: a bool, off by default, that plugs a HeadRmsNorm in at the query
// and at the key site of every attention layer.
ModelOption qk_norm_option() {
  ModelOption o;
  o.name = "qk_norm";
  o.type = OptionType::Bool;
  o.default_value = false;
  o.doc = "RMSNorm per head on queries and keys, before RoPE (one weight of head size each)";
  o.plugs = {{Site::Query, "q_norm", make_head_norm}, {Site::Key, "k_norm", make_head_norm}};
  return o;
}

const RegisterModelOption kQkNorm(qk_norm_option());

}  // namespace
}  // namespace lmlab::nn
