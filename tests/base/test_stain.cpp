// Stain estimation and normalisation (nucleisam/stain.h) on images drawn from known stains:
// Beer-Lambert rendering I = 256 exp(-(a_H H + a_E E)) - 1 of known amounts a_H, a_E, so the
// colours, the amount percentiles and the normalised pixels have answers worked out here.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "nucleisam/errors.h"
#include "nucleisam/stain.h"
#include "support/test_support.h"

using namespace nucleisam;

namespace {

StainVectors stains(std::array<double, 3> h, double h_max, std::array<double, 3> e, double e_max) {
  StainVectors s;
  const std::array<double, 3>* rows[2] = {&h, &e};
  for (int k = 0; k < 2; ++k) {
    const auto& r = *rows[k];
    const double norm = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
    for (int c = 0; c < 3; ++c) s.colour[k][c] = r[c] / norm;
  }
  s.max_amount[0] = h_max;
  s.max_amount[1] = e_max;
  return s;
}

// The training images' stains and a bluer, darker lab's.
const StainVectors kPink = stains({0.584, 0.729, 0.357}, 1.9, {0.302, 0.850, 0.433}, 1.2);
const StainVectors kBlue = stains({0.70, 0.68, 0.22}, 2.8, {0.15, 0.90, 0.41}, 1.0);

using test::StainedTissue;

StainedTissue tissue(const StainVectors& s, int size, uint64_t seed, double h_scale = 1, double e_scale = 1) {
  return test::stained_tissue(s.colour, size, size, seed, h_scale, e_scale);
}

double degrees_between(const double a[3], const double b[3]) {
  const double dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  return std::acos(std::clamp(dot, -1.0, 1.0)) * 180 / 3.14159265358979;
}

// numpy-style percentile of the true amounts over the pixels the estimate calls tissue.
double expected_percentile(const StainedTissue& t, const std::vector<double>& amount, double p) {
  std::vector<double> v;
  for (size_t i = 0; i < amount.size(); ++i) {
    const uint8_t* px = &t.image.data[3 * i];
    if (std::min({optical_density(px[0]), optical_density(px[1]), optical_density(px[2])}) >= 0.15) v.push_back(amount[i]);
  }
  std::sort(v.begin(), v.end());
  const double pos = p / 100 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[std::min(lo + 1, v.size() - 1)] - v[lo]);
}

}  // namespace

TEST(Stain, OpticalDensityOfWhiteAndBlack) {
  EXPECT_DOUBLE_EQ(optical_density(255), 0.0);
  EXPECT_NEAR(optical_density(0), std::log(256.0), 1e-12);
  EXPECT_NEAR(optical_density(127), std::log(2.0), 1e-12);
}

