#include "common/model/precision.h"

#include <ATen/autocast_mode.h>

namespace rlhf::model {

AutocastGuard::AutocastGuard(torch::Device device, bool enabled) {
  if (!enabled) return;
  active_ = true;
  device_type_ = device.type();
  previous_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  previous_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_enabled(device_type_, true);
  at::autocast::set_autocast_dtype(device_type_, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // As torch.autocast.__exit__: the cast cache lives until the outermost region ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_type_, previous_enabled_);
  at::autocast::set_autocast_dtype(device_type_, previous_dtype_);
}

AutocastState CurrentAutocast(torch::Device device) {
  return {at::autocast::is_autocast_enabled(device.type()),
          at::autocast::get_autocast_dtype(device.type())};
}

}  // namespace rlhf::model
