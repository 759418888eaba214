// Sliding-window inference, central-region keeping and point prompts for category-descriptor SAM
// (see category_sam_segmenter.h).
#include "nucleisam/predict/category_sam_segmenter.h"

#include <algorithm>
#include <map>

#include "nucleisam/errors.h"
#include "nucleisam/limits.h"
#include "nucleisam/models/autocast.h"
#include "predict/reflect_pad.h"
#include "predict/test_time_views.h"

namespace nucleisam::predict {
namespace {

std::vector<int> positions(int n, int crop, int stride) {
  std::vector<int> p{0};
  if (n <= crop) return p;
  while (p.back() + crop < n) p.push_back(std::min(p.back() + stride, n - crop));
  return p;
}

// Owned intervals: boundaries in the middle of each overlap.
std::vector<int> owned(const std::vector<int>& p, int n, int crop) {
  std::vector<int> own{0};
  for (size_t i = 1; i < p.size(); ++i)
    own.push_back(static_cast<int>((int64_t{p[i - 1]} + crop + p[i]) / 2));
  own.push_back(n);
  return own;
}

size_t interval(const std::vector<int>& own, double v) {
  const auto it = std::upper_bound(own.begin(), own.end(), v);
  const size_t i = it == own.begin() ? 0 : static_cast<size_t>(it - own.begin()) - 1;
  return std::min(i, own.size() - 2);
}

CropPredictor network_predictor(std::shared_ptr<models::CategorySamImpl> net, const models::ModelCard& card,
                                bool bf16) {
  const auto mean = torch::tensor(std::vector<float>(card.mean.begin(), card.mean.end())).view({1, 3, 1, 1}) * 255.0f;
  const auto stdv = torch::tensor(std::vector<float>(card.std.begin(), card.std.end())).view({1, 3, 1, 1}) * 255.0f;
  return [net, mean, stdv, bf16](const torch::Tensor& rgb, const std::vector<std::vector<models::CategoryPoints>>& points) {
    torch::NoGradGuard no_grad;
    models::Bf16AutocastScope autocast(bf16);
    const torch::Tensor x = (rgb - mean) / stdv;
    bool any = false;
    for (const auto& p : points) any = any || !p.empty();
    if (!any) return torch::sigmoid(net->predict(x).masks.to(torch::kFloat32));
    std::vector<torch::Tensor> out;
    for (int64_t i = 0; i < x.size(0); ++i)
      out.push_back(torch::sigmoid(net->predict(x.narrow(0, i, 1), points[static_cast<size_t>(i)]).masks.to(torch::kFloat32)));
    return torch::cat(out, 0);
  };
}

}  // namespace

int64_t crop_grid_count(int64_t height, int64_t width, int64_t crop, int64_t stride) {
  const auto along = [&](int64_t n) { return n <= crop ? 1 : (n - crop + stride - 1) / stride + 1; };
  return along(height) * along(width);
}

CropGrid make_crop_grid(int height, int width, int crop, int stride) {
  if (crop < 16 || crop > kMaxCrop || stride < 1 || stride > crop)
    throw OptionError("crop " + std::to_string(crop) + " / stride " + std::to_string(stride) +
                      ": need a crop of 16 to " + std::to_string(kMaxCrop) + " pixels and 0 < stride <= crop");
  if (height <= 0 || width <= 0) throw DataError("empty image");
  if (int64_t{height} * width > limits::kMaxImagePixels)
    throw DataError("image of " + std::to_string(height) + " x " + std::to_string(width) + " pixels is above the " +
                    std::to_string(limits::kMaxImagePixels) + "-pixel limit");
  if (crop_grid_count(height, width, crop, stride) > kMaxCrops)
    throw OptionError("a stride of " + std::to_string(stride) + " makes more than " + std::to_string(kMaxCrops) +
                      " crops of this image");
  CropGrid g;
  g.crop = crop, g.stride = stride, g.height = height, g.width = width;
  g.xs = positions(width, crop, stride);
  g.ys = positions(height, crop, stride);
  g.x_own = owned(g.xs, width, crop);
  g.y_own = owned(g.ys, height, crop);
  return g;
}

size_t CropGrid::owner(double px, double py) const {
  return interval(y_own, py) * xs.size() + interval(x_own, px);
}

std::vector<size_t> CropGrid::containing(double px, double py) const {
  std::vector<size_t> out;
  for (size_t r = 0; r < ys.size(); ++r)
    for (size_t c = 0; c < xs.size(); ++c)
      if (px >= xs[c] && px < xs[c] + crop && py >= ys[r] && py < ys[r] + crop) out.push_back(r * xs.size() + c);
  return out;
}

infer::Segmentation instances_from_categories(const std::vector<infer::ProbabilityMap>& p,
                                              const infer::ThreeClassOptions& options) {
  if (p.size() < 3) throw ModelError("category maps: need background, a nucleus type and boundary");
  const int h = p[0].height, w = p[0].width;
  for (const auto& m : p)
    if (!m.same_size(h, w)) throw ModelError("category maps: maps of different sizes");
  const size_t k = p.size(), types = k - 2, plane = p[0].pixels();
  infer::ProbabilityMap interior(h, w), boundary(h, w);
  for (size_t i = 0; i < plane; ++i) {
    // Independent sigmoids, trained so that a pixel's own category beats every other one (the hinge
    // margin): a nucleus is where the best nucleus type beats background and boundary. Summing the
    // types instead would call a pixel a nucleus whenever several types are moderately high.
    float nucleus = 0;
    for (size_t c = 1; c <= types; ++c) nucleus = std::max(nucleus, p[c].data[i]);
    const float sum = p[0].data[i] + nucleus + p[k - 1].data[i];
    if (sum <= 0) continue;  // every category at 0: background
    interior.data[i] = nucleus / sum;
    boundary.data[i] = p[k - 1].data[i] / sum;
  }
  infer::Segmentation seg;
  seg.instances = infer::instances_from_three_class(interior, boundary, options);
  int32_t n = 0;
  for (int32_t v : seg.instances.data) n = std::max(n, v);
  std::vector<std::vector<double>> sums(static_cast<size_t>(n), std::vector<double>(types, 0.0));
  std::vector<int64_t> area(static_cast<size_t>(n), 0);
  for (size_t i = 0; i < plane; ++i) {
    const int32_t id = seg.instances.data[i];
    if (id <= 0) continue;
    ++area[id - 1];
    for (size_t t = 0; t < types; ++t) sums[id - 1][t] += p[t + 1].data[i];
  }
  for (int32_t id = 0; id < n; ++id) {
    size_t best = 0;
    for (size_t t = 1; t < types; ++t)
      if (sums[id][t] > sums[id][best]) best = t;
    seg.classes.push_back(static_cast<int>(best) + 1);
    seg.scores.push_back(area[id] > 0 ? static_cast<float>(sums[id][best] / double(area[id])) : 0.0f);
  }
  return seg;
}

CategorySamSegmenter::CategorySamSegmenter(CropPredictor predictor, models::ModelCard card,
                                           CategorySamSegmenterOptions options)
    : predictor_(std::move(predictor)), card_(std::move(card)), options_(std::move(options)) {
  if (!card_.heads.categories) throw ModelError(card_.name + ": not a category-descriptor SAM model");
  if (options_.crop <= 0) options_.crop = card_.tile_size;
  if (options_.stride <= 0)  // the card's overlap at its own tile size (128 of 256 for method 2)
    options_.stride = options_.crop == card_.tile_size && card_.tile_overlap > 0 ? options_.crop - card_.tile_overlap
                                                                                  : options_.crop / 2;
  if (options_.batch_size < 1) options_.batch_size = 1;
  if (options_.precision != "fp32" && options_.precision != "bf16")
    throw OptionError("precision must be fp32 or bf16");
  test_time_views(options_.tta);  // checks the count
  make_crop_grid(options_.crop, options_.crop, options_.crop, options_.stride);  // checks crop / stride
}

CategorySamSegmenter::CategorySamSegmenter(models::SegmentationNetwork network, models::ModelCard card,
                                           CategorySamSegmenterOptions options)
    : CategorySamSegmenter(CropPredictor{}, std::move(card), std::move(options)) {
  auto net = std::dynamic_pointer_cast<models::CategorySamImpl>(network);
  if (!net) throw ModelError(card_.name + ": the network is not a category-descriptor SAM");
  net->eval();
  predictor_ = network_predictor(net, card_, options_.precision == "bf16");
}

void CategorySamSegmenter::run_crops(const Image& original, TiledSegmentation& tiled, const std::vector<size_t>& which) {
  const int s = tiled.grid.crop;
  const Image image = reflect_pad(original, s, s);
  const int64_t k = card_.heads.category_count();
  last_run_ = which;
  for (size_t start = 0; start < which.size(); start += static_cast<size_t>(options_.batch_size)) {
    const size_t n = std::min(which.size() - start, static_cast<size_t>(options_.batch_size));
    torch::Tensor rgb = torch::empty({static_cast<int64_t>(n), 3, s, s}, torch::kFloat32);
    auto a = rgb.accessor<float, 4>();
    std::vector<std::vector<models::CategoryPoints>> points(n);
    for (size_t b = 0; b < n; ++b) {
      const size_t idx = which[start + b];
      const int x0 = tiled.grid.x(idx), y0 = tiled.grid.y(idx);
      for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x)
          for (int c = 0; c < 3; ++c) a[b][c][y][x] = image.at(y0 + y, x0 + x, c);
      std::map<int, models::CategoryPoints> by_category;
      for (const PointPrompt& p : tiled.points[idx]) {
        auto& cp = by_category[p.category];
        cp.category = p.category;
        cp.xy.emplace_back(p.x - static_cast<float>(x0), p.y - static_cast<float>(y0));
      }
      for (auto& [c, cp] : by_category) points[b].push_back(cp);
    }
    // Test-time views (test_time_views.h) for crops without prompts; prompted crops run as given.
    bool prompted = false;
    for (const auto& p : points) prompted = prompted || !p.empty();
    const torch::Tensor probs =
        (prompted ? predictor_(rgb, points)
                  : mean_over_views(options_.tta, rgb, [&](const torch::Tensor& view) { return predictor_(view, points); }))
            .to(torch::kFloat32)
            .contiguous();
    if (probs.dim() != 4 || probs.size(0) != static_cast<int64_t>(n) || probs.size(1) != k || probs.size(2) != s ||
        probs.size(3) != s)
      throw ModelError(card_.name + ": the network gave category maps of the wrong shape");
    const float* data = probs.data_ptr<float>();
    for (size_t b = 0; b < n; ++b) {
      std::vector<infer::ProbabilityMap> maps(static_cast<size_t>(k), infer::ProbabilityMap(s, s));
      for (int64_t c = 0; c < k; ++c)
        std::copy_n(data + (static_cast<int64_t>(b) * k + c) * s * s, static_cast<size_t>(s) * s, maps[c].data.begin());
      tiled.crops[which[start + b]] = instances_from_categories(maps, options_.decoding);
    }
  }
}

