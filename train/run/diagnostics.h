// Per-layer training diagnostics (docs/ablations.md): the quantities behind Xiong et al. 2020's
// Pre-/Post-Norm analysis, taken at every evaluation step and at step 0.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/transformer.h"

namespace lmlab::train {

// One row of diagnostics.csv: block `layer` at optimizer step `step`.
struct LayerDiagnostics {
  int64_t layer = 0;
  double grad_norm = 0;     // ||grad|| over the block's parameters, before clipping
  double residual_rms = 0;  // sqrt(mean(h^2)) of the residual stream after the block
  double weight_norm = 0;   // ||w|| over the block's parameters, before the update
  double update_ratio = 0;  // ||w_after - w_before|| / ||w_before|| for this step's update
};

// Index of the block a parameter name belongs to ("blocks.3.attn.wq.weight" -> 3), or -1 for
// parameters outside the blocks (embeddings, the final norm, an untied head).
int64_t block_of(const std::string& param_name);

// Takes the diagnostics of one step in three stages around the optimizer update:
//   before(model, ids)  after backward, before clipping: grad norms, weight norms, residual RMS
//                       (a no-grad forward of `ids`, a fixed batch so steps compare);
//   after(model)        after the optimizer step: update/weight ratios.
class DiagnosticsProbe {
 public:
  void before(const nn::TransformerLM& model, const Tensor& ids);
  std::vector<LayerDiagnostics> after(const nn::TransformerLM& model);

 private:
  std::vector<LayerDiagnostics> rows_;
  std::vector<Tensor> snapshot_;  // parameter values before the update (block parameters only)
};

// The CSV header and rows of <run_dir>/diagnostics.csv.
inline constexpr const char* kDiagnosticsHeader =
    "step,layer,grad_norm,residual_rms,weight_norm,update_ratio";
std::string diagnostics_rows(int64_t step, const std::vector<LayerDiagnostics>& rows);

}  // namespace lmlab::train
