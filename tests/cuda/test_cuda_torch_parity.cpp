// The whole TransformerLM on the GPU against the PyTorch fixtures in tests/fixtures/torch (read as
// tests/nn/test_torch_parity.cpp reads them): logits, loss, every gradient, and the 10-step AdamW +
// clipping loss trajectory, at the CPU test's tolerances.
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "nn/transformer.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/torch_fixtures.h"
#include "train/io/safetensors.h"

namespace lmlab::test {
namespace {
using namespace lmlab::train;  // the safetensors reader

namespace fs = std::filesystem;

nn::ModelConfig config_from(const SafeTensors& st) { return fixture_config(st); }

// The model of the fixture with its weights, on the GPU.
std::unique_ptr<nn::TransformerLM> gpu_model(const SafeTensors& st, nn::StateDict& weights) {
  Generator gen(7);
  auto model = std::make_unique<nn::TransformerLM>(config_from(st), gen);
  for (const auto& [name, t] : st.tensors)
    if (name.rfind("grad.", 0) == 0) weights[name.substr(5)] = st.at(name.substr(5));
  model->load_state_dict(weights, /*strict=*/true);
  model->to(Device::CUDA);
  return model;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.to_vector<float>()) m = std::max(m, double(std::fabs(v)));
  return m;
}

class CudaTorchParity : public CudaTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(CudaTorchParity, LogitsLossAndEveryGradientMatch) {
  const SafeTensors st = load_safetensors(GetParam());
  nn::StateDict weights;
  auto model = gpu_model(st, weights);
  const Tensor ids = st.at("ids").to(Device::CUDA), targets = st.at("targets").to(Device::CUDA);
  {
    NoGradGuard guard;
    EXPECT_TRUE(Close(model->forward(ids), st.at("logits"), 1e-5, "logits"));
  }
  Tensor loss = model->loss(ids, targets);
  const double want_loss = st.at("loss").item();
  EXPECT_NEAR(loss.item(), want_loss, 1e-5 * std::max(max_abs(st.at("logits")), want_loss));
  tape::backward(loss);
  double max_grad = 0;
  for (const auto& [name, w] : weights)
    max_grad = std::max(max_grad, max_abs(st.at("grad." + name)));
  for (const auto& [name, p] : model->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    const Tensor& want = st.at("grad." + name);
    // 1e-4 of the gradient's own max, floored at 1e-2 of the model's largest (as on the CPU)
    const double scale = std::max(max_abs(want), 1e-2 * max_grad);
    EXPECT_TRUE(
        Close(p.grad(), want, 1e-4 * scale / std::max(max_abs(want), 1e-30), "grad." + name));
  }
}

TEST_P(CudaTorchParity, AdamWLossTrajectoryMatches) {
  const SafeTensors st = load_safetensors(GetParam());
  nn::StateDict weights;
  auto model = gpu_model(st, weights);
  const std::vector<double> want = st.at("adamw_losses").to(DType::F64).to_vector<double>();
  auto opt_value = [&](const std::string& k) { return std::stod(st.metadata.at("adamw." + k)); };
  optim::AdamWOptions o;
  o.beta1 = opt_value("beta1");
  o.beta2 = opt_value("beta2");
  o.eps = opt_value("eps");
  o.weight_decay = opt_value("weight_decay");
  optim::AdamW opt(model->named_parameters(), o);
  const std::vector<Tensor> params = model->parameters();
  const Tensor ids = st.at("ids").to(Device::CUDA), targets = st.at("targets").to(Device::CUDA);
  for (size_t step = 0; step < want.size(); ++step) {
    Tensor loss = model->loss(ids, targets);
    EXPECT_NEAR(loss.item(), want[step], 1e-5 * std::abs(want[step])) << "step " << step;
    if (step + 1 == want.size()) break;
    tape::backward(loss);
    optim::clip_grad_norm(params, opt_value("grad_clip"));
    opt.step(opt_value("lr"));
    opt.zero_grad();
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = fs::path(info.param).stem().string();
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaTorchParity,
                         ::testing::ValuesIn(test::torch_fixture_files()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CudaTorchParity);

}  // namespace
}  // namespace lmlab::test