std::vector<std::vector<PointPrompt>> CategorySamSegmenter::points_per_crop(const CropGrid& grid,
                                                                          const std::vector<PointPrompt>& points) const {
  std::vector<std::vector<PointPrompt>> out(grid.count());
  const int64_t k = card_.heads.category_count();
  for (const PointPrompt& p : points) {
    if (p.category < 0 || p.category >= k)
      throw OptionError("point (" + std::to_string(p.x) + ", " + std::to_string(p.y) + "): category " +
                        std::to_string(p.category) + " is not one of the model's 0.." + std::to_string(k - 1));
    for (size_t idx : grid.containing(p.x, p.y)) out[idx].push_back(p);
  }
  return out;
}

void CategorySamSegmenter::check_previous(const Image& image, const TiledSegmentation& previous) const {
  const CropGrid& g = previous.grid;
  if (!g.count() || g.height != image.height || g.width != image.width || g.crop != options_.crop ||
      g.stride != options_.stride || previous.crops.size() != g.count() || previous.points.size() != g.count())
    throw OptionError("refine: the previous result belongs to another image or crop grid");
  const int types = static_cast<int>(card_.heads.category_count()) - 2;
  for (const infer::Segmentation& crop : previous.crops) {
    if (!crop.instances.same_size(g.crop, g.crop))
      throw OptionError("refine: the previous result belongs to another image or crop grid");
    for (int c : crop.classes)
      if (c < 1 || c > types) throw OptionError("refine: the previous result holds classes this model does not have");
  }
}

