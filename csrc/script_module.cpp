// TorchScript modules built in C++, for the exports (src/script.rs): a torch::jit::Module with
// real parameters (they require grad), submodules, a `training` attribute, and methods compiled
// from TorchScript source (Module::define). Python loads the saved file with torch.jit.load and
// gets named_parameters(), a nested state_dict(), .train()/.eval(), .double(), and code a reader
// recognises. Recipe and pitfalls: ../shared/libtorch-recipes.md, "TorchScript modules built in
// C++".
//
// Every function returns nullptr on success, else an error message that stays valid until the
// next call on the same thread; no C++ exception crosses the FFI.
#include <exception>
#include <string>

#include "ffi_guard.h"
#include <unordered_map>

#include <torch/csrc/jit/api/module.h>

namespace {
using vae_tch::guarded;
using vae_tch::last_error;

torch::jit::Module *as_module(void *m) {
  if (m == nullptr) throw std::invalid_argument("null module handle");
  return static_cast<torch::jit::Module *>(m);
}
}  // namespace

extern "C" {

// A new module of class `__torch__.<qualified_name>` with `training` registered (true, as a
// fresh torch.nn.Module).
const char *vae_tch_script_new(const char *qualified_name, void **out) {
  return guarded([&] {
    *out = nullptr;
    auto *m = new torch::jit::Module(c10::QualifiedName(std::string("__torch__.") + qualified_name));
    m->register_attribute("training", c10::BoolType::get(), true);
    *out = m;
  });
}

// A copy of `tensor` (a tch tensor: at::Tensor*) as parameter `name`, requiring grad.
const char *vae_tch_script_add_parameter(void *m, const char *name, const void *tensor) {
  return guarded([&] {
    const auto *t = static_cast<const at::Tensor *>(tensor);
    as_module(m)->register_parameter(name, t->detach().clone().set_requires_grad(true), false);
  });
}

// A copy of `tensor` as buffer `name` (state, not trained: BatchNorm's moving statistics).
const char *vae_tch_script_add_buffer(void *m, const char *name, const void *tensor) {
  return guarded([&] {
    const auto *t = static_cast<const at::Tensor *>(tensor);
    as_module(m)->register_buffer(name, t->detach().clone());
  });
}

const char *vae_tch_script_add_module(void *m, const char *name, void *child) {
  return guarded([&] { as_module(m)->register_module(name, *as_module(child)); });
}

const char *vae_tch_script_add_bool(void *m, const char *name, int value) {
  return guarded([&] {
    as_module(m)->register_attribute(name, c10::BoolType::get(), value != 0);
  });
}

// Compiles TorchScript source (one or more `def name(self, ...)`) into methods of `m`.
const char *vae_tch_script_define(void *m, const char *source) {
  return guarded([&] { as_module(m)->define(source); });
}

// Saves `m` in eval mode (training = false on it and every submodule, as from_pretrained
// returns the PyTorch module: `vae(x)` must not run dropout or move BatchNorm's statistics;
// `.train()` turns training on for fine-tuning) with `n` extra files (name -> bytes), which
// Python reads with torch.jit.load(path, _extra_files={name: ""}).
const char *vae_tch_script_save(void *m, const char *path, int n, const char **names,
                                const char **contents, const size_t *lengths) {
  return guarded([&] {
    as_module(m)->eval();
    torch::jit::ExtraFilesMap extra;
    for (int i = 0; i < n; ++i) extra[names[i]] = std::string(contents[i], lengths[i]);
    as_module(m)->save(path, extra);
  });
}

void vae_tch_script_free(void *m) { delete static_cast<torch::jit::Module *>(m); }
}