TEST(Stain, IdentityMapKeepsEveryLevel) {
  Image img(16, 16, 3);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<uint8_t>(i % 256);
  const double identity[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, zero[3] = {0, 0, 0};
  EXPECT_EQ(map_optical_density(img, identity, zero), img);
  // Doubling the density: level L -> 256 ((L + 1) / 256)^2 - 1, e.g. 127 -> 63.
  const double twice[3][3] = {{2, 0, 0}, {0, 2, 0}, {0, 0, 2}};
  Image one(1, 1, 3);
  one.data = {127, 255, 0};
  EXPECT_EQ(map_optical_density(one, twice, zero).data, (std::vector<uint8_t>{63, 255, 0}));
  // Large negative densities saturate at white, never wrap or become NaN.
  const double minus[3][3] = {{-40, 0, 0}, {0, -40, 0}, {0, 0, -40}};
  EXPECT_EQ(map_optical_density(one, minus, zero).data, (std::vector<uint8_t>{255, 255, 255}));
  EXPECT_THROW(map_optical_density(Image(2, 2, 1), identity, zero), DataError);
}

TEST(Stain, EstimateRecoversKnownColoursAndAmounts) {
  const StainedTissue t = tissue(kPink, 200, 1);
  const StainEstimate e = estimate_stains({&t.image});
  ASSERT_TRUE(e.ok) << e.why;
  EXPECT_LT(degrees_between(e.stains.colour[0], kPink.colour[0]), 1.5);  // haematoxylin first
  EXPECT_LT(degrees_between(e.stains.colour[1], kPink.colour[1]), 1.5);
  EXPECT_NEAR(e.stains.max_amount[0], expected_percentile(t, t.h, 99), 0.03);
  EXPECT_NEAR(e.stains.max_amount[1], expected_percentile(t, t.e, 99), 0.03);
  EXPECT_GT(e.tissue_pixels, 200 * 200 / 2);
  EXPECT_LT(e.tissue_pixels, 200 * 200 * 3 / 4 + 1);  // never the glass

  // Another lab's colours are found as well.
  const StainedTissue b = tissue(kBlue, 200, 2);
  const StainEstimate eb = estimate_stains({&b.image});
  ASSERT_TRUE(eb.ok) << eb.why;
  EXPECT_LT(degrees_between(eb.stains.colour[0], kBlue.colour[0]), 1.5);
  EXPECT_LT(degrees_between(eb.stains.colour[1], kBlue.colour[1]), 1.5);
}

TEST(Stain, ImagesArePooledAsOne) {
  const StainedTissue a = tissue(kPink, 64, 3), b = tissue(kPink, 64, 4, 1.5, 0.8);
  Image both(128, 64, 3);
  std::copy(a.image.data.begin(), a.image.data.end(), both.data.begin());
  std::copy(b.image.data.begin(), b.image.data.end(), both.data.begin() + static_cast<std::ptrdiff_t>(a.image.data.size()));
  const StainEstimate pooled = estimate_stains({&a.image, &b.image}), whole = estimate_stains({&both});
  ASSERT_TRUE(pooled.ok);
  EXPECT_EQ(pooled.tissue_pixels, whole.tissue_pixels);
  for (int k = 0; k < 2; ++k) {
    EXPECT_DOUBLE_EQ(pooled.stains.max_amount[k], whole.stains.max_amount[k]);
    for (int c = 0; c < 3; ++c) EXPECT_DOUBLE_EQ(pooled.stains.colour[k][c], whole.stains.colour[k][c]);
  }
  // A pixel budget keeps every k-th pixel (here k = 3, as the test images repeat every 4): about
  // the same answer from a third of them.
  StainEstimateOptions sparse;
  sparse.max_pixels = 2800;
  sparse.min_tissue_pixels = 500;
  const StainEstimate third = estimate_stains({&a.image, &b.image}, sparse);
  ASSERT_TRUE(third.ok) << third.why;
  EXPECT_NEAR(static_cast<double>(third.tissue_pixels), pooled.tissue_pixels / 3.0, pooled.tissue_pixels * 0.02);
  EXPECT_LT(degrees_between(third.stains.colour[0], pooled.stains.colour[0]), 2.0);
  EXPECT_NEAR(third.stains.max_amount[0], pooled.stains.max_amount[0], 0.05);
}

TEST(Stain, NoEstimateWithoutTwoStainsOrTissue) {
  Image glass(100, 100, 3, 240);
  glass.at(5, 5, 0) = 40;
  StainEstimate e = estimate_stains({&glass});
  EXPECT_FALSE(e.ok);
  EXPECT_NE(e.why.find("too little tissue"), std::string::npos) << e.why;

  // Grey tissue: every pixel the same colour direction.
  Image grey(100, 100, 3);
  for (int64_t i = 0; i < 100 * 100; ++i)
    for (int c = 0; c < 3; ++c) grey.data[3 * i + c] = static_cast<uint8_t>(40 + i % 150);
  e = estimate_stains({&grey});
  EXPECT_FALSE(e.ok);
  EXPECT_NE(e.why.find("cannot be told apart"), std::string::npos) << e.why;

  // Haematoxylin alone.
  const StainVectors only_h = stains({0.65, 0.70, 0.29}, 2, {0.65, 0.70, 0.29}, 2);
  const StainedTissue h = tissue(only_h, 100, 5);
  EXPECT_FALSE(estimate_stains({&h.image}).ok);
  const Image one_channel(4, 4, 1);
  EXPECT_THROW(estimate_stains({&glass, &one_channel}), DataError);
}

TEST(Stain, NormalisationRedrawsKnownAmountsInTheTargetStains) {
  // Known source stains: the result is the image drawn from the scaled amounts in the target's colours.
  const StainedTissue blue = tissue(kBlue, 64, 6);
  const Image out = normalize_stains(blue.image, kBlue, kPink);
  int worst = 0;
  for (size_t i = 0; i < blue.h.size(); ++i) {
    uint8_t expected[3];
    test::draw_stained_pixel(expected, kPink.colour, blue.h[i] * kPink.max_amount[0] / kBlue.max_amount[0],
         blue.e[i] * kPink.max_amount[1] / kBlue.max_amount[1]);
    for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(out.data[3 * i + c] - expected[c]));
  }
  EXPECT_LE(worst, 3);  // the 8-bit rounding of the input, amplified where the stains are dark
  EXPECT_EQ(out.at(0, 0, 0), 255);  // glass stays white
  EXPECT_EQ(out.at(0, 0, 2), 255);
}

