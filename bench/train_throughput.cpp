// nucleisam-bench: core
// Training throughput of a segmentation network on random data: forward + loss + backward + Adam
// step, per precision and memory format. Prints samples/s (median of timed steps) and peak RSS.
//   bench_train_throughput [arch] [width] [batch] [size] [steps] [precisions] [layouts]
//   bench_train_throughput eunet3plus 32 16 256 5 fp32,bf16 nchw,nhwc
//   bench_train_throughput 'category-sam:encoder=vit_b;input_size=256' 0 4 256 3 fp32,bf16 nhwc  # adapters train
// `arch:key=value;...` gives any model options (width is then unused). The loss is the same for
// every network (three-class dice + focal on the first three logit channels, MSE of the fourth's
// sigmoid against a random map): what is timed is the network's forward and backward and Adam.
// With NUCLEISAM_BENCH_TRACE=<prefix>, the last step of each precision and layout runs under
// LibTorch's profiler and its Chrome trace goes to <prefix>-<precision>-<layout>.json
// (bench/trace_summary.py sums it by operator).
#include <torch/torch.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/threads.h"
#include "nucleisam/models/autocast.h"
#include "nucleisam/models/heads.h"
#include "nucleisam/models/segmentation_model.h"
#include "nucleisam/train/losses.h"

using namespace nucleisam;

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');) out.push_back(part);
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  bench::start_like_the_cli(argv);
  nucleisam::keep_freed_large_blocks_for_training();  // as `train` does (NUCLEISAM_TRAIN_KEEP_MB=0: not)
  // "arch", or "arch:key=value;..." (any model options; then `width` is not used).
  const std::string arch_spec = argc > 1 ? argv[1] : "eunet3plus";
  const size_t colon = arch_spec.find(':');
  const std::string arch = arch_spec.substr(0, colon);
  const int width = argc > 2 ? std::stoi(argv[2]) : 32;
  const models::ModelOptions options(bench::model_options_from_spec(
      colon == std::string::npos ? std::to_string(width) : arch_spec.substr(colon + 1)));
  const int batch = argc > 3 ? std::stoi(argv[3]) : 16;
  const int size = argc > 4 ? std::stoi(argv[4]) : 256;
  const int steps = argc > 5 ? std::stoi(argv[5]) : 5;
  const auto precisions = split(argc > 6 ? argv[6] : "fp32,bf16");
  const auto layouts = split(argc > 7 ? argv[7] : "nchw,nhwc");
  const int threads = argc > 8 ? std::stoi(argv[8]) : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(std::max(1, threads));
  limit_blas_threads(std::max(1, threads));
  std::printf("CPU: %s, %d threads\n", cpu_features().summary().c_str(), torch::get_num_threads());
  std::printf("%s width %d, batch %d, %dx%d, three-class + distance heads, dice+focal loss, Adam\n", arch_spec.c_str(),
              width, batch, size, size);
  std::printf("%-6s %-6s %12s %12s %14s\n", "prec", "layout", "s/step", "samples/s", "peak RSS MB");
  models::HeadLayout heads;
  for (const std::string& precision : precisions)
    for (const std::string& layout : layouts) {
      torch::manual_seed(0);
      models::SegmentationNetwork net = models::build_network(arch, heads.channels(), options);
      const bool nhwc = layout == "nhwc";
      if (nhwc)
        for (auto& p : net->parameters())
          if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
      torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(1e-4));
      torch::Tensor x = torch::randn({batch, 3, size, size});
      if (nhwc) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      torch::Tensor guidance;
      if (net->needs_guidance()) guidance = torch::randn({batch, 256, 64, 64});
      // Targets at the logits' resolution (category-sam's masks are a quarter of the input's).
      torch::Tensor target, dist;
      std::vector<double> times;
      const char* trace_prefix = std::getenv("NUCLEISAM_BENCH_TRACE");
      for (int s = 0; s < steps + 1 + (trace_prefix ? 1 : 0); ++s) {
        std::optional<torch::autograd::profiler::RecordProfile> trace;
        if (s == steps + 1) trace.emplace(std::string(trace_prefix) + "-" + precision + "-" + layout + ".json");
        const auto t0 = std::chrono::steady_clock::now();
        torch::Tensor logits;
        {
          models::Bf16AutocastScope autocast(precision == "bf16");
          logits = net->forward(x, guidance);
        }
        logits = logits.to(torch::kFloat32);
        if (!target.defined()) {
          target = torch::randint(0, 3, {batch, logits.size(2), logits.size(3)}, torch::kInt64);
          dist = torch::rand({batch, logits.size(2), logits.size(3)});
        }
        torch::Tensor loss = train::dice_focal_loss(logits.narrow(1, 0, 3), target, {}, train::DiceVariant::standard, 2.0) +
                             torch::mse_loss(torch::sigmoid(logits.select(1, 3)), dist);
        adam.zero_grad();
        loss.backward();
        adam.step();
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s > 0 && s <= steps) times.push_back(sec);  // the first step warms up allocators and oneDNN
      }
      std::sort(times.begin(), times.end());
      const double median = times[times.size() / 2];
      std::printf("%-6s %-6s %12.3f %12.2f %14.0f\n", precision.c_str(), layout.c_str(), median, batch / median,
                  bench::peak_rss_mb());
      std::fflush(stdout);
    }
  return 0;
}
