// bfloat16 autocast on the CPU for one forward pass, as a scope: enabled on entry when asked,
// the previous state restored and the cast-weight cache cleared on exit (also when the forward
// throws). The trainer, the model segmenter and the benchmarks share it.
#pragma once

#include <ATen/autocast_mode.h>

namespace nucleisam::models {

class Bf16AutocastScope {
 public:
  explicit Bf16AutocastScope(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
    previous_ = at::autocast::is_cpu_enabled();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~Bf16AutocastScope() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(previous_);
  }
  Bf16AutocastScope(const Bf16AutocastScope&) = delete;
  Bf16AutocastScope& operator=(const Bf16AutocastScope&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
};

}  // namespace nucleisam::models
