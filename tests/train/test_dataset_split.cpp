// Subsets by name and concatenation of datasets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "nucleisam/errors.h"
#include "nucleisam/train/dataset_split.h"
#include "train/synthetic_nuclei.h"

using namespace nucleisam;

TEST(SubsetDataset, IncludeExcludeKeepBaseOrder) {
  auto base = std::make_shared<fixtures::SyntheticNuclei>(5, 32);
  train::SubsetDataset held(base, {"syn3", "syn1"}, {}, "mem");
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held.name(0), "syn1");
  EXPECT_EQ(held.name(1), "syn3");
  EXPECT_EQ(held.get(1).name, "syn3");
  train::SubsetDataset rest(base, {}, {"syn3", "syn1"}, "mem");
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_EQ(rest.name(0), "syn0");
  EXPECT_EQ(rest.name(2), "syn4");
}

TEST(SubsetDataset, UnknownNameAndEmptySelectionAreErrors) {
  auto base = std::make_shared<fixtures::SyntheticNuclei>(2, 32);
  try {
    train::SubsetDataset s(base, {}, {"syn9"}, "monuseg/train");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("syn9"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("monuseg/train"), std::string::npos);
  }
  EXPECT_THROW(train::SubsetDataset(base, {}, {"syn0", "syn1"}, "x"), DataError);
}

TEST(ConcatDataset, IndexesAcrossPartsAndChecksClasses) {
  auto a = std::make_shared<fixtures::SyntheticNuclei>(2, 32);
  auto b = std::make_shared<fixtures::SyntheticNuclei>(3, 32);
  train::ConcatDataset c({a, b});
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c.name(1), "syn1");
  EXPECT_EQ(c.name(2), "syn0");
  EXPECT_EQ(c.get(4).name, "syn2");
  EXPECT_THROW(c.get(5), DataError);
  // Classed parts must agree on their classes...
  auto two = std::make_shared<fixtures::SyntheticNuclei>(2, 32, 2);
  auto three = std::make_shared<fixtures::SyntheticNuclei>(2, 32, 3);
  EXPECT_THROW(train::ConcatDataset({two, three}), DataError);
  EXPECT_THROW(train::ConcatDataset({two, a, three}), DataError);
}

TEST(ConcatDataset, ClassAgnosticPartsJoinClassedOnes) {
  // ...and a class-agnostic part may stand beside them, before or after: the concatenation has the
  // classed names, each sample keeps its own `classed`.
  auto plain = std::make_shared<fixtures::SyntheticNuclei>(2, 32);
  auto two = std::make_shared<fixtures::SyntheticNuclei>(3, 32, 2);
  ASSERT_TRUE(plain->class_names().empty());
  for (bool plain_first : {true, false}) {
    train::ConcatDataset c = plain_first ? train::ConcatDataset({plain, two}) : train::ConcatDataset({two, plain});
    EXPECT_EQ(c.class_names(), two->class_names());
    const size_t first_plain = plain_first ? 0 : 3, first_classed = plain_first ? 2 : 0;
    EXPECT_FALSE(c.get(first_plain).classed);
    EXPECT_TRUE(c.get(first_plain).classes.empty());
    EXPECT_TRUE(c.get(first_classed).classed);
    EXPECT_EQ(c.get(first_classed).classes, two->get(0).classes);
  }
}

