// What both C shims (shim.cpp, c10d.cpp) share at the C boundary: exceptions become malloc'ed
// messages (freed by the Rust side through the shim's free function), and tch handles become
// at::Tensor references. In its own namespace, inline: each shim is compiled on its own.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace ijepa_ffi {

// A malloc'ed, NUL-terminated copy of `s`.
inline char* dup(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p != nullptr) {
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
  }
  return p;
}

// c10::Error::what() appends a C++ stack trace and "Exception raised from ..." lines; keep the
// message the user can act on (c10::Error::what_without_backtrace()).
inline std::string message_of(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) {
    return c->what_without_backtrace();
  }
  return e.what();
}

// Runs `f`; returns NULL, or the malloc'ed message of what it threw. No C++ exception crosses
// into Rust.
template <typename F>
char* guarded(F&& f) {
  try {
    f();
    return nullptr;
  } catch (const std::exception& e) {
    return dup(message_of(e));
  } catch (...) {
    return dup("unknown C++ exception");
  }
}

// A tch handle (in torch-sys a `tensor` is a `torch::Tensor*` = at::Tensor*).
inline at::Tensor& tensor_of(void* t) {
  if (t == nullptr) throw std::invalid_argument("null tensor handle");
  return *static_cast<at::Tensor*>(t);
}

// n tch handles as a list of at::Tensor sharing their storage.
inline std::vector<at::Tensor> tensors_of(void** handles, int64_t n) {
  std::vector<at::Tensor> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) out.push_back(tensor_of(handles[i]));
  return out;
}

}  // namespace ijepa_ffi
