// The tape: recording, the reverse walk, gradient accumulation and NoGradGuard.
#include "autograd/tape.h"

#include <unordered_map>

#include "autograd/ops.h"

namespace lmlab {

namespace {

struct Node {
  const char* name;
  std::vector<std::shared_ptr<AutogradMeta>> inputs;  // null where an input needs no grad
  std::vector<Shape> input_shapes;
  std::shared_ptr<AutogradMeta> output;
  BackwardFn backward;
};

thread_local std::vector<Node> g_tape;
thread_local bool g_grad_enabled = true;

// Adds g into a slot. Intermediate slots may alias (add's backward hands dy to both inputs), so
// they are combined out of place; a leaf's first gradient is copied, so the optimizer owns it.
void accumulate(AutogradMeta& slot, const Tensor& g) {
  if (!slot.grad.defined())
    slot.grad = slot.is_leaf ? clone(g) : g;
  else if (slot.is_leaf)
    slot.grad.add_(g);
  else
    slot.grad = add(slot.grad, g);
}

void free_tape() {
  for (Node& n : g_tape) n.output->graph_freed = true;
  g_tape.clear();
}

}  // namespace

const Tensor& Saved::get(const char* op) const {
  if (t_.defined() && t_.version() != version_)
    throw Error(std::string("[") + op + "] a tensor of shape " + to_string(t_.shape()) +
                " saved for backward was modified in place after it was saved (version " +
                std::to_string(t_.version()) + ", expected " + std::to_string(version_) +
                "); compute on a clone() instead");
  return t_;
}

namespace tape {

bool grad_enabled() { return g_grad_enabled; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}
bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}

void record(const char* name, const std::vector<Tensor>& inputs, const Tensor& output,
            BackwardFn backward) {
  if (!needs_grad(inputs)) return;
  Node node{name, {}, {}, std::make_shared<AutogradMeta>(), std::move(backward)};
  node.output->is_leaf = false;
  node.output->producer = name;
  for (const Tensor& t : inputs) {
    node.inputs.push_back(t.requires_grad() ? t.impl_ptr()->meta : nullptr);
    node.input_shapes.push_back(t.defined() ? t.shape() : Shape{});
  }
  output.impl_ptr()->meta = node.output;
  g_tape.push_back(std::move(node));
}

void backward(const Tensor& loss, bool retain_graph) {
  check_defined(loss, "backward", "loss");
  if (loss.numel() != 1)
    throw Error("[backward] loss must be a scalar (1 element), got shape " +
                to_string(loss.shape()) + "; pass an explicit gradient for non-scalar roots");
  backward(loss, Tensor::ones(loss.shape(), loss.dtype(), loss.device()), retain_graph);
}

void backward(const Tensor& loss, const LeafReadyHook& on_leaf_ready) {
  check_defined(loss, "backward", "loss");
  if (loss.numel() != 1)
    throw Error("[backward] loss must be a scalar (1 element), got shape " +
                to_string(loss.shape()) + "; pass an explicit gradient for non-scalar roots");
  backward(loss, Tensor::ones(loss.shape(), loss.dtype(), loss.device()), false, on_leaf_ready);
}

void backward(const Tensor& root, const Tensor& droot, bool retain_graph,
              const LeafReadyHook& on_leaf_ready) {
  check_defined(root, "backward", "root");
  if (!root.requires_grad())
    throw Error("[backward] the root of shape " + to_string(root.shape()) +
                " does not require grad: no input of the graph had requires_grad set");
  AutogradMeta& root_meta = *root.impl_ptr()->meta;
  if (root_meta.graph_freed)
    throw Error("[backward] the graph behind this tensor was freed by an earlier backward(); "
                "call backward(loss, /*retain_graph=*/true) the first time to run it twice");
  if (droot.shape() != root.shape())
    throw Error("[backward] gradient of shape " + to_string(droot.shape()) + " for a root of shape " +
                to_string(root.shape()));
  // Backward rules read the seed where the root lives (cross_entropy's GPU kernel reads it there).
  if (droot.dtype() != root.dtype() || droot.device() != root.device())
    throw Error("[backward] gradient is " + to_string(droot.dtype()) + " on " +
                to_string(droot.device()) + " for a root of shape " + to_string(root.shape()) +
                " that is " + to_string(root.dtype()) + " on " + to_string(root.device()));
  NoGradGuard guard;  // backward rules compute with ops, but never record
  if (root_meta.is_leaf) {
    accumulate(root_meta, droot);
    return;
  }
  accumulate(root_meta, droot);
  // With a hook: ready_after[i] lists the leaves whose first (in recording order) use is node i,
  // so whose gradient is final once the reverse walk has passed node i.
  std::vector<std::vector<AutogradMeta*>> ready_after;
  if (on_leaf_ready) {
    ready_after.resize(g_tape.size());
    std::unordered_map<AutogradMeta*, size_t> first_use;
    for (size_t i = 0; i < g_tape.size(); ++i)
      for (const auto& in : g_tape[i].inputs)
        if (in && in->is_leaf && first_use.emplace(in.get(), i).second) ready_after[i].push_back(in.get());
  }
  auto report = [&](size_t i) {
    if (on_leaf_ready)
      for (AutogradMeta* leaf : ready_after[i])
        if (leaf->grad.defined()) on_leaf_ready(*leaf);
  };
  for (auto it = g_tape.rbegin(); it != g_tape.rend(); ++it) {
    Node& node = *it;
    const size_t index = size_t(g_tape.rend() - it) - 1;
    Tensor dy = node.output->grad;
    if (!dy.defined()) {  // nothing flowed here: not on the path to the root
      report(index);
      continue;
    }
    if (!retain_graph) node.output->grad = Tensor();  // free intermediate grads as we go
    Grads grads = node.backward(dy);
    if (grads.size() != node.inputs.size())
      throw Error(std::string("[") + node.name + "] backward returned " +
                  std::to_string(grads.size()) + " gradients for " +
                  std::to_string(node.inputs.size()) + " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!node.inputs[i] || !grads[i].defined()) continue;
      if (grads[i].shape() != node.input_shapes[i])
        throw Error(std::string("[") + node.name + "] backward produced a gradient of shape " +
                    to_string(grads[i].shape()) + " for input " + std::to_string(i) +
                    " of shape " + to_string(node.input_shapes[i]));
      accumulate(*node.inputs[i], grads[i]);
    }
    report(index);
  }
  if (retain_graph) {
    for (Node& n : g_tape) n.output->grad = Tensor();
  } else {
    free_tape();
  }
}

size_t size() { return g_tape.size(); }
void clear() { free_tape(); }

}  // namespace tape

NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

}  // namespace lmlab
