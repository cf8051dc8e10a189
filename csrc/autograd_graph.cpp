// The size of a tensor's autograd graph: how many backward nodes a backward pass from it runs
// (src/util/autograd.rs). The sweep's stacked step is tested to have as many nodes at K = 8 as
// at K = 1: one wider step, not K steps. Errors come back as a message (ffi_guard.h).
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "ffi_guard.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>

extern "C" {

const char *vae_tch_autograd_nodes(const void *tensor, int64_t *out) {
  return vae_tch::guarded([&] {
    const auto *t = static_cast<const at::Tensor *>(tensor);
    std::unordered_set<const torch::autograd::Node *> seen;
    std::vector<const torch::autograd::Node *> stack;
    if (auto fn = t->grad_fn()) stack.push_back(fn.get());
    while (!stack.empty()) {
      const auto *node = stack.back();
      stack.pop_back();
      if (!seen.insert(node).second) continue;
      for (const auto &edge : node->next_edges()) {
        if (edge.function) stack.push_back(edge.function.get());
      }
    }
    *out = static_cast<int64_t>(seen.size());
  });
}
}