TEST(SubsetDataset, WildcardPatterns) {
  EXPECT_TRUE(train::name_matches("train_3_*", "train_3_012"));
  EXPECT_FALSE(train::name_matches("train_3_*", "train_31_012"));
  EXPECT_TRUE(train::name_matches("*", ""));
  EXPECT_TRUE(train::name_matches("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(train::name_matches("a*b*c", "aXbYbZ"));
  EXPECT_FALSE(train::name_matches("abc", "abcd"));
  auto base = std::make_shared<fixtures::SyntheticNuclei>(12, 32);
  train::SubsetDataset ones(base, {"syn1*"}, {}, "mem");  // syn1, syn10, syn11
  ASSERT_EQ(ones.size(), 3u);
  EXPECT_EQ(ones.name(2), "syn11");
  EXPECT_THROW(train::SubsetDataset(base, {"val*"}, {}, "mem"), DataError);
}

TEST(RepeatedDataset, CopiesEverySampleWithDistinctNames) {
  auto base = std::make_shared<fixtures::SyntheticNuclei>(3, 32);
  train::RepeatedDataset r(base, 3);
  ASSERT_EQ(r.size(), 9u);
  EXPECT_EQ(r.name(0), "syn0");
  EXPECT_EQ(r.name(2), "syn2");
  EXPECT_EQ(r.name(4), "syn1#1");
  EXPECT_EQ(r.name(8), "syn2#2");
  const data::Sample a = base->get(1), b = r.get(7);  // the third copy of syn1
  EXPECT_EQ(b.name, "syn1#2");
  EXPECT_EQ(a.image.data, b.image.data);
  EXPECT_EQ(a.instances.data, b.instances.data);
  EXPECT_THROW(r.name(9), DataError);
  EXPECT_THROW(train::RepeatedDataset(base, 0), DataError);
}

TEST(ClassAgnosticDataset, DropsClassesAndKeepsInstances) {
  auto classed = std::make_shared<fixtures::SyntheticNuclei>(2, 32, 2);
  ASSERT_EQ(classed->class_names().size(), 3u);
  train::ClassAgnosticDataset plain(classed);
  EXPECT_TRUE(plain.class_names().empty());
  const data::Sample s = plain.get(1), original = classed->get(1);
  EXPECT_FALSE(s.classed);
  EXPECT_TRUE(s.classes.empty());
  EXPECT_EQ(s.instances.data, original.instances.data);
  // Concatenated with another class-agnostic dataset, the whole has no classes.
  auto unclassed = std::make_shared<fixtures::SyntheticNuclei>(2, 32);
  train::ConcatDataset both({std::make_shared<train::ClassAgnosticDataset>(classed), unclassed});
  EXPECT_EQ(both.size(), 4u);
  EXPECT_TRUE(both.class_names().empty());
}

namespace {

// One 4 x 4 sample: nucleus 1 is the single pixel (0, 0), nucleus 2 the 3 x 3 block at (1..3, 1..3);
// classes 1 and 2; pixel values 10 * (y * 4 + x).
struct OneSample : data::Dataset {
  data::ClassNames names{"background", "a", "b"};
  size_t size() const override { return 1; }
  std::string name(size_t) const override { return "one"; }
  const data::ClassNames& class_names() const override { return names; }
  data::Sample get(size_t) const override {
    data::Sample s;
    s.name = "one";
    s.image = Image(4, 4, 3);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x)
        for (int c = 0; c < 3; ++c) s.image.at(y, x, c) = static_cast<uint8_t>(10 * (y * 4 + x));
    s.instances = LabelMap(4, 4);
    s.instances.at(0, 0) = 1;
    for (int y = 1; y < 4; ++y)
      for (int x = 1; x < 4; ++x) s.instances.at(y, x) = 2;
    s.classes = {1, 2};
    s.classed = true;
    return s;
  }
};

}  // namespace

TEST(ResampledDataset, HalvesAndDoublesSamplesKeepingClassesWithTheirNuclei) {
  auto base = std::make_shared<OneSample>();
  // Halved (0.25 um/px data for a 0.5 um/px model): pixel (0, 0) is sampled by no target pixel, so
  // nucleus 1 goes with its class; the block is sampled at (1, 1), (1, 3), (3, 1), (3, 3).
  train::ResampledDataset half(base, 0.5);
  data::Sample s = half.get(0);
  EXPECT_EQ(s.image.width, 2);
  EXPECT_EQ(s.image.height, 2);
  EXPECT_EQ(s.instances.data, (std::vector<int32_t>{1, 1, 1, 1}));
  EXPECT_EQ(s.classes, (std::vector<int>{2}));
  EXPECT_EQ(s.image.at(0, 0, 0), 25);  // mean of 0, 10, 40, 50
  EXPECT_TRUE(s.classed);
  // Doubled (0.5 um/px data for a 0.25 model; 1.96 snaps to 2): both nuclei, 4x the pixels.
  train::ResampledDataset twice(base, 0.49 / 0.25);
  EXPECT_EQ(twice.factor(), 2.0);
  s = twice.get(0);
  EXPECT_EQ(s.image.width, 8);
  EXPECT_EQ(s.classes, (std::vector<int>{1, 2}));
  EXPECT_EQ(std::count(s.instances.data.begin(), s.instances.data.end(), 1), 4);
  EXPECT_EQ(std::count(s.instances.data.begin(), s.instances.data.end(), 2), 36);
  // Factor 1: the sample as it is; nonsense factors are refused.
  EXPECT_EQ(train::ResampledDataset(base, 1.02).get(0).instances, base->get(0).instances);
  EXPECT_THROW(train::ResampledDataset(base, 0), DataError);
  EXPECT_THROW(train::ResampledDataset(base, std::nan("")), DataError);
}
