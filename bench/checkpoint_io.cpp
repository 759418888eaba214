// Checkpoint read/write timings: the fixtures (or any files given) and a synthetic state dict of
// SAM ViT-B size (~370 MB) written with write_pth / write_safetensors and read back.
// Usage: bench_checkpoint_io [--scratch DIR] [checkpoint ...]
// Columns: read = read_checkpoint (parse + map, no tensor bytes touched); touch = summing every
// tensor (pages the data in); copy = cloning every tensor (what load_into costs on top).
// nucleisam-bench: core
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "nucleisam/weights/state_dict.h"

using namespace nucleisam;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Roughly SAM ViT-B's tensors: 12 blocks of qkv/proj/MLP weights, pos_embed, neck, decoder.
weights::StateDict vit_b_sized() {
  weights::StateDict sd;
  auto add = [&](const std::string& k, std::vector<int64_t> shape) { sd.entries.emplace_back(k, torch::randn(shape)); };
  add("image_encoder.pos_embed", {1, 64, 64, 768});
  add("image_encoder.patch_embed.proj.weight", {768, 3, 16, 16});
  for (int b = 0; b < 12; ++b) {
    std::string p = "image_encoder.blocks." + std::to_string(b) + ".";
    add(p + "norm1.weight", {768});
    add(p + "attn.qkv.weight", {2304, 768});
    add(p + "attn.qkv.bias", {2304});
    add(p + "attn.proj.weight", {768, 768});
    add(p + "attn.rel_pos_h", {27, 64});
    add(p + "mlp.lin1.weight", {3072, 768});
    add(p + "mlp.lin2.weight", {768, 3072});
  }
  add("image_encoder.neck.0.weight", {256, 768, 1, 1});
  add("image_encoder.neck.2.weight", {256, 256, 3, 3});
  for (int l = 0; l < 2; ++l) {
    std::string p = "mask_decoder.transformer.layers." + std::to_string(l) + ".";
    add(p + "mlp.lin1.weight", {2048, 256});
    add(p + "mlp.lin2.weight", {256, 2048});
  }
  return sd;
}

void row(const std::string& name, int64_t bytes, double write_ms, const std::string& path) {
  auto t0 = Clock::now();
  weights::StateDict sd = weights::read_checkpoint(path);
  double read_ms = ms_since(t0);
  t0 = Clock::now();
  double sum = 0;
  for (const auto& e : sd.entries)
    if (e.second.is_floating_point()) sum += e.second.sum().item<double>();
  double touch_ms = ms_since(t0);
  t0 = Clock::now();
  std::vector<torch::Tensor> copies;
  for (const auto& e : sd.entries) copies.push_back(e.second.clone());
  double copy_ms = ms_since(t0);
  std::printf("| %-28s | %8.1f | %6zu | %9s | %8.1f | %8.1f | %8.1f |%s\n", name.c_str(), bytes / 1048576.0, sd.size(),
              write_ms < 0 ? "-" : std::to_string(static_cast<int>(write_ms)).c_str(), read_ms, touch_ms, copy_ms,
              sum == sum ? "" : " (nan)");
}

}  // namespace

int main(int argc, char** argv) {
  std::string scratch = std::filesystem::temp_directory_path().string();
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--scratch" && i + 1 < argc)
      scratch = argv[++i];
    else
      files.push_back(a);
  }
  torch::set_num_threads(1);
  std::printf("| %-28s | %8s | %6s | %9s | %8s | %8s | %8s |\n", "file", "MB", "tensors", "write ms", "read ms", "touch ms",
              "copy ms");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(10, '-').c_str(),
              std::string(8, '-').c_str(), std::string(11, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str());
  try {
    for (const std::string& f : files)
      row(std::filesystem::path(f).filename().string(), static_cast<int64_t>(std::filesystem::file_size(f)), -1, f);

    torch::manual_seed(0);
    weights::StateDict sd = vit_b_sized();
    std::string pth = scratch + "/bench_vit_b_sized.pth", st = scratch + "/bench_vit_b_sized.safetensors";
    auto t0 = Clock::now();
    weights::write_pth(pth, sd);
    double w_pth = ms_since(t0);
    t0 = Clock::now();
    weights::write_safetensors(st, sd);
    double w_st = ms_since(t0);
    sd.entries.clear();
    row("synthetic ViT-B size .pth", static_cast<int64_t>(std::filesystem::file_size(pth)), w_pth, pth);
    row("synthetic ViT-B size .st", static_cast<int64_t>(std::filesystem::file_size(st)), w_st, st);
    std::filesystem::remove(pth);
    std::filesystem::remove(st);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
