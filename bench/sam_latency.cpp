// SAM encoder / decoder latency and peak memory on the CPU (or --device cuda), with random weights:
// the architecture, not the values, sets the cost. Each model runs in its own child process so
// that the peak RSS column belongs to that model alone.
//
//   bench_sam_latency [--threads N] [--runs N] [--models vit_b,vit_t,vit_tiny] [--sizes 1024,256]
//                     [--device cpu|cuda] [--precisions fp32,bf16]
//
// fp32 matrix products take the path `NUCLEISAM_FP32_GEMM=blas|onednn` names, else the probe's
// choice (sam/cpu_linear.h); each model's child prints which.
// bf16 runs the encoder under bfloat16 autocast as `nucleisam sam --precision bf16` does; the
// "rel err" column is |e_bf16 - e_fp32| / |e_fp32| of the embeddings of the same input.
//
// nucleisam-bench: core
// vit_tiny is the fixture architecture (E=96, depth 4, 4 heads), for comparison with the Python
// reference timing in ../shared/fixtures/sam/vit_tiny/README.md.
#include <torch/torch.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nucleisam/models/autocast.h"
#include "nucleisam/sam/cpu_linear.h"
#include "nucleisam/sam/predictor.h"
#include "nucleisam/threads.h"
#include "bench_common.h"

using namespace nucleisam::sam;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

// Peak resident set size of this process (VmHWM), MiB.
double peak_rss_mib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

Sam make_model(const std::string& name) {
  if (name == "vit_b") return Sam(ImageEncoderViTConfig::vit_b());
  if (name == "vit_l") return Sam(ImageEncoderViTConfig::vit_l());
  if (name == "vit_h") return Sam(ImageEncoderViTConfig::vit_h());
  if (name == "vit_t") return Sam(TinyViTConfig::mobile_sam());
  if (name == "vit_tiny") {
    ImageEncoderViTConfig c;
    c.embed_dim = 96;
    c.depth = 4;
    c.num_heads = 4;
    c.global_attn_indexes = {1, 3};
    return Sam(c);
  }
  throw std::runtime_error("unknown model " + name);
}

// CPU time of this process (all threads), ms. On a shared machine, CPU time at --threads 1 is a
// better estimate of the uncontended latency than wall time.
double cpu_ms() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

