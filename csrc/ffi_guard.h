// The error convention of vae-tch's C shims: each call returns nullptr on success, else a
// message that stays valid until the next failing call on the same thread. No C++ exception
// crosses the FFI.
#pragma once
#include <exception>
#include <string>

namespace vae_tch {
inline thread_local std::string last_error;

template <typename F>
const char *guarded(F &&f) {
  try {
    f();
    return nullptr;
  } catch (const std::exception &e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return last_error.c_str();
}
}  // namespace vae_tch
