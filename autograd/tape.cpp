// The tape: recording, the reverse walk, gradient accumulation and NoGradGuard.
#include "autograd/tape.h"

#include <algorithm>
#include <atomic>
#include <unordered_set>

#include "autograd/autocast.h"
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
// Backward scans so far, on all threads (AutogradMeta::walk): a slot's mark is never mistaken for
// another thread's scan.
std::atomic<uint64_t> g_walks{0};
// record() drops abandoned nodes when the tape reaches this size, then sets it to twice what is
// left: amortised O(1) per node, and a tape never holds more than twice its live nodes.
constexpr size_t kPruneFloor = 4096;
thread_local size_t g_prune_at = kPruneFloor;

// Adds g into a slot. Intermediate slots may alias (add's backward hands dy to both inputs), so
// they are combined out of place; a leaf's first gradient must be its own (the optimizer and
// clipping write it in place): taken as it is when nothing else references its storage (a GEMM's
// fresh weight gradient), copied otherwise.
// bfloat16 has no elementwise kernels: its gradients are summed in float32 and rounded once.
void accumulate(AutogradMeta& slot, const Tensor& g) {
  if (!slot.grad.defined()) {
    slot.grad = !slot.is_leaf || g.sole_owner() ? g : clone(g);
  } else if (g.dtype() == DType::BF16 && slot.grad.dtype() == DType::BF16) {
    Tensor sum =
        to_dtype(add(to_dtype(slot.grad, DType::F32), to_dtype(g, DType::F32)), DType::BF16);
    if (slot.is_leaf)
      slot.grad.copy_(sum);
    else
      slot.grad = sum;
  } else if (slot.is_leaf) {
    slot.grad.add_(g);
  } else {
    slot.grad = add(slot.grad, g);
  }
}

// Removes the nodes flagged in `drop` (same length as the tape), keeping the others in order.
void erase_nodes(const std::vector<char>& drop) {
  size_t kept = 0;
  for (size_t i = 0; i < g_tape.size(); ++i) {
    if (drop[i]) {
      g_tape[i].output->graph_freed = true;
      continue;
    }
    if (kept != i) g_tape[kept] = std::move(g_tape[i]);
    ++kept;
  }
  g_tape.resize(kept);
}

// Frees every node: their outputs can no longer be differentiated.
void free_all() {
  for (Node& n : g_tape) n.output->graph_freed = true;
  g_tape.clear();
}

// Drops the nodes whose output slot only the node itself still holds: no tensor and no later
// node refers to it, so no backward can ever reach it. Scanned from the end, so dropping a node
// releases its inputs before the nodes that made them are looked at (a whole abandoned graph goes
// in one pass). A node never holds its own output slot: Saved detaches it (tape.h).
void drop_abandoned() {
  std::vector<char> drop(g_tape.size(), 0);
  bool any = false;
  for (size_t i = g_tape.size(); i-- > 0;) {
    Node& n = g_tape[i];
    if (n.output.use_count() != 1) continue;
    drop[i] = 1, any = true;
    n.inputs.clear();
    n.backward = nullptr;
  }
  if (any) erase_nodes(drop);
}

[[noreturn]] void throw_missing_node(const AutogradMeta& slot) {
  const std::string op = slot.producer ? slot.producer : "?";
  if (slot.graph_freed)
    throw Error("[backward] the loss depends on the output of '" + op +
                "', whose node an earlier "
                "backward() (or tape::clear()) already freed, so no gradient can flow through it; "
                "pass retain_graph=true to the first backward when two backwards share a graph, "
                "or run the forward again");
  throw Error("[backward] the loss depends on the output of '" + op +
              "', which is not on this "
              "thread's tape (recorded on another thread?); call backward on the thread that ran "
              "the forward");
}

// The tape indices of the nodes a backward from `root` runs, last first: a reverse scan (recording
// order is topological) that marks every slot the root depends on. Throws, before any gradient is
// computed, when a marked intermediate slot's node is not on the tape.
std::vector<size_t> nodes_reaching(AutogradMeta& root) {
  const uint64_t walk = ++g_walks;
  root.walk = walk;
  size_t unresolved = root.is_leaf ? 0 : 1;  // marked intermediate slots whose node is not met yet
  std::vector<size_t> order;
  for (size_t i = g_tape.size(); i-- > 0;) {
    Node& n = g_tape[i];
    if (n.output->walk != walk) continue;
    --unresolved;  // a node's output slot is its own: met once
    order.push_back(i);
    for (const auto& in : n.inputs) {
      if (!in || in->walk == walk) continue;
      in->walk = walk;
      if (!in->is_leaf) ++unresolved;
    }
  }
  if (unresolved == 0) return order;
  // Name the culprit: a marked intermediate slot that no scanned node produced.
  std::vector<const AutogradMeta*> made;
  for (size_t i : order) made.push_back(g_tape[i].output.get());
  auto missing = [&](const AutogradMeta* m) {
    return !m->is_leaf && std::find(made.begin(), made.end(), m) == made.end();
  };
  if (missing(&root)) throw_missing_node(root);
  for (size_t i : order)
    for (const auto& in : g_tape[i].inputs)
      if (in && missing(in.get())) throw_missing_node(*in);
  throw Error("[backward] internal error: an intermediate slot without its node");
}

