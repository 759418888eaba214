// Augmentations: known answers for each geometric op, identities (a flip twice, four quarter
// turns), labels moving with pixels through the full pipeline, colour-op known answers, the stain
// jitter's OD-space geometry, and determinism per seed.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "nucleisam/data/augment.h"
#include "nucleisam/errors.h"

using namespace nucleisam;
using namespace nucleisam::data;

namespace {

// h x w sample with square instances of side `block` on a grid, every other cell empty. Instance
// id k has class 1 + k % 3; its pixels have colour (4 k, 40 * class, 200), background (250, 250, 250).
Sample block_sample(int h, int w, int block) {
  Sample s;
  s.name = "blocks";
  s.image = Image(h, w, 3, 250);
  s.instances = LabelMap(h, w);
  s.classed = true;
  int id = 0;
  for (int by = 0; by + block <= h; by += 2 * block)
    for (int bx = 0; bx + block <= w; bx += 2 * block) {
      ++id;
      s.classes.push_back(1 + id % 3);
      for (int y = by; y < by + block; ++y)
        for (int x = bx; x < bx + block; ++x) {
          s.instances.at(y, x) = id;
          s.image.at(y, x, 0) = static_cast<uint8_t>(4 * id);
          s.image.at(y, x, 1) = static_cast<uint8_t>(40 * s.classes.back());
          s.image.at(y, x, 2) = 200;
        }
    }
  return s;
}

// Small sample with distinct pixel values: image (y, x) = (10 y + x, 0, 0), label = 1 + y * w + x.
Sample counting_sample(int h, int w) {
  Sample s;
  s.name = "count";
  s.image = Image(h, w, 3, 0);
  s.instances = LabelMap(h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      s.image.at(y, x, 0) = static_cast<uint8_t>(10 * y + x);
      s.instances.at(y, x) = 1 + y * w + x;
    }
  return s;
}

bool same(const Sample& a, const Sample& b) {
  return a.image == b.image && a.instances == b.instances && a.classes == b.classes;
}

// Every instance is consecutive, has a class, and its pixels' G channel (where not blended at an
// edge) says the class: proof that labels and classes moved with the pixels.
void expect_labels_follow_pixels(const Sample& s) {
  ASSERT_EQ(static_cast<int>(s.classes.size()), s.instance_count());
  std::map<int32_t, std::map<int, int>> votes;
  std::set<int32_t> ids;
  for (int y = 0; y < s.image.height; ++y)
    for (int x = 0; x < s.image.width; ++x) {
      int32_t id = s.instances.at(y, x);
      if (!id) continue;
      ids.insert(id);
      // Only unblended class colours vote: bilinear resampling mixes colours at block edges.
      int g = s.image.at(y, x, 1);
      if (g == 40 || g == 80 || g == 120) votes[id][g]++;
    }
  EXPECT_EQ(static_cast<int>(ids.size()), s.instance_count());
  for (auto& [id, v] : votes) {
    int total = 0;
    for (auto& kv : v) total += kv.second;
    if (total < 10) continue;  // slivers cut by the crop border
    auto best = std::max_element(v.begin(), v.end(), [](auto& a, auto& b) { return a.second < b.second; });
    EXPECT_EQ(best->first, 40 * s.classes[id - 1]) << "instance " << id;
  }
}

}  // namespace

TEST(Geometry, FlipsAndQuarterTurnsAreInvertible) {
  Sample s = block_sample(20, 30, 3);
  EXPECT_TRUE(same(flip_horizontal(flip_horizontal(s)), s));
  EXPECT_TRUE(same(flip_vertical(flip_vertical(s)), s));
  EXPECT_TRUE(same(rotate90(rotate90(rotate90(rotate90(s, 1), 1), 1), 1), s));
  EXPECT_TRUE(same(rotate90(rotate90(s, 1), -1), s));
  EXPECT_TRUE(same(rotate90(s, 2), flip_vertical(flip_horizontal(s))));
  EXPECT_TRUE(same(rotate90(s, 3), rotate90(s, -1)));
  EXPECT_FALSE(same(flip_horizontal(s), s));
}

