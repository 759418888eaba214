// Accuracy of SAM's bf16 image encoder against fp32 on real images: for each image, the relative
// error of the image embedding and the IoU between the fp32 and bf16 masks for a grid of single
// point prompts (the decoder runs in fp32 in both). With random-weight fixtures the masks mean
// nothing, but the comparison still measures how far bf16 arithmetic moves SAM's answers; run it
// with a real checkpoint to see the same on trained weights.
//
//   bench_sam_precision --checkpoint sam.pth [--input-size 1024] [--grid 4] [--threads N] image...
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "nucleisam/image_io.h"
#include "nucleisam/sam/predictor.h"
#include "nucleisam/threads.h"
#include "bench_common.h"

using namespace nucleisam;

int main(int argc, char** argv) {
  nucleisam::bench::start_like_the_cli(argv);
  std::string checkpoint;
  int input_size = 1024, grid = 4, threads = 0;
  std::vector<std::string> images;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_sam_precision: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--checkpoint") checkpoint = next();
    else if (a == "--input-size") input_size = std::stoi(next());
    else if (a == "--grid") grid = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else images.push_back(a);
  }
  if (checkpoint.empty() || images.empty() || grid < 1) {
    std::fprintf(stderr,
                 "usage: bench_sam_precision --checkpoint sam.pth [--input-size 1024] [--grid 4] [--threads N] "
                 "image...\n");
    return 2;
  }
  if (threads > 0) {
    torch::set_num_threads(threads);
    limit_blas_threads(threads);
  }
  try {
    torch::NoGradGuard no_grad;
    sam::Sam model = sam::load_sam(checkpoint);
    sam::SamPredictor fp32(model, input_size, "fp32"), bf16(model, input_size, "bf16");
    std::printf("SAM bf16 vs fp32: %s (%s), input %d, %dx%d point prompts per image, threads %d\n",
                checkpoint.c_str(), model->model_type().c_str(), input_size, grid, grid, torch::get_num_threads());
    std::printf("| image | embedding rel err | mean mask IoU | min mask IoU | fp32 encoder s | bf16 encoder s |\n");
    std::printf("|---|---|---|---|---|---|\n");
    for (const std::string& path : images) {
      const Image image = io::read_image(path);
      auto timed = [&](sam::SamPredictor& p) {
        const auto t0 = std::chrono::steady_clock::now();
        p.set_image(image);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      };
      const double t32 = timed(fp32), t16 = timed(bf16);
      const double rel = ((bf16.embedding() - fp32.embedding()).norm() / fp32.embedding().norm()).item<double>();
      double sum = 0, worst = 1;
      int counted = 0;
      for (int gy = 0; gy < grid; ++gy)
        for (int gx = 0; gx < grid; ++gx) {
          sam::SamPrompt prompt;
          prompt.points = {{(gx + 0.5) * image.width / grid, (gy + 0.5) * image.height / grid, 1}};
          prompt.multimask = false;
          const torch::Tensor a = fp32.predict(prompt).masks.to(torch::kBool);
          const torch::Tensor b = bf16.predict(prompt).masks.to(torch::kBool);
          const double uni = (a | b).sum().item<double>();
          const double iou = uni > 0 ? (a & b).sum().item<double>() / uni : 1.0;
          sum += iou;
          worst = std::min(worst, iou);
          ++counted;
        }
      std::printf("| %s | %.4f | %.4f | %.4f | %.2f | %.2f |\n", path.c_str(), rel, sum / counted, worst, t32, t16);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sam_precision: %s\n", e.what());
    return 1;
  }
  return 0;
}
