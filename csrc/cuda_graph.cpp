// A C ABI around at::cuda::CUDAGraph for src/cuda_graph.rs: a side stream from the pool, a
// capture on it into a private memory pool, replay, free. PyTorch's whole-network recipe
// (torch/cuda/graphs.py, docs/source/notes/cuda.rst): warm up on the side stream, capture
// forward + backward + optimizer there, replay on any stream.
//
// Every function returns nullptr on success, else an error message that stays valid until the
// next call on the same thread; no C++ exception crosses the FFI. Stream switches synchronize
// the device (c10::cuda::device_synchronize) instead of recording events: they happen only
// around warm-up and capture, never per step, and this keeps the shim free of direct CUDA
// runtime calls (the binary links only libtorch's own libraries).
//
// Built without the CUDA headers (VAE_TCH_CUDA_GRAPHS undefined), every call but the probe
// returns an error that says so, and the trainer falls back to its eager step.
#include <exception>
#include <string>

#include "ffi_guard.h"

#ifdef VAE_TCH_CUDA_GRAPHS
#include <optional>

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {
using vae_tch::guarded;
using vae_tch::last_error;

#ifdef VAE_TCH_CUDA_GRAPHS
struct Graph {
  c10::DeviceIndex device;
  c10::cuda::CUDAStream side;
  std::optional<c10::cuda::CUDAStream> saved;
  at::cuda::CUDAGraph graph;
  bool captured = false;

  explicit Graph(c10::DeviceIndex d)
      : device(d), side(c10::cuda::getStreamFromPool(false, d)), graph() {}
};

Graph *as_graph(void *g) {
  if (g == nullptr) throw std::invalid_argument("null CUDA graph handle");
  return static_cast<Graph *>(g);
}
#endif
}  // namespace

extern "C" {

// The device's free memory in bytes (asked through libtorch's caching allocator, so the shim
// makes no CUDA runtime call of its own), for the sweep's memory estimate; 0 when unknown (no
// CUDA support compiled in, or no such device).
long long vae_tch_cuda_free_memory(int device) {
#ifdef VAE_TCH_CUDA_GRAPHS
  try {
    auto info = c10::cuda::CUDACachingAllocator::get()->getMemoryInfo(
        static_cast<c10::DeviceIndex>(device));
    return static_cast<long long>(info.first);
  } catch (...) {
    return 0;
  }
#else
  (void)device;
  return 0;
#endif
}

// 1 when the shim was compiled with CUDA graph support, 0 for the stub. Safe without a GPU.
int vae_tch_cuda_graph_supported() {
#ifdef VAE_TCH_CUDA_GRAPHS
  return 1;
#else
  return 0;
#endif
}

#ifdef VAE_TCH_CUDA_GRAPHS
const char *vae_tch_cuda_graph_new(int device, void **out) {
  return guarded([&] {
    *out = nullptr;
    *out = new Graph(static_cast<c10::DeviceIndex>(device));
  });
}

// Makes the side stream current on the graph's device (after the work queued so far is done).
const char *vae_tch_cuda_graph_side_begin(void *g) {
  return guarded([&] {
    Graph *s = as_graph(g);
    if (s->saved) throw std::logic_error("the side stream is already current");
    s->saved = c10::cuda::getCurrentCUDAStream(s->device);
    c10::cuda::device_synchronize();
    c10::cuda::setCurrentCUDAStream(s->side);
  });
}

// Waits for the side stream's work and makes the previous stream current again.
const char *vae_tch_cuda_graph_side_end(void *g) {
  return guarded([&] {
    Graph *s = as_graph(g);
    if (!s->saved) throw std::logic_error("the side stream is not current");
    c10::cuda::device_synchronize();
    c10::cuda::setCurrentCUDAStream(*s->saved);
    s->saved.reset();
  });
}

// Starts capturing on the side stream (which must be current) into a private memory pool.
const char *vae_tch_cuda_graph_capture_begin(void *g) {
  return guarded([&] {
    Graph *s = as_graph(g);
    if (!s->saved) throw std::logic_error("capture must run on the side stream");
    if (s->captured) throw std::logic_error("this graph is already captured");
    s->graph.capture_begin();
  });
}

const char *vae_tch_cuda_graph_capture_end(void *g) {
  return guarded([&] {
    Graph *s = as_graph(g);
    s->graph.capture_end();
    s->captured = true;
  });
}

// Replays the captured work on the current stream.
const char *vae_tch_cuda_graph_replay(void *g) {
  return guarded([&] {
    Graph *s = as_graph(g);
    if (!s->captured) throw std::logic_error("replay before capture");
    s->graph.replay();
  });
}

void vae_tch_cuda_graph_free(void *g) {
  if (g == nullptr) return;
  guarded([&] {
    Graph *s = static_cast<Graph *>(g);
    if (s->saved) c10::cuda::setCurrentCUDAStream(*s->saved);
    delete s;
  });
}
#else
static const char *unsupported() {
  last_error =
      "vae-tch was built without CUDA graph support (the CUDA runtime headers were missing at "
      "build time; scripts/setup.sh installs them)";
  return last_error.c_str();
}
const char *vae_tch_cuda_graph_new(int, void **out) {
  *out = nullptr;
  return unsupported();
}
const char *vae_tch_cuda_graph_side_begin(void *) { return unsupported(); }
const char *vae_tch_cuda_graph_side_end(void *) { return unsupported(); }
const char *vae_tch_cuda_graph_capture_begin(void *) { return unsupported(); }
const char *vae_tch_cuda_graph_capture_end(void *) { return unsupported(); }
const char *vae_tch_cuda_graph_replay(void *) { return unsupported(); }
void vae_tch_cuda_graph_free(void *) {}
#endif
}