TEST(Geometry, QuarterTurnKnownAnswer) {
  // 2 x 3 labels  1 2 3 / 4 5 6  turned counter-clockwise become 3 x 2:  3 6 / 2 5 / 1 4.
  Sample s = counting_sample(2, 3);
  Sample r = rotate90(s, 1);
  ASSERT_EQ(r.instances.height, 3);
  ASSERT_EQ(r.instances.width, 2);
  EXPECT_EQ(r.instances.data, (std::vector<int32_t>{3, 6, 2, 5, 1, 4}));
  EXPECT_EQ(r.image.at(0, 1, 0), 12);  // pixel (1, 2) of the input
  Sample f = flip_horizontal(s);
  EXPECT_EQ(f.instances.data, (std::vector<int32_t>{3, 2, 1, 6, 5, 4}));
}

TEST(Geometry, ArbitraryRotationBy90MatchesQuarterTurn) {
  Sample s = counting_sample(5, 5);
  Sample a = rotate(s, 90.0), b = rotate90(s, 1);
  EXPECT_EQ(a.instances, b.instances);
  EXPECT_EQ(a.image, b.image);
  Sample c = rotate(s, -90.0), d = rotate90(s, -1);
  EXPECT_EQ(c.instances, d.instances);
}

TEST(Geometry, ArbitraryRotationKeepsIdsAndAreas) {
  Sample s = block_sample(64, 64, 8);
  Sample r = rotate(s, 30.0);
  expect_labels_follow_pixels(r);
  // The centre block (rows/cols 32..39 -> id on the grid) is fully inside after rotation and
  // keeps its area within nearest-neighbour error.
  int32_t centre_id = s.instances.at(35, 35);
  ASSERT_GT(centre_id, 0);
  int area = 0;
  for (int32_t v : s.instances.data) area += v == centre_id;
  std::map<int32_t, int> areas;
  for (int32_t v : r.instances.data) areas[v]++;
  int32_t rid = r.instances.at(35, 35);
  ASSERT_GT(rid, 0);
  EXPECT_NEAR(areas[rid], area, 0.15 * area);
  EXPECT_EQ(r.classes[rid - 1], s.classes[centre_id - 1]);
  // Corners come from outside the input: fill colour, no label.
  EXPECT_EQ(r.instances.at(0, 0), 0);
  EXPECT_EQ(r.image.at(0, 0, 0), 255);
}

TEST(Geometry, ScaleByTwoRepeatsPixels) {
  Sample s = counting_sample(3, 4);
  Sample u = scale(s, 2.0);
  ASSERT_EQ(u.instances.height, 6);
  ASSERT_EQ(u.instances.width, 8);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) EXPECT_EQ(u.instances.at(y, x), 1 + (y / 2) * 4 + x / 2) << y << "," << x;
  // Halving a 2x2-block image keeps one label per block.
  Sample blocks = scale(u, 0.5);
  EXPECT_EQ(blocks.instances, s.instances);
}

TEST(Geometry, CropPadsDropsAndRenumbers) {
  Sample s = block_sample(20, 20, 3);  // blocks at 0, 6, 12 on each axis: ids 1..9
  // Window rows 5..9, cols 10..17 (extends past nothing): holds block (6, 12) = id 6 only.
  Sample c = crop(s, 5, 10, 5, 8);
  EXPECT_EQ(c.instance_count(), 1);
  ASSERT_EQ(c.classes.size(), 1u);
  EXPECT_EQ(c.classes[0], s.classes[5]);
  EXPECT_EQ(c.instances.at(1, 2), 1);  // pixel (6, 12) of the input
  // Beyond the border: padded with fill and background.
  Sample p = crop(s, -2, 15, 6, 8, 17);
  EXPECT_EQ(p.image.at(0, 0, 0), 17);
  EXPECT_EQ(p.instances.at(0, 0), 0);
  EXPECT_EQ(p.image.at(2, 0, 0), 250);  // input (0, 15): background
  EXPECT_EQ(p.image.at(2, 7, 0), 17);   // input (0, 22): outside
  EXPECT_THROW(crop(s, 0, 0, 0, 4), DataError);
}

