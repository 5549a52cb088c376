// Tiny C shim over libtorch C++ APIs that tch does not expose.
//
// * bf16/fp16 autocast on any device type: tch's own autocast only toggles CUDA, while
//   `at::autocast` supports CPU (AMX-BF16 here) too. Enter/exit mirror
//   `torch.autocast.__enter__/__exit__`: set the enabled flag and dtype, bump the nesting
//   counter, and clear the cast cache when the outermost region exits.
// * AdamW as one fused kernel per parameter group (`at::_fused_adamw_`, what
//   `torch.optim.AdamW(fused=True)` calls): tch does not expose operators on tensor lists.
// * The operator profiler (Kineto, CPU activities: what `torch.profiler.profile(activities=[CPU])`
//   records): start, then stop and save a Chrome trace.
#include <ATen/autocast_mode.h>
#include <ATen/ops/_fused_adamw.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include "ffi.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace {
c10::DeviceType device_type_of(int device) { return device == 1 ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }

using ijepa_ffi::guarded;
using ijepa_ffi::tensors_of;
}  // namespace

extern "C" {

// device: 0 = CPU, 1 = CUDA. dtype: c10::ScalarType code (15 = BFloat16, 5 = Half).
// Returns the previous enabled state (0/1), or -1 on error.
int ijepa_autocast_enter(int device, int dtype) {
  try {
    auto dt = device_type_of(device);
    int prev = at::autocast::is_autocast_enabled(dt) ? 1 : 0;
    at::autocast::set_autocast_dtype(dt, static_cast<c10::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(dt, true);
    at::autocast::increment_nesting();
    return prev;
  } catch (...) {
    return -1;
  }
}

// Restores the enabled state returned by ijepa_autocast_enter. Returns 0, or -1 on error.
int ijepa_autocast_exit(int device, int prev_enabled) {
  try {
    auto dt = device_type_of(device);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(dt, prev_enabled != 0);
    return 0;
  } catch (...) {
    return -1;
  }
}

int ijepa_autocast_is_enabled(int device) {
  return at::autocast::is_autocast_enabled(device_type_of(device)) ? 1 : 0;
}

// One AdamW step (torch's maths, decoupled weight decay) of n parameters in place, with their
// gradients and moments, all float32 on one device, sharing the step count `step` (a float32
// scalar tensor, already incremented: the bias corrections use it), the learning rate and the
// weight decay. Returns NULL, or a malloc'ed error message (free it with ijepa_shim_free).
char* ijepa_fused_adamw(void** params, void** grads, void** exp_avgs, void** exp_avg_sqs, int64_t n,
                        void* step, double lr, double beta1, double beta2, double weight_decay, double eps) {
  return guarded([&] {
    auto p = tensors_of(params, n);
    auto g = tensors_of(grads, n);
    auto m = tensors_of(exp_avgs, n);
    auto v = tensors_of(exp_avg_sqs, n);
    std::vector<at::Tensor> steps(static_cast<size_t>(n), ijepa_ffi::tensor_of(step));
    at::_fused_adamw_(p, g, m, v, {}, steps, lr, beta1, beta2, weight_decay, eps, /*amsgrad=*/false,
                      /*maximize=*/false);
  });
}

void ijepa_shim_free(char* message) { std::free(message); }

// Drops the gradients of n tensors (`p.grad = None`, what torch's `zero_grad()` does by
// default): the next backward writes fresh gradients instead of adding to zeroed ones.
// Returns NULL, or a malloc'ed error message (free it with ijepa_shim_free).
char* ijepa_grads_reset(void** tensors, int64_t n) {
  return guarded([&] {
    for (auto& t : tensors_of(tensors, n)) t.mutable_grad().reset();
  });
}

// Starts recording every operator on this thread (and the autograd engine's) until
// ijepa_profiler_stop. Returns 0, or -1 on error (a profiler already running).
int ijepa_profiler_start() {
  try {
    using torch::profiler::impl::ActivityType;
    torch::profiler::impl::ProfilerConfig cfg(torch::profiler::impl::ProfilerState::KINETO);
    const std::set<ActivityType> activities{ActivityType::CPU};
    torch::autograd::profiler::prepareProfiler(cfg, activities);
    torch::autograd::profiler::enableProfiler(cfg, activities);
    return 0;
  } catch (...) {
    return -1;
  }
}

// Stops the profiler and writes its events as a Chrome trace (JSON) to `path`. Returns 0, or
// -1 on error (no profiler running, the file not writable).
int ijepa_profiler_stop(const char* path) {
  try {
    auto result = torch::autograd::profiler::disableProfiler();
    if (!result) return -1;
    result->save(path);
    return 0;
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
