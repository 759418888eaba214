// nucleisam-bench: core
// nucleisam's own CPU kernels at the sizes of the shipped he-nuclei network (width 16, 256 x 256
// windows): the enlarge-shift-sum (2x and 16x enlargements to 256 x 256, 16 channels) and the GLU
// gate (32 -> 16 channels at 256 x 256), forward and backward, channels-last, float and bfloat16,
// each in the AVX-512 build and the baseline build (NUCLEISAM_KERNEL_ISA), alternated.
// Median milliseconds per call of `runs` calls after one warm-up call.
//   bench_cpu_kernels [batch] [runs] [threads]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "models/glu_kernel.h"
#include "models/upsampled_conv.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/threads.h"

using namespace nucleisam;

namespace {

double median_ms(const std::function<void()>& f, int runs) {
  f();
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bench::start_like_the_cli(argv);
  const int64_t batch = argc > 1 ? std::stoi(argv[1]) : 4;
  const int runs = argc > 2 ? std::stoi(argv[2]) : 5;
  const int threads = argc > 3 ? std::stoi(argv[3]) : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(std::max(1, threads));
  limit_blas_threads(std::max(1, threads));
  torch::NoGradGuard no_grad;
  std::printf("CPU: %s, %d threads, batch %lld, median of %d calls (ms)\n", cpu_features().summary().c_str(),
              torch::get_num_threads(), static_cast<long long>(batch), runs);
  std::printf("%-34s %-6s %10s %10s %8s\n", "kernel", "type", "avx512", "baseline", "ratio");
  const auto cl = at::MemoryFormat::ChannelsLast;
  for (const auto type : {torch::kFloat, torch::kBFloat16}) {
    const char* tname = type == torch::kFloat ? "fp32" : "bf16";
    struct Case {
      std::string name;
      std::function<void()> run;
    };
    std::vector<Case> cases;
    for (const int64_t small : {128, 16}) {
      auto z = torch::randn({batch, 9 * 16, small, small}).to(type).contiguous(cl);
      auto bias = torch::randn({16});
      auto g = torch::randn({batch, 16, 256, 256}).to(type).contiguous(cl);
      const std::string size = std::to_string(small) + " -> 256";
      cases.push_back({"enlarge_shift_sum " + size, [=] { models::enlarge_shift_sum(z, 256, 256, bias); }});
      // Forward and backward through autograd (the adjoint kernel), as training runs them.
      cases.push_back({"enlarge_shift_sum fwd+bwd " + size, [=] {
                         torch::AutoGradMode grad(true);
                         auto zz = z.detach().requires_grad_();
                         auto out = models::enlarge_shift_sum(zz, 256, 256, bias);
                         torch::autograd::grad({out}, {zz}, {g});
                       }});
    }
    auto y = torch::randn({batch, 32, 256, 256}).to(type).contiguous(cl);
    auto gy = torch::randn({batch, 16, 256, 256}).to(type).contiguous(cl);
    auto scale = torch::rand({32}) + 0.5, shift = torch::randn({32});
    cases.push_back({"glu_channels 32 -> 16", [=] { models::glu_channels_forward(y); }});
    cases.push_back({"glu_channels backward 32 -> 16", [=] { models::glu_channels_backward(gy, y, scale, shift); }});
    for (const auto& c : cases) {
      unsetenv("NUCLEISAM_KERNEL_ISA");
      const double wide = median_ms(c.run, runs);
      setenv("NUCLEISAM_KERNEL_ISA", "baseline", 1);
      const double base = median_ms(c.run, runs);
      unsetenv("NUCLEISAM_KERNEL_ISA");
      std::printf("%-34s %-6s %10.2f %10.2f %7.2fx\n", c.name.c_str(), tname, wide, base, base / wide);
      std::fflush(stdout);
    }
  }
  return 0;
}
