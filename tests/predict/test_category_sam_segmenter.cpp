// Category-SAM inference: the crop grid and its owned regions, instances from category maps, each
// nucleus exactly once whatever crop border it lies on, and point prompts that change the targeted
// region and re-run only the crops holding them. An oracle predictor reads the categories from
// colour-coded images, so the expected output is known exactly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "nucleisam/errors.h"
#include "nucleisam/models/model_file.h"
#include "nucleisam/predict/category_sam_segmenter.h"
#include "nucleisam/predict/click_benchmark.h"
#include "nucleisam/predict/refine_session.h"

using namespace nucleisam;
using predict::CategorySamSegmenter;

namespace {

// Colour codes of the oracle's categories (2 nucleus types).
const uint8_t kBackground = 250, kType1 = 50, kType2 = 100, kBoundary = 150;

int category_of(uint8_t v) {
  switch (v) {
    case kType1: return 1;
    case kType2: return 2;
    case kBoundary: return 3;
    default: return 0;
  }
}

struct Disc {
  int cx, cy, r, type;
};

// Image with colour-coded discs (1-pixel boundary ring) and the matching instance and class maps.
struct Scene {
  Image image;
  LabelMap instances;
  std::vector<int> classes;
};

Scene draw(int h, int w, const std::vector<Disc>& discs) {
  Scene s{Image(h, w, 3, kBackground), LabelMap(h, w), {}};
  auto inside = [](const Disc& d, int x, int y) { return (x - d.cx) * (x - d.cx) + (y - d.cy) * (y - d.cy) <= d.r * d.r; };
  for (size_t i = 0; i < discs.size(); ++i) {
    const Disc& d = discs[i];
    for (int y = d.cy - d.r; y <= d.cy + d.r; ++y)
      for (int x = d.cx - d.r; x <= d.cx + d.r; ++x) {
        if (y < 0 || x < 0 || y >= h || x >= w || !inside(d, x, y)) continue;
        const bool ring = !inside(d, x - 1, y) || !inside(d, x + 1, y) || !inside(d, x, y - 1) || !inside(d, x, y + 1);
        const uint8_t v = ring ? kBoundary : (d.type == 1 ? kType1 : kType2);
        for (int c = 0; c < 3; ++c) s.image.at(y, x, c) = v;
        s.instances.at(y, x) = static_cast<int32_t>(i + 1);
      }
    s.classes.push_back(d.type);
  }
  return s;
}

models::ModelCard card() {
  models::ModelCard c;
  c.name = "oracle";
  c.arch = "category-sam";
  c.heads.distance = false;
  c.heads.categories = true;
  c.heads.num_classes = 2;
  c.class_names = {"background", "type1", "type2"};
  c.tile_size = 256;
  c.tile_overlap = 128;
  return c;
}

// One-hot category probabilities from the colour codes; a point of category c paints a 7 x 7
// square of type c around it. Records how many crops it saw.
struct Oracle {
  std::shared_ptr<size_t> crops_seen = std::make_shared<size_t>(0);
  torch::Tensor operator()(const torch::Tensor& rgb, const std::vector<std::vector<models::CategoryPoints>>& points) const {
    const int64_t n = rgb.size(0), s = rgb.size(2);
    *crops_seen += static_cast<size_t>(n);
    auto out = torch::zeros({n, 4, s, s});
    auto a = out.accessor<float, 4>();
    auto in = rgb.accessor<float, 4>();
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t y = 0; y < s; ++y)
        for (int64_t x = 0; x < s; ++x) a[b][category_of(static_cast<uint8_t>(in[b][0][y][x]))][y][x] = 1.0f;
      for (const auto& cp : points[b])
        for (const auto& [px, py] : cp.xy)
          for (int64_t y = int64_t(py) - 3; y <= int64_t(py) + 3; ++y)
            for (int64_t x = int64_t(px) - 3; x <= int64_t(px) + 3; ++x) {
              if (y < 0 || x < 0 || y >= s || x >= s) continue;
              for (int k = 0; k < 4; ++k) a[b][k][y][x] = k == cp.category ? 1.0f : 0.0f;
            }
    }
    return out;
  }
};

