// Samples per second of loading + augmentation + batch assembly through DataLoader, for 1 and 2
// worker threads. Usage: bench_data_loader [split folder, default ../shared/data/consep256/train]
// [epochs, default 2]. Prints a table; results go to docs/BENCHMARKS.md ("Data loading").
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <cstdlib>
#include <string>
#include <thread>

#include "nucleisam/data/augment.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/data/loader.h"
#include "nucleisam/errors.h"

using namespace nucleisam;
using namespace nucleisam::data;

namespace {

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Wall seconds; *cpu gets the process CPU seconds (all threads), which a busy shared machine
// distorts far less than wall time.
double run(const Dataset& ds, LoaderConfig cfg, int epochs, size_t* samples, double* cpu) {
  std::vector<size_t> order(ds.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  *samples = 0;
  const double c0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  for (int e = 0; e < epochs; ++e) {
    cfg.epoch = static_cast<uint64_t>(e);
    DataLoader loader(ds, order, cfg);
    Batch b;
    while (loader.next(b)) *samples += static_cast<size_t>(b.size);
  }
  *cpu = cpu_seconds() - c0;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU milliseconds per sample of each stage alone, single thread, on the first `n` samples.
void stage_costs(const Dataset& ds, size_t n) {
  n = std::min(n, ds.size());
  std::vector<Sample> samples;
  double c0 = cpu_seconds();
  for (size_t i = 0; i < n; ++i) samples.push_back(ds.get(i));
  double load = cpu_seconds() - c0;
  std::mt19937_64 rng(1);
  auto time = [&](auto&& f) {
    double t = cpu_seconds();
    for (const Sample& s : samples) f(s);
    return (cpu_seconds() - t) * 1000.0 / static_cast<double>(n);
  };
  double crop = time([&](const Sample& s) { return random_crop(s, 256, rng); });
  double flips = time([&](const Sample& s) { return rotate90(flip_horizontal(s), 1); });
  double warp = time([&](const Sample& s) { return rotate(scale(s, 1.1), 30); });
  double stain = time([&](const Sample& s) { return stain_jitter(s.image, draw_stain_jitter({}, rng)); });
  double color = time([&](const Sample& s) { return color_jitter(s.image, draw_color_jitter({}, rng)); });
  std::printf("\nCPU ms per sample, one thread, %zu samples: read %.2f | random crop %.2f | flip + rot90 %.2f | "
              "scale + rotate %.2f | stain jitter %.2f | colour jitter %.2f\n",
              n, load * 1000.0 / static_cast<double>(n), crop, flips, warp, stain, color);
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : "../shared/data/consep256/train";
  int epochs = argc > 2 ? std::atoi(argv[2]) : 2;
  try {
    auto ds = open_dataset(path);
    std::printf("dataset %s (%s, %zu samples), %d epochs, batch 8, hardware threads %u\n", path.c_str(),
                ds->format().c_str(), ds->size(), epochs, std::thread::hardware_concurrency());
    std::printf("%-44s %8s %10s %10s %14s\n", "pipeline", "threads", "seconds", "samples/s", "CPU ms/sample");
    struct Setup {
      const char* name;
      bool augment;
      double rotate, scale;
    };
    const Setup setups[] = {{"load + batch (no augmentation)", false, 0, 0},
                            {"load + crop/flip/rot90/stain/colour", true, 0, 0},
                            {"  + arbitrary rotation and scale (p = 1)", true, 1, 1}};
    for (const Setup& s : setups)
      for (int threads : {1, 2}) {
        LoaderConfig cfg;
        cfg.batch_size = 8;
        cfg.threads = threads;
        cfg.augment = s.augment;
        cfg.augmentation.crop_size = 256;
        cfg.augmentation.rotate_probability = s.rotate;
        cfg.augmentation.scale_probability = s.scale;
        size_t n = 0;
        double cpu = 0;
        double sec = run(*ds, cfg, epochs, &n, &cpu);
        std::printf("%-44s %8d %10.2f %10.1f %14.2f\n", s.name, threads, sec, n / sec, cpu * 1000.0 / n);
      }
    stage_costs(*ds, 100);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
