// nucleisam-bench: core
// Inference speed of a trained segmentation network alone, as the model segmenter runs it: eval
// mode, no gradients, channels-last weights and windows, bf16 autocast or fp32. Random input
// windows (speed does not depend on the pixels). Prints the median seconds per batch, windows/s
// and megapixels/s for each precision, alternating the precisions `rounds` times so that a
// noisy machine affects both alike, and the ratio fp32 / bf16.
//   bench_model_inference <model.safetensors | arch:width> [batch] [size] [steps] [rounds] [threads]
//   bench_model_inference models/he-nuclei.safetensors 4 256 5 3 2
//   bench_model_inference sam-eunet3plus:32 1 256 5 3 2     # the authors' configuration
// `arch:width` (or `arch:key=value;...`, any model options) builds a random-weight network
// (three-class + distance heads' channel count) instead of loading one:
//   bench_model_inference 'category-sam:encoder=vit_b;input_size=256' 4 256 3 2 2
// A SAM-guided network gets a cached-embedding stand-in: a random 256 x 64 x 64 map per window
// (the SAM encoder's cost is not included, as with embeddings computed once and cached).
// With NUCLEISAM_BENCH_TRACE=<prefix>, one more batch per precision runs under LibTorch's
// profiler and its Chrome trace goes to <prefix>-fp32.json and <prefix>-bf16.json (per-operator
// times: bench/trace_summary.py sums them by operator).
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/threads.h"
#include "nucleisam/models/autocast.h"
#include "nucleisam/models/heads.h"
#include "nucleisam/models/model_file.h"

using namespace nucleisam;

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  bench::start_like_the_cli(argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_model_inference <model.safetensors> [batch] [size] [steps] [rounds] [threads]\n");
    return 2;
  }
  const std::string path = argv[1];
  const int batch = argc > 2 ? std::stoi(argv[2]) : 4;
  const int size = argc > 3 ? std::stoi(argv[3]) : 256;
  const int steps = argc > 4 ? std::stoi(argv[4]) : 5;
  const int rounds = argc > 5 ? std::stoi(argv[5]) : 3;
  const int threads = argc > 6 ? std::stoi(argv[6]) : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(std::max(1, threads));
  limit_blas_threads(std::max(1, threads));

  models::LoadedModel model;
  if (const auto colon = path.find(':'); colon != std::string::npos && !std::ifstream(path)) {
    models::HeadLayout heads;
    model.card.arch = path.substr(0, colon);
    const auto options = bench::model_options_from_spec(path.substr(colon + 1));
    model.network = models::build_network(model.card.arch, heads.channels(), models::ModelOptions(options));
    model.network->eval();
  } else {
    model = models::load_model(path);
  }
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model.network->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
  std::printf("CPU: %s, %d threads\n", cpu_features().summary().c_str(), torch::get_num_threads());
  std::printf("%s (%s), batch %d of %dx%d, %d timed batches per round, %d rounds\n", path.c_str(),
              model.card.arch.c_str(), batch, size, size, steps, rounds);
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({batch, 3, size, size}).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::Tensor guidance;
  if (model.network->needs_guidance()) guidance = torch::randn({batch, 256, 64, 64});
  std::map<std::string, std::vector<double>> times;
  const std::vector<std::string> precisions = {"fp32", "bf16"};
  for (int r = 0; r < rounds; ++r)
    for (const std::string& precision : precisions)
      for (int s = 0; s < steps + 1; ++s) {
        const auto t0 = std::chrono::steady_clock::now();
        {
          models::Bf16AutocastScope autocast(precision == "bf16");
          torch::Tensor logits = model.network->forward(x, guidance);
          logits = logits.to(torch::kFloat32);
        }
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s > 0) times[precision].push_back(sec);  // the first batch warms oneDNN's caches
      }
  if (const char* prefix = std::getenv("NUCLEISAM_BENCH_TRACE"))
    for (const std::string& precision : precisions) {
      torch::autograd::profiler::RecordProfile trace(std::string(prefix) + "-" + precision + ".json");
      models::Bf16AutocastScope autocast(precision == "bf16");
      model.network->forward(x, guidance).to(torch::kFloat32);
    }
  std::printf("%-6s %12s %12s %12s\n", "prec", "s/batch", "windows/s", "MP/s");
  for (const std::string& precision : precisions) {
    const double m = median(times[precision]);
    std::printf("%-6s %12.3f %12.2f %12.3f\n", precision.c_str(), m, batch / m, batch * double(size) * size / m / 1e6);
  }
  std::printf("fp32 / bf16: %.2fx   peak RSS %.0f MB\n", median(times["fp32"]) / median(times["bf16"]), bench::peak_rss_mb());
  return 0;
}
