// libtorch's Kineto profiler for `vae-tch bench --profile` (src/train/profile.rs): every op on
// the CPU and, with CUPTI, every CUDA kernel, as torch.profiler records them. The events come
// back as text lines (device, thread, start, end, name) for the summary table, and the whole
// trace is saved as Chrome trace JSON (chrome://tracing, Perfetto, TensorBoard's profile
// plugin). Errors come back as a message (ffi_guard.h).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>
#include <string>

#include "ffi_guard.h"

#include <torch/csrc/autograd/profiler_kineto.h>

namespace prof = torch::profiler::impl;

extern "C" {

const char *vae_tch_profiler_start(int cuda) {
  return vae_tch::guarded([&] {
    std::set<prof::ActivityType> activities{prof::ActivityType::CPU};
    if (cuda) activities.insert(prof::ActivityType::CUDA);
    prof::ProfilerConfig config(prof::ProfilerState::KINETO);
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
  });
}

// Stops the profiler, saves the Chrome trace to `trace` (unless empty), and hands back the
// events as `cpu|cuda \t thread \t start_ns \t end_ns \t name` lines in *out (free with
// vae_tch_profiler_free).
const char *vae_tch_profiler_stop(const char *trace, char **out) {
  return vae_tch::guarded([&] {
    auto result = torch::autograd::profiler::disableProfiler();
    std::ostringstream lines;
    for (const auto &e : result->events()) {
      if (e.isHiddenEvent()) continue;
      std::string name = e.name();
      for (auto &c : name) {
        if (c == '\t' || c == '\n') c = ' ';
      }
      lines << (e.deviceType() == c10::DeviceType::CUDA ? "cuda" : "cpu") << '\t'
            << e.startThreadId() << '\t' << e.startNs() << '\t' << e.endNs() << '\t'
            << name << '\n';
    }
    if (trace && *trace) result->save(trace);
    const std::string text = lines.str();
    *out = static_cast<char *>(std::malloc(text.size() + 1));
    std::memcpy(*out, text.c_str(), text.size() + 1);
  });
}

void vae_tch_profiler_free(char *p) { std::free(p); }
}
