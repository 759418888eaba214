// Subsets by name and concatenation of datasets.
#include <gtest/gtest.h>

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
