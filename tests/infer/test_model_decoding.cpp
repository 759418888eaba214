// Instance decodings of head maps, classes and scores.
#include <gtest/gtest.h>

#include <cmath>

#include "nucleisam/errors.h"
#include "nucleisam/infer/model_decoding.h"

using namespace nucleisam;
using namespace nucleisam::infer;

namespace {
// Head maps of two discs (radius 6) whose centres are 10 pixels apart, so they touch along a
// line; interior = the disc minus its outer ring, distance = 1 - r / 6 inside each disc.
HeadMaps touching_discs() {
  const int h = 24, w = 36;
  HeadMaps m;
  m.background = ProbabilityMap(h, w, 1, 1.0f);
  m.interior = ProbabilityMap(h, w);
  m.boundary = ProbabilityMap(h, w);
  m.distance = ProbabilityMap(h, w);
  const int cx[2] = {12, 22}, cy = 12;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < 2; ++k) {
        const double r = std::hypot(x - cx[k], y - cy);
        if (r > 6) continue;
        const float d = static_cast<float>(1.0 - r / 7.0);
        if (d <= m.distance.at(y, x)) continue;
        m.distance.at(y, x) = d;
        const bool ring = r > 4.5;
        m.interior.at(y, x) = ring ? 0.2f : 0.9f;
        m.boundary.at(y, x) = ring ? 0.7f : 0.05f;
        m.background.at(y, x) = 1 - m.interior.at(y, x) - m.boundary.at(y, x);
      }
  return m;
}
int count(const LabelMap& l) {
  int n = 0;
  for (int32_t v : l.data) n = std::max(n, v);
  return n;
}
}  // namespace

TEST(ModelDecoding, BothMethodsSplitTouchingDiscs) {
  HeadMaps m = touching_discs();
  DecodingOptions three;
  LabelMap a = decode_instances(m, three);
  EXPECT_EQ(count(a), 2);
  DecodingOptions dist;
  dist.method = "distance";
  LabelMap b = decode_instances(m, dist);
  ASSERT_EQ(count(b), 2);
  EXPECT_NE(b.at(12, 12), b.at(12, 22));
  EXPECT_GT(b.at(12, 12), 0);
  // The distance decoding gives every foreground pixel to a nucleus (the ring included).
  EXPECT_GT(b.at(12, 18), 0);
  EXPECT_EQ(b.at(0, 0), 0);
  // A marker level above every peak finds nothing.
  dist.marker_threshold = 0.99f;
  EXPECT_EQ(count(decode_instances(m, dist)), 0);
}

TEST(ModelDecoding, DistanceMethodNeedsADistanceMap) {
  HeadMaps m = touching_discs();
  m.distance = ProbabilityMap();
  DecodingOptions d;
  d.method = "distance";
  EXPECT_THROW(decode_instances(m, d), ModelError);
}

TEST(ModelDecoding, OptionsRoundTripAndRejectUnknownKeys) {
  DecodingOptions d;
  d.method = "distance";
  d.marker_threshold = 0.55f;
  d.min_area = 12;
  d.three_class.max_growth = 3;
  DecodingOptions back = decoding_from_map(decoding_to_map(d), "m");
  EXPECT_EQ(back.method, "distance");
  EXPECT_FLOAT_EQ(back.marker_threshold, 0.55f);
  EXPECT_EQ(back.min_area, 12);
  EXPECT_EQ(back.three_class.max_growth, 3);
  EXPECT_THROW(decoding_from_map({{"method", "magic"}}, "m"), ModelError);
  EXPECT_THROW(decoding_from_map({{"marker_threshhold", "0.5"}}, "m"), ModelError);
  EXPECT_THROW(decoding_from_map({{"min_area", "12px"}}, "m"), ModelError);
}

TEST(ModelDecoding, ClassesByMajorityAndScoresByMeanProbability) {
  // One 1x4 instance: type argmax per pixel 1, 2, 2, 1 -> tie 2:2 goes to the lower id (1);
  // a second 1x2 instance with types 2, 2 -> class 2.
  HeadMaps m;
  m.interior = ProbabilityMap(1, 7, 1, 0.5f);
  m.boundary = ProbabilityMap(1, 7, 1, 0.3f);
  m.types = {ProbabilityMap(1, 7, 1, 0.1f), ProbabilityMap(1, 7), ProbabilityMap(1, 7)};
  const float t1[7] = {0.6f, 0.3f, 0.3f, 0.6f, 0, 0.2f, 0.1f};
  for (int x = 0; x < 7; ++x) {
    m.types[1].at(0, x) = t1[x];
    m.types[2].at(0, x) = 0.9f - t1[x];
  }
  LabelMap inst(1, 7);
  inst.data = {1, 1, 1, 1, 0, 2, 2};
  Segmentation s = assemble_segmentation(m, inst, {"background", "a", "b"});
  ASSERT_EQ(s.classes.size(), 2u);
  EXPECT_EQ(s.classes[0], 1);
  EXPECT_EQ(s.classes[1], 2);
  // score = mean(interior + boundary) * mean p(class): 0.8 * mean(0.6, 0.3, 0.3, 0.6) = 0.36
  EXPECT_NEAR(s.scores[0], 0.8 * 0.45, 1e-6);
  EXPECT_NEAR(s.scores[1], 0.8 * (0.7 + 0.8) / 2, 1e-6);
  EXPECT_EQ(s.class_names.size(), 3u);
  // Class-agnostic: no classes, score = mean foreground probability.
  Segmentation plain = assemble_segmentation(m, inst, {});
  EXPECT_TRUE(plain.classes.empty());
  EXPECT_NEAR(plain.scores[1], 0.8, 1e-6);
}