TiledSegmentation CategorySamSegmenter::run(const Image& image, const std::vector<PointPrompt>& points) {
  if (image.empty()) throw DataError("empty image");
  TiledSegmentation t;
  t.grid = make_crop_grid(image.height, image.width, options_.crop, options_.stride);
  t.crops.resize(t.grid.count());
  t.points = points_per_crop(t.grid, points);
  std::vector<size_t> all(t.grid.count());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  run_crops(image, t, all);
  return t;
}

TiledSegmentation CategorySamSegmenter::refine(const Image& image, const TiledSegmentation& previous,
                                               const std::vector<PointPrompt>& points) {
  check_previous(image, previous);
  std::vector<std::vector<PointPrompt>> now = previous.points;
  const std::vector<std::vector<PointPrompt>> added = points_per_crop(previous.grid, points);
  for (size_t i = 0; i < added.size(); ++i) now[i].insert(now[i].end(), added[i].begin(), added[i].end());
  return rerun_changed(image, previous, std::move(now));
}

TiledSegmentation CategorySamSegmenter::update(const Image& image, const TiledSegmentation& previous,
                                               const std::vector<PointPrompt>& points) {
  check_previous(image, previous);
  return rerun_changed(image, previous, points_per_crop(previous.grid, points));
}

TiledSegmentation CategorySamSegmenter::rerun_changed(const Image& image, const TiledSegmentation& previous,
                                                      std::vector<std::vector<PointPrompt>> points) {
  TiledSegmentation t = previous;
  std::vector<size_t> which;
  for (size_t i = 0; i < points.size(); ++i)
    if (points[i] != previous.points[i]) which.push_back(i);
  t.points = std::move(points);
  run_crops(image, t, which);
  return t;
}

