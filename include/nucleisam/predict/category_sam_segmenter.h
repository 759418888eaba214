// Inference of category-descriptor SAM models (method 2, docs/method2.md): a sliding window of
// square crops (256 at stride 128 by default); each crop's per-category probabilities become
// instances (interior = the nucleus categories winning over background and boundary, components
// grown back over the boundary, class = the nucleus type with the highest mean probability inside,
// score = that mean probability); each instance is kept only from the crop whose central region
// holds its centroid, so none is duplicated or cut at crop borders. Point prompts (refinement)
// are added to their category's prompt in every crop that contains them; a TiledSegmentation
// keeps the per-crop results so that a refinement re-runs only the crops holding new points.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nucleisam/infer/postprocess.h"
#include "nucleisam/infer/segmenter.h"
#include "nucleisam/models/category_sam.h"
#include "nucleisam/models/model_file.h"

namespace nucleisam::predict {

// The crops over an image: positions 0, stride, 2*stride, ... with the last one flush with the
// far edge (one crop when the side is at most `crop`), and the part of the image each crop owns:
// from the middle of its overlap with the previous crop to the middle of its overlap with the
// next (the image edge for edge crops). The owned regions tile the image exactly.
struct CropGrid {
  int crop = 256, stride = 128;
  int height = 0, width = 0;             // the image's (before any padding)
  std::vector<int> xs, ys;               // crop corners, per column / row
  std::vector<int> x_own, y_own;         // owned region of column i: [x_own[i], x_own[i + 1])
  size_t count() const { return xs.size() * ys.size(); }
  int x(size_t index) const { return xs[index % xs.size()]; }
  int y(size_t index) const { return ys[index / xs.size()]; }
  // Index of the crop owning pixel (px, py) (coordinates may be fractional).
  size_t owner(double px, double py) const;
  // Indices of every crop containing pixel (px, py).
  std::vector<size_t> containing(double px, double py) const;
};
// Limits of a crop grid: crop side, and crops per image (a stride far below the crop would make
// millions of crops of a large image; each holds a crop-sized result in memory).
constexpr int kMaxCrop = 8192;
constexpr int64_t kMaxCrops = int64_t{1} << 20;
// The number of crops make_crop_grid makes (computed without making them).
int64_t crop_grid_count(int64_t height, int64_t width, int64_t crop, int64_t stride);
// Throws OptionError unless 16 <= crop <= kMaxCrop, 0 < stride <= crop and the grid has at most
// kMaxCrops crops; DataError for an empty image or one above limits::kMaxImagePixels.
CropGrid make_crop_grid(int height, int width, int crop, int stride);

// One crop's category probabilities (K maps: background, types 1..T, boundary; sigmoid values)
// -> instances with classes and scores. num_types = K - 2. Per pixel, the best nucleus type, the
// background and the boundary are normalised to sum to 1; interior = the best type's share, boundary
// = the boundary's, and infer's three-class rule (instances_from_three_class with `options`) makes
// the instances, so a pixel is a nucleus where a nucleus type beats background (an argmax rule, as
// the hinge loss trains it).
infer::Segmentation instances_from_categories(const std::vector<infer::ProbabilityMap>& probabilities,
                                              const infer::ThreeClassOptions& options);

// A point prompt in image pixels, for category `category` (1..T = nucleus types; 0 background and
// T + 1 boundary are allowed too).
struct PointPrompt {
  float x = 0, y = 0;
  int category = 1;
  bool operator==(const PointPrompt& o) const { return x == o.x && y == o.y && category == o.category; }
  bool operator!=(const PointPrompt& o) const { return !(*this == o); }
};

// Per-crop results of one image, in crop coordinates, and the grid they came from.
struct TiledSegmentation {
  CropGrid grid;
  std::vector<infer::Segmentation> crops;
  std::vector<std::vector<PointPrompt>> points;  // the prompts each crop was run with (image frame)
};

// Category probabilities N x K x S x S (values in [0, 1]) of a batch of crops given as RGB
// 0..255 float N x 3 x S x S, each with its point prompts in crop pixels (empty: none).
using CropPredictor = std::function<torch::Tensor(const torch::Tensor& rgb,
                                                  const std::vector<std::vector<models::CategoryPoints>>& points)>;

struct CategorySamSegmenterOptions {
  int batch_size = 4;
  std::string precision = "fp32";  // fp32 | bf16
  int crop = 0;                    // 0: the card's tile size
  int stride = 0;                  // 0: tile size - tile overlap of the card (crop / 2 at another crop)
  infer::ThreeClassOptions decoding{1.0f, 10, 2, 10};
  int tta = 1;  // views averaged per crop without prompts: 1, 2, 4 or 8 (predict/test_time_views.h)
};

class CategorySamSegmenter : public infer::Segmenter {
 public:
  // `network` must be a category-sam network (models::CategorySamImpl); ModelError otherwise.
  CategorySamSegmenter(models::SegmentationNetwork network, models::ModelCard card,
                       CategorySamSegmenterOptions options = {});
  // Any predictor (tests use oracles); card gives classes, categories and the tile size.
  CategorySamSegmenter(CropPredictor predictor, models::ModelCard card, CategorySamSegmenterOptions options = {});

  std::string name() const override { return card_.name; }
  infer::Segmentation segment(const Image& image, const std::string& source) override;
  double microns_per_pixel() const override { return card_.mpp; }
  std::optional<StainAmountRange> stain_range() const override { return card_.stain_range; }

  // Runs every crop (with the prompts of `points` that fall in it).
  TiledSegmentation run(const Image& image, const std::vector<PointPrompt>& points = {});
  // Adds `points` to `previous` (same image): re-runs only the crops containing one of them, with
  // all their points so far; every other crop's result is reused.
  TiledSegmentation refine(const Image& image, const TiledSegmentation& previous,
                           const std::vector<PointPrompt>& points);
  // `points` is now the image's whole set of points (some may be new, some gone): re-runs only the
  // crops whose points differ from the ones they ran with in `previous`, reuses every other crop.
  // OptionError when `previous` belongs to another image size or crop grid, or holds classes this
  // model does not have (a session from another model).
  TiledSegmentation update(const Image& image, const TiledSegmentation& previous,
                           const std::vector<PointPrompt>& points);
  // The image's instances from the crops' (central-region keeping; see above).
  infer::Segmentation stitch(const TiledSegmentation& tiled) const;

  // Crops run by the last run / refine (tests check refinement re-runs only the prompted ones).
  const std::vector<size_t>& last_crops_run() const { return last_run_; }
  const models::ModelCard& card() const { return card_; }

 private:
  // Each crop's prompts: the points (checked against the model's categories) that fall in it.
  std::vector<std::vector<PointPrompt>> points_per_crop(const CropGrid& grid,
                                                        const std::vector<PointPrompt>& points) const;
  void check_previous(const Image& image, const TiledSegmentation& previous) const;
  // `previous` with each crop's prompts replaced by `points` (one list per crop); re-runs the crops
  // whose prompts changed (refine and update).
  TiledSegmentation rerun_changed(const Image& image, const TiledSegmentation& previous,
                                  std::vector<std::vector<PointPrompt>> points);
  void run_crops(const Image& image, TiledSegmentation& tiled, const std::vector<size_t>& which);

  CropPredictor predictor_;
  models::ModelCard card_;
  CategorySamSegmenterOptions options_;
  std::vector<size_t> last_run_;
};

}  // namespace nucleisam::predict