TEST(Stain, EstimatedNormalisationBringsAnotherLabToTheReference) {
  // The same tissue drawn by a bluer lab with 1.5x the haematoxylin, normalised with its own
  // estimate, comes out close to the reference lab's drawing of it.
  const StainedTissue reference = tissue(kPink, 160, 7);
  const StainedTissue other = tissue(kBlue, 160, 7, 1.5, 1.0);
  const StainEstimate ref = estimate_stains({&reference.image}), src = estimate_stains({&other.image});
  ASSERT_TRUE(ref.ok && src.ok);
  const Image out = normalize_stains(other.image, src.stains, ref.stains);
  double before = 0, after = 0;
  for (size_t i = 0; i < out.data.size(); ++i) {
    before += std::abs(other.image.data[i] - reference.image.data[i]);
    after += std::abs(out.data[i] - reference.image.data[i]);
  }
  before /= static_cast<double>(out.data.size());
  after /= static_cast<double>(out.data.size());
  EXPECT_GT(before, 10);
  EXPECT_LT(after, 4) << "mean absolute difference before " << before;
}

TEST(Stain, ReferenceIsPlausibleHaematoxylinAndEosin) {
  const StainVectors& r = reference_stains();
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(r.colour[k][0] * r.colour[k][0] + r.colour[k][1] * r.colour[k][1] + r.colour[k][2] * r.colour[k][2], 1,
                1e-3);
    EXPECT_GT(r.max_amount[k], 0.3);
  }
  EXPECT_GT(r.colour[0][0], r.colour[1][0]);  // haematoxylin absorbs more red
  EXPECT_GT(r.colour[1][1], r.colour[0][1]);  // eosin more green
  EXPECT_EQ(describe(kPink).substr(0, 4), "H (0");
}

TEST(Stain, ScalingAmountsInPlaceKeepsColoursAndResidual) {
  // Known stains: haematoxylin x0.5 is the drawing with half the haematoxylin.
  const StainedTissue t = tissue(kBlue, 64, 8);
  const double half_h[2] = {0.5, 1.0};
  const Image out = scale_stain_amounts(t.image, kBlue, half_h);
  int worst = 0;
  for (size_t i = 0; i < t.h.size(); ++i) {
    uint8_t expected[3];
    test::draw_stained_pixel(expected, kBlue.colour, t.h[i] * 0.5, t.e[i]);
    for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(out.data[3 * i + c] - expected[c]));
  }
  EXPECT_LE(worst, 2);
  // Factors of 1 change nothing, not even what the two stains do not explain (a grey cast here).
  Image cast = t.image;
  for (auto& v : cast.data) v = static_cast<uint8_t>(v * 0.9);
  const double ones[2] = {1, 1};
  EXPECT_EQ(scale_stain_amounts(cast, kBlue, ones), cast);
}

TEST(Stain, RangeModeChangesOnlyAmountsOutsideTheRange) {
  StainNormalization n;
  n.mode = StainNormalization::Mode::range;
  n.range = StainAmountRange{{0.5, 0.4}, {2.0, 1.5}};
  StainEstimate e;
  e.ok = true;
  e.stains = kPink;  // 1.9 and 1.2: inside
  StainMap map = plan_stain_map(n, e);
  EXPECT_TRUE(map.identity);
  EXPECT_NE(map.note.find("in range"), std::string::npos) << map.note;

  // Haematoxylin 4.0 is brought to 2.0: the map is scale_stain_amounts with 0.5 and 1.
  e.stains.max_amount[0] = 4.0;
  map = plan_stain_map(n, e);
  ASSERT_FALSE(map.identity);
  EXPECT_EQ(map.note, "haematoxylin amount 4.00 -> 2.00");
  const StainedTissue t = tissue(kPink, 48, 9);
  const double factor[2] = {0.5, 1.0};
  EXPECT_EQ(apply_stain_map(map, t.image), scale_stain_amounts(t.image, kPink, factor));

  // Eosin 0.2 is brought up to 0.4.
  e.stains = kPink;
  e.stains.max_amount[1] = 0.2;
  map = plan_stain_map(n, e);
  EXPECT_EQ(map.note, "eosin amount 0.20 -> 0.40");

  // Match mode always redraws; no estimate or mode off: nothing.
  n.mode = StainNormalization::Mode::match;
  n.target = kBlue;
  e.stains = kPink;
  map = plan_stain_map(n, e);
  ASSERT_FALSE(map.identity);
  EXPECT_EQ(apply_stain_map(map, t.image), normalize_stains(t.image, kPink, kBlue));
  e.ok = false;
  e.why = "too little tissue to estimate its stains (3 pixels, 2000 needed)";
  map = plan_stain_map(n, e);
  EXPECT_TRUE(map.identity);
  EXPECT_EQ(map.note, "stains not normalised: " + e.why);
  EXPECT_EQ(apply_stain_map(map, t.image), t.image);
  n.mode = StainNormalization::Mode::off;
  EXPECT_TRUE(plan_stain_map(n, StainEstimate{true, "", kPink, 10}).identity);
}

