// The metrics a decoding can be chosen by: each read from the right field of a summary, the mean
// F_c over the classes where it is defined, unknown names refused, and the best candidate by one.
#include <gtest/gtest.h>

#include <cmath>

#include "nucleisam/errors.h"
#include "nucleisam/predict/decoding_search.h"

using namespace nucleisam;

TEST(DecodingMetric, EachNameReadsItsOwnValue) {
  metrics::EvaluationSummary s;
  s.aji.mean = 0.61;
  s.pq.mean = 0.52;
  s.mpq_plus = 0.37;
  s.centroid.paired = 3;
  s.centroid.unpaired_pred = 1;
  s.centroid.unpaired_gt = 1;  // F_d = 6 / 8
  s.classes.resize(3);
  s.classes[0].centroid.paired_both = 1;  // F_c 1
  s.classes[1].centroid.paired_both = 1;  // F_c 2 / (2 + 2)
  s.classes[1].centroid.paired_gt_only = 1;
  // class 3 absent on both sides: NaN, left out of the mean
  EXPECT_DOUBLE_EQ(predict::decoding_metric_value(s, "aji"), 0.61);
  EXPECT_DOUBLE_EQ(predict::decoding_metric_value(s, "pq"), 0.52);
  EXPECT_DOUBLE_EQ(predict::decoding_metric_value(s, "mpq_plus"), 0.37);
  EXPECT_DOUBLE_EQ(predict::decoding_metric_value(s, "f1_d"), 0.75);
  EXPECT_DOUBLE_EQ(predict::decoding_metric_value(s, "f1_c"), 0.75);
  s.classes.clear();
  EXPECT_TRUE(std::isnan(predict::decoding_metric_value(s, "f1_c")));
  EXPECT_THROW(predict::decoding_metric_value(s, "dice"), OptionError);
  for (const auto& name : predict::decoding_metric_names())
    EXPECT_NO_THROW(predict::decoding_metric_value(s, name));
}

TEST(DecodingMetric, TheBestCandidateIsTheFirstHighestDefinedOne) {
  std::vector<metrics::EvaluationSummary> s(4);
  s[0].classes.clear();  // f1_c undefined (NaN) for the first candidate
  for (size_t k = 1; k < 4; ++k) s[k].classes.resize(1);
  s[1].classes[0].centroid.paired_both = 1;  // F_c 2 / (2 + 2) = 0.5
  s[1].classes[0].centroid.paired_pred_only = 1;
  s[2].classes[0].centroid.paired_both = 1;  // F_c 1
  s[3].classes[0].centroid.paired_both = 2;  // F_c 1 again: a tie goes to the earlier one
  EXPECT_EQ(predict::best_by_metric(s, "f1_c"), 2u);
  s[2].classes.clear();
  s[3].classes.clear();
  EXPECT_EQ(predict::best_by_metric(s, "f1_c"), 1u);  // not the undefined first one
  s[1].classes.clear();
  EXPECT_EQ(predict::best_by_metric(s, "f1_c"), 0u);  // undefined everywhere: the first
  s[0].aji.mean = 0.5;
  s[1].aji.mean = 0.7;
  s[2].aji.mean = 0.7;
  s[3].aji.mean = 0.6;
  EXPECT_EQ(predict::best_by_metric(s, "aji"), 1u);
  EXPECT_THROW(predict::best_by_metric(s, "dice"), OptionError);
}