// For each ground-truth instance: the predicted instances overlapping it, and whether the best
// one equals it pixel for pixel.
void expect_each_exactly_once(const Scene& gt, const infer::Segmentation& seg) {
  int32_t n_gt = 0, n_pred = 0;
  for (int32_t v : gt.instances.data) n_gt = std::max(n_gt, v);
  for (int32_t v : seg.instances.data) n_pred = std::max(n_pred, v);
  EXPECT_EQ(n_pred, n_gt);
  for (int32_t id = 1; id <= n_gt; ++id) {
    std::set<int32_t> hits;
    for (size_t i = 0; i < gt.instances.data.size(); ++i)
      if (gt.instances.data[i] == id) hits.insert(seg.instances.data[i]);
    ASSERT_EQ(hits.size(), 1u) << "ground-truth nucleus " << id << " is cut or missed";
    const int32_t p = *hits.begin();
    ASSERT_GT(p, 0) << "ground-truth nucleus " << id << " missed";
    for (size_t i = 0; i < gt.instances.data.size(); ++i)
      EXPECT_EQ(gt.instances.data[i] == id, seg.instances.data[i] == p) << "nucleus " << id << " pixel " << i;
    EXPECT_EQ(seg.classes[p - 1], gt.classes[id - 1]) << "nucleus " << id;
    // Score: the type's mean probability over the instance = its share of non-ring pixels.
    double area = 0, typed = 0;
    for (size_t i = 0; i < gt.instances.data.size(); ++i)
      if (gt.instances.data[i] == id) area += 1, typed += gt.image.data[i * 3] != kBoundary;
    EXPECT_NEAR(seg.scores[p - 1], typed / area, 1e-6) << "nucleus " << id;
  }
}

}  // namespace

TEST(CropGrid, PositionsAndOwnedRegionsByHand) {
  auto g = predict::make_crop_grid(100, 600, 256, 128);
  EXPECT_EQ(g.xs, (std::vector<int>{0, 128, 256, 344}));
  EXPECT_EQ(g.x_own, (std::vector<int>{0, 192, 320, 428, 600}));
  EXPECT_EQ(g.ys, (std::vector<int>{0}));
  EXPECT_EQ(g.y_own, (std::vector<int>{0, 100}));
  EXPECT_EQ(g.count(), 4u);
  EXPECT_EQ(g.owner(191.5, 50), 0u);
  EXPECT_EQ(g.owner(192.5, 50), 1u);
  EXPECT_EQ(g.containing(200, 10), (std::vector<size_t>{0, 1}));
  // The owned regions tile the image; each pixel's owner contains it.
  auto grid = predict::make_crop_grid(530, 530, 256, 128);
  for (int y = 0; y < 530; y += 7)
    for (int x = 0; x < 530; x += 7) {
      const size_t o = grid.owner(x + 0.5, y + 0.5);
      auto c = grid.containing(x + 0.5, y + 0.5);
      EXPECT_NE(std::find(c.begin(), c.end(), o), c.end()) << x << "," << y;
    }
  EXPECT_THROW(predict::make_crop_grid(10, 10, 256, 300), OptionError);
}

TEST(CategoryInstances, ClassByHighestMeanProbabilityAndItsScore) {
  // A 1 x 5 strip: boundary, three nucleus pixels, boundary; type 2 wins on average.
  std::vector<infer::ProbabilityMap> p(4, infer::ProbabilityMap(1, 5));
  const float t1[5] = {0, 0.6f, 0.1f, 0.2f, 0}, t2[5] = {0, 0.3f, 0.8f, 0.7f, 0}, b[5] = {0.9f, 0, 0, 0, 0.9f};
  for (int x = 0; x < 5; ++x) {
    p[1].data[x] = t1[x], p[2].data[x] = t2[x], p[3].data[x] = b[x];
    p[0].data[x] = 0.05f;
  }
  infer::ThreeClassOptions o;
  o.min_interior_area = 1;
  o.max_growth = 1;
  auto seg = predict::instances_from_categories(p, o);
  EXPECT_EQ(seg.instances.data, (std::vector<int32_t>{1, 1, 1, 1, 1}));  // grown over the boundary
  ASSERT_EQ(seg.classes.size(), 1u);
  EXPECT_EQ(seg.classes[0], 2);
  EXPECT_NEAR(seg.scores[0], (0.3 + 0.8 + 0.7) / 5, 1e-6);
}

