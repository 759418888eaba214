// The stain range of a dataset (data::dataset_stain_range): the per-image Macenko estimates of
// evenly spread samples, summarised by training_amount_range.
#include <gtest/gtest.h>

#include "nucleisam/data/dataset.h"
#include "nucleisam/errors.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::data;

namespace {

const double kStains[2][3] = {{0.5706, 0.7292, 0.3776}, {0.2982, 0.8133, 0.4997}};

// Image i is the test tissue with (i + 1) / 4 of its haematoxylin; glass where listed.
class Tissues : public Dataset {
 public:
  Tissues(size_t n, std::vector<size_t> glass = {}) : n_(n), glass_(std::move(glass)) {}
  size_t size() const override { return n_; }
  Sample get(size_t i) const override {
    ++reads;
    Sample s;
    s.name = name(i);
    s.image = std::find(glass_.begin(), glass_.end(), i) != glass_.end()
                  ? Image(80, 80, 3, 250)
                  : test::stained_tissue(kStains, 80, 80, i, (static_cast<double>(i) + 1) / 4).image;
    s.instances = LabelMap(80, 80);
    return s;
  }
  std::string name(size_t i) const override { return "t" + std::to_string(i); }
  const ClassNames& class_names() const override { return names_; }
  mutable size_t reads = 0;

 private:
  size_t n_;
  std::vector<size_t> glass_;
  ClassNames names_;
};

}  // namespace

TEST(DatasetStains, WeightedQuantilesByHand) {
  EXPECT_EQ(weighted_quantile({{3, 1}, {1, 1}, {4, 1}, {2, 1}}, 0.5), 2);
  EXPECT_EQ(weighted_quantile({{3, 1}, {1, 1}, {4, 1}, {2, 1}}, 0.05), 1);
  EXPECT_EQ(weighted_quantile({{3, 1}, {1, 1}, {4, 1}, {2, 1}}, 0.95), 4);
  EXPECT_EQ(weighted_quantile({{1, 3}, {2, 1}, {3, 1}, {4, 1}}, 0.5), 1);  // 1 carries half the weight
  EXPECT_THROW(weighted_quantile({}, 0.5), DataError);

  // 20 images with amounts 1..20: the 5th percentile is 1, the 95th is 19; then widened.
  std::vector<StainVectors> images(20);
  for (size_t i = 0; i < images.size(); ++i) images[i].max_amount[0] = images[i].max_amount[1] = 1.0 + static_cast<double>(i);
  StainAmountRange r = training_amount_range(images, {}, 1.0);
  EXPECT_EQ(r.low[0], 1);
  EXPECT_EQ(r.high[0], 19);
  r = training_amount_range(images);
  EXPECT_DOUBLE_EQ(r.low[1], 1 / 1.1);
  EXPECT_DOUBLE_EQ(r.high[1], 19 * 1.1);
  EXPECT_THROW(training_amount_range({}), DataError);
  EXPECT_THROW(training_amount_range(images, {1.0}), DataError);
}

TEST(DatasetStains, RangeOfEvenlySpreadSamplesWithAnEstimate) {
  // 8 images of 1/4 .. 8/4 the haematoxylin; two are glass and have no estimate.
  const Tissues d(8, {2, 5});
  const std::optional<StainAmountRange> r = dataset_stain_range(d);
  ASSERT_TRUE(r);
  std::vector<StainVectors> expected;
  for (size_t i : {0, 1, 3, 4, 6, 7}) {
    const Sample s = d.get(i);
    const StainEstimate e = estimate_stains({&s.image});
    ASSERT_TRUE(e.ok) << i << ": " << e.why;
    expected.push_back(e.stains);
  }
  const StainAmountRange want = training_amount_range(expected);
  for (int k = 0; k < 2; ++k) {
    EXPECT_DOUBLE_EQ(r->low[k], want.low[k]);
    EXPECT_DOUBLE_EQ(r->high[k], want.high[k]);
  }
  EXPECT_LT(r->low[0], r->high[0] / 4);  // 1/4 to 2 times the drawing's haematoxylin

  // At most max_images samples are read, spread over the set: 4 of 8 are 1, 3, 5, 7.
  const Tissues big(8);
  dataset_stain_range(big, 4);
  EXPECT_EQ(big.reads, 4u);
  // No sample with two stains: no range.
  EXPECT_FALSE(dataset_stain_range(Tissues(3, {0, 1, 2})));
}