// For a backward with a hook: ready_after[k] lists the leaves whose first use (in recording order)
// is the node order[k], so whose gradient is final once the reverse walk has passed that node.
std::vector<std::vector<AutogradMeta*>> leaves_ready_after(const std::vector<size_t>& order) {
  std::vector<std::vector<AutogradMeta*>> ready_after(order.size());
  std::unordered_set<AutogradMeta*> seen;
  for (size_t k = order.size(); k-- > 0;)
    for (const auto& in : g_tape[order[k]].inputs)
      if (in && in->is_leaf && seen.insert(in.get()).second) ready_after[k].push_back(in.get());
  return ready_after;
}

// Runs one node's rule on its output's gradient and accumulates into its inputs' slots. dy is
// dropped before the accumulation: a gradient that views dy's storage (a transpose's, a
// reshape's) is then its storage's only handle, which a leaf takes without a copy.
void run_node(Node& node, Tensor dy) {
  Grads grads = node.backward(dy);
  dy = Tensor();
  if (grads.size() != node.inputs.size())
    throw Error(std::string("[") + node.name + "] backward returned " +
                std::to_string(grads.size()) + " gradients for " +
                std::to_string(node.inputs.size()) + " inputs");
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!node.inputs[i] || !grads[i].defined()) continue;
    if (grads[i].shape() != node.input_shapes[i])
      throw Error(std::string("[") + node.name + "] backward produced a gradient of shape " +
                  to_string(grads[i].shape()) + " for input " + std::to_string(i) + " of shape " +
                  to_string(node.input_shapes[i]));
    accumulate(*node.inputs[i], grads[i]);
  }
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
  if (g_tape.size() >= g_prune_at) {
    drop_abandoned();
    g_prune_at = std::max(kPruneFloor, 2 * g_tape.size());
  }
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
    throw Error(
        "[backward] the graph behind this tensor was freed by an earlier backward(); "
        "call backward(loss, /*retain_graph=*/true) the first time to run it twice");
  if (droot.shape() != root.shape())
    throw Error("[backward] gradient of shape " + to_string(droot.shape()) +
                " for a root of shape " + to_string(root.shape()));
  // Backward rules read the seed where the root lives (cross_entropy's GPU kernel reads it there).
  if (droot.dtype() != root.dtype() || droot.device() != root.device())
    throw Error("[backward] gradient is " + to_string(droot.dtype()) + " on " +
                to_string(droot.device()) + " for a root of shape " + to_string(root.shape()) +
                " that is " + to_string(root.dtype()) + " on " + to_string(root.device()));
  NoGradGuard guard;                      // backward rules compute with ops, but never record
  AutocastGuard no_autocast(DType::F32);  // rules keep the dtypes their forward chose
  const std::vector<size_t> order = nodes_reaching(root_meta);
  accumulate(root_meta, droot);
  if (root_meta.is_leaf) return;
  std::vector<std::vector<AutogradMeta*>> ready_after;
  if (on_leaf_ready) ready_after = leaves_ready_after(order);
  for (size_t k = 0; k < order.size(); ++k) {
    Node& node = g_tape[order[k]];
    Tensor dy = node.output->grad;
    if (dy.defined()) {  // undefined: no gradient flowed here (e.g. through an integer path)
      if (!retain_graph) node.output->grad = Tensor();  // free intermediate grads as we go
      run_node(node, std::move(dy));
    }
    if (on_leaf_ready)
      for (AutogradMeta* leaf : ready_after[k])
        if (leaf->grad.defined()) on_leaf_ready(*leaf);
  }
  for (size_t i : order) g_tape[i].output->grad = Tensor();
  if (!retain_graph && order.size() == g_tape.size()) {  // the usual step: the whole tape
    free_all();
  } else if (!retain_graph) {
    std::vector<char> drop(g_tape.size(), 0);
    for (size_t i : order) drop[i] = 1;
    erase_nodes(drop);
  }
  if (!g_tape.empty()) drop_abandoned();
}

size_t size() { return g_tape.size(); }
void clear() { free_all(); }

}  // namespace tape

NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

}  // namespace lmlab