TEST(CategoryInstances, APixelIsANucleusOnlyWhereANucleusTypeBeatsBackground) {
  // 1 x 7 strip, 4 nucleus types. Pixels 0-2: background 0.6 against 0.4 for every type (the
  // hinge loss is satisfied there: background wins by 0.2), so background, although the types
  // sum to 1.6. Pixels 3-5: type 3 at 0.9 against background 0.2: one nucleus. Pixel 6: background.
  std::vector<infer::ProbabilityMap> p(6, infer::ProbabilityMap(1, 7));
  for (int x = 0; x < 7; ++x) {
    const bool nucleus = x >= 3 && x <= 5;
    p[0].data[x] = nucleus ? 0.2f : 0.6f;
    for (int t = 1; t <= 4; ++t) p[t].data[x] = nucleus ? (t == 3 ? 0.9f : 0.1f) : 0.4f;
    p[5].data[x] = 0.05f;
  }
  infer::ThreeClassOptions o;
  o.min_interior_area = 1;
  o.min_area = 1;
  o.max_growth = 0;
  auto seg = predict::instances_from_categories(p, o);
  EXPECT_EQ(seg.instances.data, (std::vector<int32_t>{0, 0, 0, 1, 1, 1, 0}));
  ASSERT_EQ(seg.classes.size(), 1u);
  EXPECT_EQ(seg.classes[0], 3);
  EXPECT_NEAR(seg.scores[0], 0.9, 1e-6);
}

TEST(CategorySamSegmenter, NucleiOnCropBordersAppearExactlyOnce) {
  // Crops at x, y = 0, 128, 144 (400 pixels); owned boundaries at 192 and 264. Discs straddle a
  // crop's edge (256, 128, 144), the owned boundaries (192, 264), and sit in corners.
  const Scene s = draw(400, 400,
                       {{250, 60, 9, 1}, {192, 192, 8, 2}, {128, 300, 10, 1}, {264, 264, 7, 2},
                        {150, 30, 6, 1}, {30, 256, 9, 2}, {390, 390, 8, 1}, {60, 60, 5, 2}, {300, 130, 9, 1}});
  Oracle oracle;
  CategorySamSegmenter seg(oracle, card());
  auto out = seg.segment(s.image, "scene");
  expect_each_exactly_once(s, out);
  EXPECT_EQ(*oracle.crops_seen, 9u);
  EXPECT_EQ(out.class_names, card().class_names);
}

TEST(CategorySamSegmenter, TestTimeViewsOfAnEquivariantPredictorGiveItsOneAnswer) {
  // The oracle reads each pixel's colour, so every mirrored or turned view mapped back is the same
  // answer: a wrongly undone view would move the discs. Each crop runs once per view; crops with
  // point prompts run once.
  const Scene s = draw(400, 400, {{250, 60, 9, 1}, {192, 192, 8, 2}, {30, 256, 9, 2}, {300, 130, 9, 1}});
  Oracle oracle;
  predict::CategorySamSegmenterOptions o;
  o.tta = 8;
  CategorySamSegmenter seg(oracle, card(), o);
  const auto before = seg.run(s.image);
  expect_each_exactly_once(s, seg.stitch(before));
  EXPECT_EQ(*oracle.crops_seen, 9u * 8u);
  *oracle.crops_seen = 0;
  seg.refine(s.image, before, {{200.0f, 60.0f, 2}});
  EXPECT_EQ(*oracle.crops_seen, before.grid.containing(200, 60).size());
  o.tta = 6;
  EXPECT_THROW(CategorySamSegmenter(oracle, card(), o), OptionError);
}

TEST(CategorySamSegmenter, SaysTheResolutionOfItsCard) {
  // Slides and `segment --mpp` resample to it; 0 (unknown) leaves images as they are.
  models::ModelCard c = card();
  c.mpp = 0.5;
  EXPECT_EQ(CategorySamSegmenter(Oracle{}, c).microns_per_pixel(), 0.5);
  EXPECT_EQ(CategorySamSegmenter(Oracle{}, card()).microns_per_pixel(), 0.0);
}

TEST(CategorySamSegmenter, SmallImagesArePaddedToOneCrop) {
  const Scene s = draw(100, 80, {{40, 50, 8, 2}, {70, 90, 6, 1}});
  Oracle oracle;
  CategorySamSegmenter seg(oracle, card());
  auto out = seg.segment(s.image, "small");
  EXPECT_EQ(out.instances.height, 100);
  EXPECT_EQ(out.instances.width, 80);
  expect_each_exactly_once(s, out);
}

