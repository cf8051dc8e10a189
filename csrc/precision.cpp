// Numeric precision of the training step (src/train/precision.rs): libtorch's autocast to
// bfloat16 on the CPU or CUDA, with its weight-cast cache off, and the TF32 switches of cuDNN
// and cuBLAS. tch's `autocast` only toggles CUDA autocast at its default dtype (float16) and has
// no TF32 switch. Errors come back as a message (ffi_guard.h).
#include <cstdint>

#include "ffi_guard.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

namespace {
at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
}  // namespace

extern "C" {

// Enters autocast to bfloat16 for the CPU (cuda = 0) or CUDA (cuda = 1), as
// `torch.autocast(device, dtype=torch.bfloat16, cache_enabled=False).__enter__()`. The previous
// state goes to saved[0..3] (enabled, dtype, cache) for vae_tch_autocast_exit.
const char *vae_tch_autocast_enter(int cuda, int32_t *saved) {
  return vae_tch::guarded([&] {
    const auto dt = device_type(cuda);
    saved[0] = at::autocast::is_autocast_enabled(dt) ? 1 : 0;
    saved[1] = static_cast<int32_t>(at::autocast::get_autocast_dtype(dt));
    saved[2] = at::autocast::is_autocast_cache_enabled() ? 1 : 0;
    at::autocast::set_autocast_enabled(dt, true);
    at::autocast::set_autocast_dtype(dt, at::kBFloat16);
    at::autocast::set_autocast_cache_enabled(false);
    at::autocast::increment_nesting();
  });
}

// Leaves it, as `__exit__`: the cache is cleared when the outermost region ends, and the saved
// state comes back.
const char *vae_tch_autocast_exit(int cuda, const int32_t *saved) {
  return vae_tch::guarded([&] {
    const auto dt = device_type(cuda);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(dt, saved[0] != 0);
    at::autocast::set_autocast_dtype(dt, static_cast<at::ScalarType>(saved[1]));
    at::autocast::set_autocast_cache_enabled(saved[2] != 0);
  });
}

// Whether autocast is on for the device type (for tests).
int vae_tch_autocast_enabled(int cuda) {
  return at::autocast::is_autocast_enabled(device_type(cuda)) ? 1 : 0;
}

// torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32.
const char *vae_tch_set_tf32(int conv, int matmul) {
  return vae_tch::guarded([&] {
    at::globalContext().setAllowTF32CuDNN(conv != 0);
    at::globalContext().setAllowTF32CuBLAS(matmul != 0);
  });
}

const char *vae_tch_get_tf32(int *conv, int *matmul) {
  return vae_tch::guarded([&] {
    *conv = at::globalContext().allowTF32CuDNN() ? 1 : 0;
    *matmul = at::globalContext().allowTF32CuBLAS() ? 1 : 0;
  });
}
}