TEST(Geometry, RandomCropIsSeededAndPadsSmallImages) {
  Sample s = block_sample(50, 60, 4);
  std::mt19937_64 a(7), b(7), c(8);
  Sample x = random_crop(s, 16, a), y = random_crop(s, 16, b);
  EXPECT_TRUE(same(x, y));
  bool differs = false;
  for (int i = 0; i < 5 && !differs; ++i) differs = !same(random_crop(s, 16, c), x);
  EXPECT_TRUE(differs);
  std::mt19937_64 d(1);
  Sample big = random_crop(s, 64, d, 9);
  EXPECT_EQ(big.image.width, 64);
  EXPECT_EQ(big.image.at(0, 0, 0), 9);  // 7 rows / 2 columns of padding on the top-left
  EXPECT_EQ(big.instance_count(), s.instance_count());
}

TEST(Color, JitterKnownAnswers) {
  Image img(1, 2, 3);
  img.data = {100, 50, 200, 255, 0, 0};
  EXPECT_EQ(color_jitter(img, {}), img);
  ColorJitterFactors b;
  b.brightness = 0.5;
  EXPECT_EQ(color_jitter(img, b).data, (std::vector<uint8_t>{50, 25, 100, 128, 0, 0}));
  ColorJitterFactors c;
  c.contrast = 0;  // every channel becomes the mean grey level
  Image flat = color_jitter(img, c);
  double mean = (0.299 * 100 + 0.587 * 50 + 0.114 * 200 + 0.299 * 255) / 2;
  for (uint8_t v : flat.data) EXPECT_EQ(v, static_cast<uint8_t>(std::lround(mean)));
  ColorJitterFactors sat;
  sat.saturation = 0;  // per-pixel grey
  Image g = color_jitter(img, sat);
  EXPECT_EQ(g.data[0], g.data[1]);
  EXPECT_EQ(g.data[3], 76);  // 0.299 * 255
  ColorJitterFactors hue;
  hue.hue = 1.0 / 3.0;  // red -> green, a third of a turn
  Image h = color_jitter(img, hue);
  EXPECT_EQ(h.data[3], 0);
  EXPECT_EQ(h.data[4], 255);
  EXPECT_EQ(h.data[5], 0);
}

TEST(Color, HueThirdTurnPermutesChannels) {
  // A 120-degree hue rotation maps (r, g, b) to (b, r, g) exactly, for every colour.
  std::mt19937_64 rng(12);
  Image img(8, 8, 3);
  for (auto& v : img.data) v = static_cast<uint8_t>(rng() % 256);
  ColorJitterFactors f;
  f.hue = 1.0 / 3.0;
  Image out = color_jitter(img, f);
  for (size_t i = 0; i < img.pixels(); ++i) {
    EXPECT_NEAR(out.data[3 * i + 0], img.data[3 * i + 2], 1) << i;
    EXPECT_NEAR(out.data[3 * i + 1], img.data[3 * i + 0], 1) << i;
    EXPECT_NEAR(out.data[3 * i + 2], img.data[3 * i + 1], 1) << i;
  }
  f.hue = -1.0 / 3.0;  // and back the other way: (g, b, r)
  Image back = color_jitter(img, f);
  for (size_t i = 0; i < img.pixels(); ++i) EXPECT_NEAR(back.data[3 * i + 0], img.data[3 * i + 1], 1) << i;
}

