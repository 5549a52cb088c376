// Tiny C shim over libtorch C++ APIs that tch does not expose.
//
// * bf16/fp16 autocast on any device type: tch's own autocast only toggles CUDA, while
//   `at::autocast` supports CPU (AMX-BF16 here) too. Enter/exit mirror
//   `torch.autocast.__enter__/__exit__`: set the enabled flag and dtype, bump the nesting
//   counter, and clear the cast cache when the outermost region exits.
#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace {
c10::DeviceType device_type_of(int device) { return device == 1 ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }
}

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

}  // extern "C"