TEST(CategorySamSegmenter, PointPromptChangesTheTargetedRegionAndOnlyItsCrops) {
  const Scene s = draw(400, 400, {{60, 60, 8, 1}, {330, 330, 8, 2}});
  Oracle oracle;
  CategorySamSegmenter seg(oracle, card());
  auto before = seg.run(s.image);
  auto base = seg.stitch(before);
  *oracle.crops_seen = 0;
  // A click of type 2 on empty tissue at (200, 60): in the three crops of row 0.
  auto after = seg.refine(s.image, before, {{200.0f, 60.0f, 2}});
  const auto grid = before.grid;
  EXPECT_EQ(seg.last_crops_run(), grid.containing(200, 60));
  EXPECT_EQ(*oracle.crops_seen, grid.containing(200, 60).size());
  for (size_t i = 0; i < after.crops.size(); ++i) {
    const bool rerun = std::count(seg.last_crops_run().begin(), seg.last_crops_run().end(), i) > 0;
    if (!rerun) {
      EXPECT_EQ(after.crops[i].instances, before.crops[i].instances) << "crop " << i;
    }
  }
  auto refined = seg.stitch(after);
  int32_t n = 0;
  for (int32_t v : refined.instances.data) n = std::max(n, v);
  ASSERT_EQ(n, 3);
  const int32_t clicked = refined.instances.at(60, 200);
  ASSERT_GT(clicked, 0);
  EXPECT_EQ(refined.classes[clicked - 1], 2);
  // Everywhere away from the click, the result is unchanged.
  for (int y = 0; y < 400; ++y)
    for (int x = 0; x < 400; ++x)
      if (std::abs(x - 200) > 4 || std::abs(y - 60) > 4) {
        EXPECT_EQ(refined.instances.at(y, x) > 0, base.instances.at(y, x) > 0) << x << "," << y;
      }
  // A category the model does not have is an option error.
  EXPECT_THROW(seg.refine(s.image, before, {{10.0f, 10.0f, 9}}), OptionError);
}

TEST(CategorySamSegmenter, UpdateRerunsOnlyCropsWhosePointsChanged) {
  const Scene s = draw(400, 400, {{60, 60, 8, 1}, {330, 330, 8, 2}});
  Oracle oracle;
  CategorySamSegmenter seg(oracle, card());
  const std::vector<predict::PointPrompt> first = {{200.0f, 60.0f, 2}};
  auto before = seg.run(s.image, first);
  const auto grid = before.grid;
  // The same set again: nothing runs, the result is the same.
  auto same = seg.update(s.image, before, first);
  EXPECT_TRUE(seg.last_crops_run().empty());
  EXPECT_EQ(seg.stitch(same).instances, seg.stitch(before).instances);
  // A second point at (330, 300): only the crops holding it run.
  const std::vector<predict::PointPrompt> both = {{200.0f, 60.0f, 2}, {330.0f, 300.0f, 1}};
  auto added = seg.update(s.image, before, both);
  EXPECT_EQ(seg.last_crops_run(), grid.containing(330, 300));
  // The same as running the image from scratch with both points.
  EXPECT_EQ(seg.stitch(added).instances, seg.stitch(seg.run(s.image, both)).instances);
  // The first point taken away: the crops that held it run again, without it.
  auto removed = seg.update(s.image, added, {{330.0f, 300.0f, 1}});
  EXPECT_EQ(seg.last_crops_run(), grid.containing(200, 60));
  EXPECT_EQ(seg.stitch(removed).instances, seg.stitch(seg.run(s.image, {{330.0f, 300.0f, 1}})).instances);
  // A previous result of another image size, or with classes the model lacks, is refused.
  EXPECT_THROW(seg.update(draw(300, 400, {}).image, before, first), OptionError);
  auto foreign = before;
  for (auto& crop : foreign.crops)
    if (!crop.classes.empty()) crop.classes[0] = 7;
  EXPECT_THROW(seg.update(s.image, foreign, first), OptionError);
}