TEST(Color, StainJitterWorksAlongStainVectors) {
  Image img(1, 3, 3);
  img.data = {255, 255, 255, 120, 80, 160, 30, 20, 90};
  Image same_img = stain_jitter(img, {});
  for (size_t i = 0; i < img.data.size(); ++i) EXPECT_NEAR(same_img.data[i], img.data[i], 1) << i;
  // A haematoxylin shift on white glass produces OD proportional to the H vector
  // (0.65, 0.70, 0.29) (Ruifrok & Johnston), i.e. the blue-purple of nuclei.
  StainFactors f;
  f.beta[0] = 1.0;
  Image out = stain_jitter(img, f);
  double od[3];
  for (int c = 0; c < 3; ++c) od[c] = -std::log((out.data[c] + 1) / 256.0);
  double norm = std::sqrt(0.65 * 0.65 + 0.70 * 0.70 + 0.29 * 0.29);
  EXPECT_NEAR(od[0], 0.65 / norm, 0.01);
  EXPECT_NEAR(od[1], 0.70 / norm, 0.01);
  EXPECT_NEAR(od[2], 0.29 / norm, 0.01);
  EXPECT_LT(out.data[1], out.data[2]);  // less green than blue
  // Scaling eosin never touches a pixel with no stain.
  StainFactors e;
  e.alpha[1] = 1.5;
  EXPECT_EQ(stain_jitter(img, e).data[0], 255);
  EXPECT_NE(stain_jitter(img, e).data, stain_jitter(img, {}).data);
}

TEST(Color, StainJitterMatchesTheDirectFormula) {
  // Reference written out from the definition: OD = -ln((I + 1) / 256), C = OD M^-1,
  // C' = alpha C + beta, I' = 256 exp(-C' M) - 1, with M the normalised Ruifrok-Johnston rows.
  const double raw[3][3] = {{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}, {0.27, 0.57, 0.78}};
  double m[3][3];
  for (int k = 0; k < 3; ++k) {
    double norm = std::sqrt(raw[k][0] * raw[k][0] + raw[k][1] * raw[k][1] + raw[k][2] * raw[k][2]);
    for (int c = 0; c < 3; ++c) m[k][c] = raw[k][c] / norm;
  }
  std::mt19937_64 rng(3);
  Image img(16, 16, 3);
  for (auto& v : img.data) v = static_cast<uint8_t>(rng() % 256);
  StainFactors f = draw_stain_jitter({0.3, 0.2}, rng);
  Image out = stain_jitter(img, f);
  for (size_t i = 0; i < img.pixels(); ++i) {
    double od[3], conc[3];
    for (int c = 0; c < 3; ++c) od[c] = -std::log((img.data[3 * i + c] + 1) / 256.0);
    // Solve conc M = od by Cramer's rule (M^T conc^T = od^T).
    auto det3 = [](double a[3][3]) {
      return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
             a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    };
    double mt[3][3];
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) mt[r][c] = m[c][r];
    double d = det3(mt);
    for (int k = 0; k < 3; ++k) {
      double t[3][3];
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) t[r][c] = c == k ? od[r] : mt[r][c];
      conc[k] = f.alpha[k] * det3(t) / d + f.beta[k];
    }
    for (int c = 0; c < 3; ++c) {
      double o = conc[0] * m[0][c] + conc[1] * m[1][c] + conc[2] * m[2][c];
      double expected = std::clamp(256.0 * std::exp(-o) - 1.0, 0.0, 255.0);
      EXPECT_NEAR(out.data[3 * i + c], expected, 1.0) << "pixel " << i << " channel " << c;
    }
  }
}

