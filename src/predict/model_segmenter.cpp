// Window-by-window network inference with blended overlaps (see model_segmenter.h).
#include "nucleisam/predict/model_segmenter.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "nucleisam/tile_plan.h"
#include "nucleisam/errors.h"
#include "nucleisam/models/autocast.h"
#include "predict/reflect_pad.h"
#include "predict/test_time_views.h"

namespace nucleisam::predict {
using namespace nucleisam::infer;
namespace {

// Weight of a pixel at distance d (pixels) from the nearest window edge: rises linearly over the
// first `ramp` pixels, never reaches zero, so every pixel of the image has positive total weight.
float edge_weight(int d, int ramp) {
  if (ramp <= 0) return 1.0f;
  return std::min(1.0f, (static_cast<float>(d) + 1.0f) / static_cast<float>(ramp + 1));
}

}  // namespace

ModelSegmenter::ModelSegmenter(models::SegmentationNetwork network, models::ModelCard card,
                               ModelSegmenterOptions options)
    : network_(std::move(network)), card_(std::move(card)), options_(std::move(options)) {
  if (options_.tile_size <= 0) options_.tile_size = card_.tile_size;
  if (options_.tile_overlap < 0) options_.tile_overlap = card_.tile_overlap;
  const int64_t m = network_->input_multiple();
  if (options_.tile_size % m != 0)
    throw OptionError("tile size " + std::to_string(options_.tile_size) + " must be a multiple of " +
                     std::to_string(m) + " for model " + card_.name);
  if (options_.tile_overlap >= options_.tile_size)
    throw OptionError("tile overlap must be smaller than the tile size");
  if (options_.batch_size < 1) options_.batch_size = 1;
  test_time_views(options_.tta);  // checks the count
  if (options_.precision != "fp32" && options_.precision != "bf16")
    throw OptionError("precision must be fp32 or bf16");
  if (network_->needs_guidance() && !options_.guidance)
    throw OptionError("model " + card_.name + " is SAM-guided: give it a SAM checkpoint");
  decoding_ = decoding_from_map(card_.decoding, card_.name);
  // Channels-last convolutions: oneDNN's fast path on CPUs, for fp32 and above all for bf16 (NCHW
  // bf16 convolutions are slower than fp32 ones here; bench_train_throughput shows both).
  torch::NoGradGuard no_grad;
  for (auto& p : network_->parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
}

std::unique_ptr<ModelSegmenter> ModelSegmenter::from_file(const std::string& path, ModelSegmenterOptions options) {
  models::LoadedModel m = models::load_model(path);
  return std::make_unique<ModelSegmenter>(m.network, m.card, std::move(options));
}

HeadMaps ModelSegmenter::predict(const Image& original) {
  if (original.empty()) throw DataError("empty image");
  const int tile = options_.tile_size;
  const Image image = reflect_pad(original, tile, tile);
  const int H = image.height, W = image.width;
  const std::vector<TileWindow> windows = plan_tiles(H, W, tile, options_.tile_overlap);
  const models::HeadLayout& heads = card_.heads;
  const int64_t channels = heads.channels();
  const int types = heads.num_classes > 0 ? heads.num_classes + 1 : 0;
  const int maps_count = 3 + (heads.distance ? 1 : 0) + types;

  // Accumulators: weighted sums of each probability map, and the weights.
  std::vector<std::vector<float>> sums(static_cast<size_t>(maps_count), std::vector<float>(size_t(H) * W, 0.0f));
  std::vector<float> weight_sum(size_t(H) * W, 0.0f);
  std::vector<float> window_weight(size_t(tile) * tile);
  const int ramp = options_.tile_overlap / 2;
  for (int y = 0; y < tile; ++y)
    for (int x = 0; x < tile; ++x)
      window_weight[size_t(y) * tile + x] =
          edge_weight(std::min(y, tile - 1 - y), ramp) * edge_weight(std::min(x, tile - 1 - x), ramp);

  const auto mean = torch::tensor(std::vector<float>(card_.mean.begin(), card_.mean.end())).view({1, 3, 1, 1}) * 255.0f;
  const auto stdv = torch::tensor(std::vector<float>(card_.std.begin(), card_.std.end())).view({1, 3, 1, 1}) * 255.0f;
  network_->eval();
  torch::NoGradGuard no_grad;
  const bool bf16 = options_.precision == "bf16";
  for (size_t first = 0; first < windows.size(); first += static_cast<size_t>(options_.batch_size)) {
    const size_t count = std::min(windows.size() - first, static_cast<size_t>(options_.batch_size));
    torch::Tensor rgb = torch::empty({static_cast<int64_t>(count), 3, tile, tile}, torch::kFloat32);
    float* dst = rgb.data_ptr<float>();
    const size_t plane = size_t(tile) * tile;
    for (size_t k = 0; k < count; ++k) {
      const TileWindow& win = windows[first + k];
      for (int y = 0; y < tile; ++y) {
        const uint8_t* row = image.row(win.y + y) + size_t(win.x) * 3;
        for (int x = 0; x < tile; ++x)
          for (int c = 0; c < 3; ++c) dst[(k * 3 + c) * plane + size_t(y) * tile + x] = row[x * 3 + c];
      }
    }
    // The probabilities of each view of the batch, mapped back and averaged (test_time_views.h).
    const torch::Tensor probs = mean_over_views(options_.tta, rgb, [&](const torch::Tensor& view_rgb) {
      torch::Tensor guidance;
      if (network_->needs_guidance()) guidance = options_.guidance(view_rgb);
      torch::Tensor input = ((view_rgb - mean) / stdv).contiguous(torch::MemoryFormat::ChannelsLast);
      torch::Tensor logits;
      {
        models::Bf16AutocastScope autocast(bf16);
        logits = network_->forward(input, guidance);
      }
      logits = logits.to(torch::kFloat32);
      if (logits.size(1) != channels)
        throw ModelError(card_.name + ": the network gives " + std::to_string(logits.size(1)) +
                         " channels, its card describes " + std::to_string(channels));
      std::vector<torch::Tensor> parts;
      parts.push_back(torch::softmax(logits.narrow(1, 0, 3), 1));
      if (heads.distance) parts.push_back(torch::sigmoid(logits.narrow(1, heads.distance_channel(), 1)));
      if (types > 0) parts.push_back(torch::softmax(logits.narrow(1, heads.class_offset(), types), 1));
      return torch::cat(parts, 1);
    }).contiguous();
    const float* p = probs.data_ptr<float>();
    for (size_t k = 0; k < count; ++k) {
      const TileWindow& win = windows[first + k];
      for (int y = 0; y < tile; ++y)
        for (int x = 0; x < tile; ++x) {
          const size_t o = size_t(win.y + y) * W + (win.x + x);
          const float wgt = window_weight[size_t(y) * tile + x];
          weight_sum[o] += wgt;
          for (int m = 0; m < maps_count; ++m)
            sums[m][o] += wgt * p[(k * maps_count + m) * plane + size_t(y) * tile + x];
        }
    }
  }

  // Normalise and crop back to the original size.
  auto take = [&](int m) {
    ProbabilityMap out(original.height, original.width);
    for (int y = 0; y < original.height; ++y)
      for (int x = 0; x < original.width; ++x) {
        const size_t o = size_t(y) * W + x;
        out.at(y, x) = sums[m][o] / weight_sum[o];
      }
    return out;
  };
  HeadMaps maps;
  maps.background = take(0);
  maps.interior = take(1);
  maps.boundary = take(2);
  int next = 3;
  if (heads.distance) maps.distance = take(next++);
  for (int c = 0; c < types; ++c) maps.types.push_back(take(next++));
  return maps;
}

Segmentation ModelSegmenter::segment(const Image& image, const std::string& source) {
  HeadMaps maps;
  try {
    maps = predict(image);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw ModelError(source + ": model " + card_.name + " failed: " + what.substr(0, what.find('\n')));
  }
  return assemble_segmentation(maps, decode_instances(maps, decoding_), card_.class_names);
}

std::string find_model_file(const std::string& name_or_path) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(name_or_path)) return name_or_path;
  const bool looks_like_path = name_or_path.find('/') != std::string::npos ||
                               fs::path(name_or_path).extension() == ".safetensors";
  if (looks_like_path) throw IoError(name_or_path + ": model file not found");
  std::vector<fs::path> folders;
  if (const char* env = std::getenv("NUCLEISAM_MODELS")) folders.emplace_back(env);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = 0;
    const fs::path bin = fs::path(exe).parent_path();
    folders.push_back(bin.parent_path() / "share" / "nucleisam" / "models");
    folders.push_back(bin.parent_path() / "models");
  }
#ifdef NUCLEISAM_SOURCE_MODELS
  folders.emplace_back(NUCLEISAM_SOURCE_MODELS);
#endif
  std::string looked;
  for (const fs::path& f : folders) {
    const fs::path candidate = f / (name_or_path + ".safetensors");
    if (fs::is_regular_file(candidate)) return candidate.string();
    looked += (looked.empty() ? "" : ", ") + f.string();
  }
  throw OptionError("model '" + name_or_path + "' not found (looked in " + looked +
                "); give a .safetensors path, or set NUCLEISAM_MODELS");
}

}  // namespace nucleisam::predict