TEST(Stain, ReferenceRangeHoldsTheReferenceStains) {
  const StainAmountRange& r = reference_amount_range();
  for (int k = 0; k < 2; ++k) {
    EXPECT_LT(r.low[k], reference_stains().max_amount[k]);
    EXPECT_GT(r.high[k], reference_stains().max_amount[k]);
  }
}

// Pen ink and tissue-marking dye on the tissue: black and green strokes (6% of the pixels) are
// left out of the estimate, which then finds the clean image's stains; counted with them (the
// estimate before skip_dyes) they pull the colours and amounts away. Blue ink looks like
// haematoxylin and is not left out.
TEST(Stain, InkAndMarkingDyeAreLeftOutOfTheEstimate) {
  const StainedTissue clean = tissue(kPink, 200, 5);
  const StainEstimate reference = estimate_stains({&clean.image});
  ASSERT_TRUE(reference.ok) << reference.why;
  EXPECT_EQ(reference.dye_pixels, 0);
  Image inked = clean.image;
  const uint8_t black[3] = {20, 20, 25}, green[3] = {40, 120, 60}, blue[3] = {40, 50, 150};
  int64_t strokes = 0;
  for (int y = 0; y < 200; ++y)
    for (int x = 0; x < 200; ++x) {
      const uint8_t* ink = nullptr;
      if (std::abs(x - y) < 4)
        ink = black;  // a diagonal black stroke
      else if (y >= 120 && y < 126)
        ink = green;  // a horizontal green one
      if (ink) {
        std::copy(ink, ink + 3, &inked.at(y, x, 0));
        ++strokes;
      }
    }
  const StainEstimate skipped = estimate_stains({&inked});
  ASSERT_TRUE(skipped.ok) << skipped.why;
  EXPECT_EQ(skipped.dye_pixels, strokes);
  for (int k = 0; k < 2; ++k) {
    EXPECT_LT(degrees_between(skipped.stains.colour[k], reference.stains.colour[k]), 1.0) << k;
    EXPECT_NEAR(skipped.stains.max_amount[k], reference.stains.max_amount[k],
                0.03 * reference.stains.max_amount[k]);
  }
  StainEstimateOptions keep;
  keep.skip_dyes = false;
  const StainEstimate counted = estimate_stains({&inked}, keep);
  ASSERT_TRUE(counted.ok) << counted.why;
  EXPECT_EQ(counted.dye_pixels, 0);
  EXPECT_GT(std::max(std::fabs(counted.stains.max_amount[0] / reference.stains.max_amount[0] - 1),
                     std::fabs(counted.stains.max_amount[1] / reference.stains.max_amount[1] - 1)),
            0.1);

  // Blue ink: haematoxylin's colour, so it stays in (and would count as haematoxylin).
  Image blue_inked = clean.image;
  for (int y = 120; y < 126; ++y)
    for (int x = 0; x < 200; ++x) std::copy(blue, blue + 3, &blue_inked.at(y, x, 0));
  EXPECT_EQ(estimate_stains({&blue_inked}).dye_pixels, 0);
  // Nor is a haematoxylin-rich nucleus of either lab, drawn dark.
  for (const StainVectors* lab : {&kPink, &kBlue}) {
    uint8_t px[3];
    test::draw_stained_pixel(px, lab->colour, 3.0, 0.3);
    Image dark(60, 60, 3);
    for (size_t i = 0; i < dark.pixels(); ++i) std::copy(px, px + 3, &dark.data[3 * i]);
    EXPECT_EQ(estimate_stains({&dark}).dye_pixels, 0);
  }
}
