// nucleisam-bench: core
// nucleisam's own CPU kernels at the sizes of the shipped he-nuclei network (width 16, 256 x 256
// windows): the enlarge-shift-sum (2x and 16x enlargements to 256 x 256, 16 channels) and the GLU
// gate (32 -> 16 channels at 256 x 256), forward and backward, channels-last, float and bfloat16,
// and SAM's relative-position softmax (one step of ViT-B's global attention at 1024: 2048 query
// rows of 4096 keys, including a copy of the logits), each in every build (NUCLEISAM_KERNEL_ISA).
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
#include "sam/attention_softmax.h"
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
  // Columns: the widest build this CPU runs, then AVX2 and the baseline (NUCLEISAM_KERNEL_ISA; for
  // the GLU and the softmax the baseline is LibTorch's own operations).
  std::printf("%-36s %-5s %9s %9s %9s\n", "kernel", "type", "widest", "avx2", "baseline");
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
    // SAM ViT-B's global attention at input 1024: one step of 2048 query rows over 64 x 64 keys.
    auto logits = torch::randn({2048, 4096}).to(type), rel_h = torch::randn({2048, 64}).to(type),
         rel_w = torch::randn({2048, 64}).to(type);
    cases.push_back({"add_rel_pos_softmax_ 2048 x 4096", [=] {
                       auto a = logits.clone();
                       sam::add_rel_pos_softmax_(a, rel_h, rel_w, 64, 64);
                     }});
    for (const auto& c : cases) {
      double ms[3];
      const char* builds[3] = {nullptr, "avx2", "baseline"};
      for (int b = 0; b < 3; ++b) {
        if (builds[b]) setenv("NUCLEISAM_KERNEL_ISA", builds[b], 1);
        ms[b] = median_ms(c.run, runs);
        unsetenv("NUCLEISAM_KERNEL_ISA");
      }
      std::printf("%-36s %-5s %9.2f %9.2f %9.2f\n", c.name.c_str(), tname, ms[0], ms[1], ms[2]);
      std::fflush(stdout);
    }
  }
  return 0;
}