infer::Segmentation CategorySamSegmenter::stitch(const TiledSegmentation& t) const {
  const CropGrid& g = t.grid;
  infer::Segmentation out;
  out.instances = LabelMap(g.height, g.width);
  const bool classed = card_.heads.num_classes > 0;
  if (classed) out.class_names = card_.class_names;
  int32_t next = 0;
  for (size_t idx = 0; idx < t.crops.size(); ++idx) {
    const infer::Segmentation& crop = t.crops[idx];
    const int x0 = g.x(idx), y0 = g.y(idx);
    int32_t n = 0;
    for (int32_t v : crop.instances.data) n = std::max(n, v);
    std::vector<std::vector<std::pair<int, int>>> pixels(static_cast<size_t>(n));
    for (int y = 0; y < crop.instances.height; ++y)
      for (int x = 0; x < crop.instances.width; ++x) {
        const int32_t id = crop.instances.at(y, x);
        if (id > 0 && y0 + y < g.height && x0 + x < g.width) pixels[id - 1].emplace_back(y0 + y, x0 + x);
      }
    for (int32_t id = 0; id < n; ++id) {
      const auto& px = pixels[id];
      if (px.empty()) continue;
      double cy = 0, cx = 0;
      for (const auto& [y, x] : px) cy += y + 0.5, cx += x + 0.5;
      cy /= double(px.size()), cx /= double(px.size());
      if (g.owner(cx, cy) != idx) continue;  // another crop's central region holds it
      size_t free = 0;
      for (const auto& [y, x] : px) free += out.instances.at(y, x) == 0;
      if (free * 2 < px.size()) continue;  // mostly taken already (a neighbour's copy)
      ++next;
      for (const auto& [y, x] : px)
        if (out.instances.at(y, x) == 0) out.instances.at(y, x) = next;
      if (classed) out.classes.push_back(crop.classes[id]);
      out.scores.push_back(crop.scores[id]);
    }
  }
  return out;
}

infer::Segmentation CategorySamSegmenter::segment(const Image& image, const std::string& source) {
  try {
    return stitch(run(image));
  } catch (const DataError& e) {
    throw DataError(source + ": " + e.what());
  }
}

}  // namespace nucleisam::predict
