// The tape (DESIGN.md section 3). Each differentiable op that runs in grad mode with an input that
// requires grad appends a Node: its name, the autograd slots of its inputs and output, and a
// backward rule (a lambda that captures only what it needs). backward(loss) seeds d(loss) = 1,
// finds the nodes the loss depends on (a reverse scan: recording order is a topological order),
// runs their rules in reverse, accumulates into the inputs' slots, and frees those nodes only:
// other graphs on the tape stay differentiable, as in PyTorch. A node whose output no tensor and
// no later node holds any more is dropped too (a graph built and abandoned never grows the tape).
// A backward that needs a node that is gone (freed by an earlier backward or tape::clear) throws,
// naming the op, before it computes any gradient: a gradient is never lost in silence.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "autograd/tensor.h"

namespace lmlab {

// The gradient slot of a tensor that requires grad. Nodes hold these (not the tensors), so the
// tape keeps alive only what a backward rule captured.
struct AutogradMeta {
  Tensor grad;                     // accumulated gradient (leaves keep it; intermediates drop it)
  bool is_leaf = true;             // created by the user, not by an op
  bool graph_freed = false;        // its producing node was freed by a backward without retain
  const char* producer = nullptr;  // name of the op that made it (for messages)
  uint64_t walk = 0;               // tape.cpp's: the last backward scan that reached this slot
};

using Grads = std::vector<Tensor>;  // one per input; undefined where no gradient flows
using BackwardFn = std::function<Grads(const Tensor& dy)>;

// A tensor saved for backward, with the version it had when saved. get() throws if it was
// modified in place since then ("[mul] a tensor saved for backward was modified in place").
// A tensor without an autograd slot yet (an op's own output, saved before record() gives it one)
// is held as a detached alias (same storage and version counter): a node must not keep its own
// output's slot, and so itself, alive. Inputs that require grad are held as they are.
class Saved {
 public:
  Saved() = default;
  explicit Saved(const Tensor& t)
      : t_(t.defined() && !t.requires_grad() ? t.detach() : t),
        version_(t.defined() ? t.version() : 0) {}
  const Tensor& get(const char* op) const;

 private:
  Tensor t_;
  uint64_t version_ = 0;
};

namespace tape {

// True unless a NoGradGuard is alive on this thread.
bool grad_enabled();
// Whether an op with these inputs should record (grad mode on and some input requires grad).
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);
// Appends a node if needs_grad(inputs); marks `output` as requiring grad with this node as
// producer.
void record(const char* name, const std::vector<Tensor>& inputs, const Tensor& output,
            BackwardFn backward);
// Called during a backward with a leaf's slot as soon as its gradient is final (after the last
// node that uses it ran), e.g. to start a data-parallel all-reduce of that gradient while the rest
// of the backward runs. Leaves the graph does not reach are not reported.
using LeafReadyHook = std::function<void(AutogradMeta& leaf)>;
// Backward from a scalar (1-element) loss. Runs and frees only the nodes the loss depends on
// (all of them are kept with retain_graph); throws "[backward] ..." naming the op when one of
// those nodes was already freed.
void backward(const Tensor& loss, bool retain_graph = false);
void backward(const Tensor& loss, const LeafReadyHook& on_leaf_ready);
// Backward from any root with an explicit upstream gradient of the root's shape.
void backward(const Tensor& root, const Tensor& droot, bool retain_graph = false,
              const LeafReadyHook& on_leaf_ready = {});
size_t size();  // nodes currently on this thread's tape (recorded, not yet freed or dropped)
void clear();   // drops all nodes (their outputs can no longer be differentiated)

}  // namespace tape

// Disables recording on this thread while alive (eval, optimizer steps, backward rules).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace lmlab