template <typename F>
double time_ms(F&& f, const torch::Device& dev) {
  if (dev.is_cuda()) torch::cuda::synchronize();
  auto t0 = std::chrono::steady_clock::now();
  f();
  if (dev.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void run_model(const std::string& name, const std::vector<int>& sizes, int runs, const torch::Device& dev,
               const std::vector<std::string>& precisions) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  Sam model = make_model(name);
  model->eval();
  model->to(dev);
  int64_t params = 0;
  for (const auto& p : model->image_encoder()->parameters()) params += p.numel();
  for (int s : sizes) {
    auto x = torch::randn({1, 3, s, s}).to(dev);
    torch::Tensor reference;  // the fp32 embedding
    for (const std::string& precision : precisions) {
      const bool bf16 = precision == "bf16";
      auto encode = [&] {
        nucleisam::models::Bf16AutocastScope autocast(bf16);
        return model->encode_image(x).to(torch::kFloat32);
      };
      encode();  // warm-up: allocator, thread pool, kernels
      std::vector<double> enc, enc_cpu;
      torch::Tensor emb;
      for (int r = 0; r < runs; ++r) {
        const double c0 = cpu_ms();
        enc.push_back(time_ms([&] { emb = encode(); }, dev));
        enc_cpu.push_back(cpu_ms() - c0);
      }
      if (!bf16) reference = emb;
      // NUCLEISAM_BENCH_TRACE=<prefix>: one more encoder run under LibTorch's profiler, its Chrome
      // trace to <prefix>-<model>-<size>-<precision>.json (bench/trace_summary.py sums it).
      if (const char* prefix = std::getenv("NUCLEISAM_BENCH_TRACE")) {
        torch::autograd::profiler::RecordProfile trace(std::string(prefix) + "-" + name + "-" + std::to_string(s) +
                                                       "-" + precision + ".json");
        encode();
      }
      const double rel =
          reference.defined() && bf16 ? ((emb - reference).norm() / reference.norm()).item<double>() : 0;

      SamPredictor predictor(model, s);
      predictor.set_embedding(emb, 1000, 1000);
      SamPrompt prompt;
      prompt.points = {{500, 400, 1}, {200, 700, 0}};
      prompt.multimask = true;
      auto points = torch::tensor({1000.f, 800.f, 400.f, 1400.f}).reshape({1, 2, 2}) * (s / 2048.0);
      auto labels = torch::tensor({1.f, 0.f}).reshape({1, 2});
      predictor.predict(prompt);
      std::vector<double> dec, full;
      for (int r = 0; r < std::max(runs, 5); ++r) {
        dec.push_back(time_ms([&] { predictor.predict_low_res(points, labels, {}, {}, true); }, dev));
        full.push_back(time_ms([&] { predictor.predict(prompt); }, dev));
      }
      std::printf("| %-8s | %5d | %-4s | %8.2fM | %10.1f | %10.1f | %10.1f | %10.1f | %10.0f | %8.2g |\n",
                  name.c_str(), s, precision.c_str(), params / 1e6, median(enc), median(enc_cpu), median(dec),
                  median(full), peak_rss_mib(), rel);
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  nucleisam::bench::start_like_the_cli(argv);
  int threads = 0, runs = 3;
  std::string models = "vit_b,vit_t", sizes_arg = "1024,256", device = "cpu", precisions_arg = "fp32";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_sam_latency: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads")
      threads = std::stoi(next());
    else if (a == "--runs")
      runs = std::stoi(next());
    else if (a == "--models")
      models = next();
    else if (a == "--sizes")
      sizes_arg = next();
    else if (a == "--device")
      device = next();
    else if (a == "--precisions")
      precisions_arg = next();
    else {
      std::fprintf(
          stderr,
          "usage: bench_sam_latency [--threads N] [--runs N] [--models vit_b,vit_t,vit_tiny,vit_l,vit_h] "
          "[--sizes 1024,256] [--device cpu|cuda] [--precisions fp32,bf16]\n");
      return 2;
    }
  }
  std::vector<int> sizes;
  for (const auto& s : split(sizes_arg)) sizes.push_back(std::stoi(s));
  std::printf("SAM latency, %s, threads %s, median of %d encoder runs (decoder: median of %d)\n",
              device.c_str(), threads ? std::to_string(threads).c_str() : "default", runs, std::max(runs, 5));
  std::printf(
      "| model    | input | prec | enc params | encoder ms | enc CPU ms | decoder ms | predict ms | peak RSS "
      "MiB "
      "| rel err |\n");
  std::printf(
      "|----------|-------|------|------------|------------|------------|------------|------------|----------"
      "--|"
      "---------|\n");
  std::fflush(stdout);
  for (const auto& name : split(models)) {
    // A child per model: peak RSS is per process, and the parent never starts torch's thread pool
    // (forking after it has started is unsafe with OpenMP).
    pid_t pid = fork();
    if (pid == 0) {
      if (threads > 0) {
        torch::set_num_threads(threads);
        nucleisam::limit_blas_threads(threads);
      }
      try {
        const auto& gemm = fp32_gemm_choice();  // NUCLEISAM_FP32_GEMM=blas|onednn, else a probe
        std::printf("(%s: fp32 matrix products through %s, %s)\n", name.c_str(), to_string(gemm.path),
                    gemm.reason.c_str());
        run_model(name, sizes, runs, torch::Device(device), split(precisions_arg));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", name.c_str(), e.what());
        std::fflush(stdout);
        std::_Exit(1);
      }
      std::fflush(stdout);
      std::_Exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
  }
  return 0;
}