TEST(Color, StainAmountScaleIsLogUniformPerStainAndOffAtOne) {
  // Off (1): the same numbers as a recipe without it, and nothing more is drawn.
  std::mt19937_64 a(11), b(11);
  StainRanges plain{0.1, 0.05}, off{0.1, 0.05, 1.0};
  for (int i = 0; i < 20; ++i) {
    StainFactors x = draw_stain_jitter(plain, a), y = draw_stain_jitter(off, b);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(x.alpha[k], y.alpha[k]);
      EXPECT_EQ(x.beta[k], y.beta[k]);
    }
  }
  EXPECT_EQ(a(), b());
  // s = 2 with no other jitter: H and E factors log-uniform in [1/2, 2], drawn independently;
  // the residual stain is not scaled.
  std::mt19937_64 rng(5);
  StainRanges wide{0.0, 0.0, 2.0};
  const int n = 4000;
  int below[2] = {0, 0}, quarter[2] = {0, 0}, both_high = 0;
  double log_sum[2] = {0, 0};
  for (int i = 0; i < n; ++i) {
    StainFactors f = draw_stain_jitter(wide, rng);
    EXPECT_EQ(f.alpha[2], 1.0);
    for (int k = 0; k < 2; ++k) {
      ASSERT_GE(f.alpha[k], 0.5);
      ASSERT_LE(f.alpha[k], 2.0);
      below[k] += f.alpha[k] < 1;
      quarter[k] += f.alpha[k] < std::pow(2.0, -0.5);  // log-uniform: P = 1/4
      log_sum[k] += std::log(f.alpha[k]);
    }
    both_high += f.alpha[0] > 1 && f.alpha[1] > 1;  // independent: P = 1/4
  }
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(below[k] / double(n), 0.5, 0.03) << k;
    EXPECT_NEAR(quarter[k] / double(n), 0.25, 0.03) << k;
    EXPECT_NEAR(log_sum[k] / n, 0.0, 0.03) << k;
  }
  EXPECT_NEAR(both_high / double(n), 0.25, 0.03);
}

TEST(Pipeline, DeterministicPerSeedAndLabelsFollowPixels) {
  Sample s = block_sample(300, 200, 12);
  AugmentConfig cfg;
  cfg.crop_size = 64;
  cfg.rotate_probability = 1;
  cfg.scale_probability = 1;
  cfg.color_probability = 0;  // keep the colour code readable
  cfg.stain_probability = 0;
  std::mt19937_64 a(42), b(42);
  Sample x = augment(s, cfg, a), y = augment(s, cfg, b);
  EXPECT_TRUE(same(x, y));
  EXPECT_EQ(x.image.width, 64);
  EXPECT_EQ(x.instances.height, 64);
  std::mt19937_64 c(43);
  EXPECT_FALSE(same(augment(s, cfg, c), x));
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 r(seed);
    expect_labels_follow_pixels(augment(s, cfg, r));
  }
  // Colour ops never touch labels.
  cfg.color_probability = 1;
  cfg.stain_probability = 1;
  std::mt19937_64 d(42), e(42);
  AugmentConfig geometric_only = cfg;
  geometric_only.color_probability = 0;
  geometric_only.stain_probability = 0;
  Sample coloured = augment(s, cfg, d), plain = augment(s, geometric_only, e);
  EXPECT_EQ(coloured.instances, plain.instances);
  EXPECT_NE(coloured.image, plain.image);
}

TEST(Pipeline, PlainCropKeepsPixelsExact) {
  // Without scale/rotation the crop copies pixels (no resampling): every output pixel exists in
  // the input with the same label.
  Sample s = counting_sample(20, 20);
  AugmentConfig cfg;
  cfg.crop_size = 8;
  cfg.color_probability = 0;
  cfg.stain_probability = 0;
  cfg.flips = false;
  cfg.rotate90 = false;
  std::mt19937_64 r(5);
  Sample o = augment(s, cfg, r);
  int y0 = o.image.at(0, 0, 0) / 10, x0 = o.image.at(0, 0, 0) % 10;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) EXPECT_EQ(o.image.at(y, x, 0), s.image.at(y0 + y, x0 + x, 0));
  EXPECT_EQ(o.instance_count(), 64);
}