TEST(RefineSession, RoundTripsAndRefusesDamagedFiles) {
  const Scene s = draw(300, 280, {{60, 60, 8, 1}, {200, 250, 9, 2}, {150, 150, 7, 1}});
  Oracle oracle;
  CategorySamSegmenter seg(oracle, card());
  predict::RefineSession session;
  session.key = "image=1 model=2";
  session.tiled = seg.run(s.image, {{150.0f, 150.0f, 2}, {10.5f, 20.25f, 0}});
  const std::string dir = ::testing::TempDir() + "refine-session-test";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/a.refine-session";
  EXPECT_FALSE(predict::read_refine_session(path).has_value());
  predict::write_refine_session(path, session);
  const auto back = predict::read_refine_session(path);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->key, session.key);
  EXPECT_EQ(back->tiled.points, session.tiled.points);
  ASSERT_EQ(back->tiled.crops.size(), session.tiled.crops.size());
  for (size_t i = 0; i < back->tiled.crops.size(); ++i) {
    EXPECT_EQ(back->tiled.crops[i].instances, session.tiled.crops[i].instances);
    EXPECT_EQ(back->tiled.crops[i].classes, session.tiled.crops[i].classes);
    EXPECT_EQ(back->tiled.crops[i].scores, session.tiled.crops[i].scores);
  }
  EXPECT_EQ(seg.stitch(back->tiled).instances, seg.stitch(session.tiled).instances);
  // Cut short anywhere, or with a byte changed in the counts, it is a DataError naming the file.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  for (size_t cut : {size_t(0), size_t(5), size_t(40), bytes.size() / 2, bytes.size() - 1}) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(cut));
    try {
      predict::read_refine_session(path);
      ADD_FAILURE() << "a session cut at " << cut << " bytes was read";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  std::string bad = bytes;
  bad[8 + 4 + 4 + session.key.size() + 16] = '\x7f';  // the crop count
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bad.data(), static_cast<std::streamsize>(bad.size()));
  EXPECT_THROW(predict::read_refine_session(path), DataError);
  std::filesystem::remove_all(dir);
}

TEST(CategorySamSegmenter, RefusesModelsWithoutCategories) {
  models::ModelCard c = card();
  c.heads.categories = false;
  EXPECT_THROW(CategorySamSegmenter(Oracle{}, c), ModelError);
}

TEST(ClickBenchmark, ClickPointAndConfidenceByHand) {
  LabelMap gt(5, 5);
  for (int x = 0; x < 4; ++x) gt.at(1, x) = 1;  // centroid (1.5, 1): nearest pixel (1, 1)
  EXPECT_EQ(predict::click_point(gt, 1), (std::pair<float, float>{1.0f, 1.0f}));
  infer::Segmentation pred;
  pred.instances = LabelMap(5, 5);
  for (int x = 0; x < 3; ++x) pred.instances.at(1, x) = 1;  // IoU 3/4
  pred.classes = {2};
  pred.scores = {0.7f};
  EXPECT_NEAR(predict::gt_confidence(gt, 1, 2, pred), 0.7, 1e-6);
  EXPECT_EQ(predict::gt_confidence(gt, 1, 1, pred), 0.0);  // wrong class
  pred.instances.at(1, 1) = 0, pred.instances.at(1, 2) = 0;  // IoU 1/4
  EXPECT_EQ(predict::gt_confidence(gt, 1, 2, pred), 0.0);
}

TEST(ClickBenchmark, AClickFindsTheMissedNucleusOfItsClass) {
  // Ground truth: a visible type-1 disc and a type-2 7 x 7 square the image does not show; a click
  // of type 2 at the square's centre makes the oracle paint exactly that square.
  Scene s = draw(200, 200, {{50, 50, 9, 1}});
  for (int y = 97; y <= 103; ++y)
    for (int x = 97; x <= 103; ++x) s.instances.at(y, x) = 2;
  s.classes.push_back(2);
  data::Sample sample;
  sample.name = "clicks";
  sample.image = s.image;
  sample.instances = s.instances;
  sample.classes = s.classes;
  sample.classed = true;
  Oracle oracle;
  CategorySamSegmenter seg(oracle, card());
  auto steps = predict::click_benchmark(seg, {sample}, {{0, 1, 2}});
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].points_per_class, 0);
  const auto f1 = [](const metrics::EvaluationSummary& e, int c) { return e.classes.at(c - 1).detection.f1(); };
  EXPECT_DOUBLE_EQ(f1(steps[0].summary, 1), 1.0);
  EXPECT_DOUBLE_EQ(f1(steps[0].summary, 2), 0.0);
  EXPECT_DOUBLE_EQ(f1(steps[1].summary, 2), 1.0);
  EXPECT_DOUBLE_EQ(f1(steps[1].summary, 1), 1.0);  // the type-1 click lands inside its own disc
  EXPECT_DOUBLE_EQ(f1(steps[2].summary, 2), 1.0);  // nothing left to click
}
