// The threaded loader: batch layout by hand, identical batches for any thread count, order,
// error propagation with the file name, and shutdown with batches still pending.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "nucleisam/data/loader.h"
#include "nucleisam/errors.h"

using namespace nucleisam;
using namespace nucleisam::data;

namespace {

// In-memory dataset: sample i is an h x w image of value i with one 2 x 2 nucleus of class
// 1 + i % 2. Sample `bad` throws like a reader meeting a corrupt file.
class MemoryDataset : public Dataset {
 public:
  MemoryDataset(size_t n, int h, int w, long bad = -1) : n_(n), h_(h), w_(w), bad_(bad) {}
  size_t size() const override { return n_; }
  std::string name(size_t i) const override { return "s" + std::to_string(i); }
  const ClassNames& class_names() const override { return names_; }
  Sample get(size_t i) const override {
    ++reads;
    if (static_cast<long>(i) == bad_) throw IoError("broken/s" + std::to_string(i) + ".png: cannot decode PNG");
    Sample s;
    s.name = name(i);
    s.image = Image(h_, w_, 3, static_cast<uint8_t>(i));
    s.image.at(0, 1, 2) = 200;
    s.instances = LabelMap(h_, w_);
    for (int y = 1; y < 3; ++y)
      for (int x = 1; x < 3; ++x) s.instances.at(y, x) = 1;
    s.classes = {1 + static_cast<int>(i % 2)};
    s.classed = true;
    return s;
  }
  mutable std::atomic<int> reads{0};

 private:
  size_t n_;
  int h_, w_;
  long bad_;
  ClassNames names_ = {"background", "a", "b"};
};

std::vector<size_t> iota(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

std::vector<Batch> drain(DataLoader& l) {
  std::vector<Batch> out;
  Batch b;
  while (l.next(b)) out.push_back(b);
  return out;
}

}  // namespace

TEST(Loader, BatchLayoutWithoutAugmentation) {
  MemoryDataset ds(5, 4, 6);
  LoaderConfig cfg;
  cfg.batch_size = 2;
  cfg.augment = false;
  cfg.threads = 2;
  DataLoader loader(ds, {4, 1, 3}, cfg);
  EXPECT_EQ(loader.batch_count(), 2u);
  auto batches = drain(loader);
  ASSERT_EQ(batches.size(), 2u);
  const Batch& b = batches[0];
  EXPECT_EQ(b.image_shape(), (std::vector<int64_t>{2, 3, 4, 6}));
  EXPECT_EQ(b.map_shape(), (std::vector<int64_t>{2, 4, 6}));
  EXPECT_EQ(b.indices, (std::vector<size_t>{4, 1}));
  EXPECT_EQ(b.names, (std::vector<std::string>{"s4", "s1"}));
  // CHW: sample 0's blue plane, pixel (0, 1) is 200; sample 1's red plane is its index.
  EXPECT_EQ(b.images[0 * 72 + 2 * 24 + 0 * 6 + 1], 200.0f);
  EXPECT_EQ(b.images[1 * 72 + 0 * 24 + 3 * 6 + 5], 1.0f);
  EXPECT_EQ(b.instances[0 * 24 + 1 * 6 + 1], 1);
  EXPECT_EQ(b.classes[0 * 24 + 1 * 6 + 1], 1);  // sample 4 -> class 1
  EXPECT_EQ(b.classes[1 * 24 + 2 * 6 + 2], 2);  // sample 1 -> class 2
  EXPECT_EQ(b.three_class[0 * 24 + 1 * 6 + 1], 2);  // a 2 x 2 nucleus is all boundary
  EXPECT_EQ(b.instance_classes[1], (std::vector<int>{2}));
  EXPECT_EQ(batches[1].size, 1);
  LoaderConfig drop = cfg;
  drop.drop_last = true;
  EXPECT_EQ(DataLoader(ds, {4, 1, 3}, drop).batch_count(), 1u);
}

TEST(Loader, SameBatchesForAnyThreadCount) {
  MemoryDataset ds(23, 40, 40);
  LoaderConfig cfg;
  cfg.batch_size = 4;
  cfg.seed = 9;
  cfg.epoch = 2;
  cfg.augmentation.crop_size = 24;
  cfg.augmentation.rotate_probability = 0.5;
  cfg.augmentation.scale_probability = 0.5;
  std::vector<std::vector<Batch>> runs;
  for (int threads : {0, 1, 3}) {
    cfg.threads = threads;
    DataLoader loader(ds, iota(23), cfg);
    runs.push_back(drain(loader));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t k = 0; k < runs[0].size(); ++k) {
      EXPECT_EQ(runs[r][k].images, runs[0][k].images) << "run " << r << " batch " << k;
      EXPECT_EQ(runs[r][k].instances, runs[0][k].instances);
      EXPECT_EQ(runs[r][k].indices, runs[0][k].indices);
    }
  }
  EXPECT_EQ(runs[0].size(), 6u);
  EXPECT_EQ(runs[0][0].width, 24);
  // Another epoch augments differently.
  cfg.epoch = 3;
  DataLoader other(ds, iota(23), cfg);
  Batch b;
  ASSERT_TRUE(other.next(b));
  EXPECT_NE(b.images, runs[0][0].images);
}

TEST(Loader, WorkerErrorReachesTheConsumerWithTheFileName) {
  MemoryDataset ds(12, 8, 8, /*bad=*/6);
  LoaderConfig cfg;
  cfg.batch_size = 4;
  cfg.threads = 3;
  cfg.augmentation.crop_size = 8;
  DataLoader loader(ds, iota(12), cfg);
  Batch b;
  ASSERT_TRUE(loader.next(b));  // samples 0..3 are fine
  try {
    loader.next(b);
    FAIL() << "batch with the broken sample did not throw";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("broken/s6.png"), std::string::npos) << e.what();
  }
  ASSERT_TRUE(loader.next(b));  // the epoch goes on after the bad batch
  EXPECT_EQ(b.indices.front(), 8u);
  EXPECT_FALSE(loader.next(b));
}

TEST(Loader, StopsCleanlyWithPendingBatchesAndBoundsPrefetch) {
  MemoryDataset ds(400, 16, 16);
  LoaderConfig cfg;
  cfg.batch_size = 2;
  cfg.threads = 4;
  cfg.prefetch = 3;
  cfg.augmentation.crop_size = 16;
  {
    DataLoader loader(ds, iota(400), cfg);
    Batch b;
    ASSERT_TRUE(loader.next(b));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // Taken 1 batch, at most `prefetch` more made or in the making: 2 + 3 * 2 samples.
    EXPECT_LE(ds.reads.load(), 8);
  }  // destructor joins without draining 200 batches
  EXPECT_LE(ds.reads.load(), 8);
}

TEST(Loader, MixedSizesWithoutCropAreNamed) {
  std::vector<Sample> samples(2);
  samples[0].name = "big";
  samples[0].image = Image(4, 4, 3);
  samples[0].instances = LabelMap(4, 4);
  samples[1].name = "small";
  samples[1].image = Image(2, 4, 3);
  samples[1].instances = LabelMap(2, 4);
  try {
    make_batch(samples, {0, 1});
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("small"), std::string::npos);
  }
  EXPECT_THROW(DataLoader(MemoryDataset(2, 4, 4), {0, 5}, LoaderConfig{}), DataError);
}

namespace {

Sample with_extras(const std::string& name, float base) {
  Sample s;
  s.name = name;
  s.image = Image(4, 4, 3, 7);
  s.instances = LabelMap(4, 4);
  s.instances.at(1, 1) = 1;
  s.extras["presence"] = SampleExtra{{3}, {base, base + 1, base + 2}};
  s.extras["embedding"] = SampleExtra{{2, 1, 2}, {base * 10, base * 10 + 1, base * 10 + 2, base * 10 + 3}};
  return s;
}

}  // namespace

TEST(Batch, ExtrasAreConcatenatedSampleMajorWithTheirShapes) {
  Batch b = make_batch({with_extras("a", 1), with_extras("b", 5)}, {3, 4});
  ASSERT_EQ(b.extras.size(), 2u);
  EXPECT_EQ(b.extra_shape("presence"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b.extra_shape("embedding"), (std::vector<int64_t>{2, 2, 1, 2}));
  EXPECT_EQ(b.extras.at("presence"), (std::vector<float>{1, 2, 3, 5, 6, 7}));
  EXPECT_EQ(b.extras.at("embedding"), (std::vector<float>{10, 11, 12, 13, 50, 51, 52, 53}));
  EXPECT_THROW(b.extra_shape("absent"), DataError);
  // No extras: none in the batch.
  Sample plain = with_extras("c", 0);
  plain.extras.clear();
  EXPECT_TRUE(make_batch({plain}, {0}).extras.empty());
}

TEST(Batch, ExtrasThatDisagreeNameTheSample) {
  Sample a = with_extras("a", 1), b = with_extras("b", 2);
  b.extras["presence"].shape = {1, 3};
  try {
    make_batch({a, b}, {0, 1});
    ADD_FAILURE() << "mismatching extra shapes were batched";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("b: extra 'presence' has shape [1, 3]"), std::string::npos) << e.what();
  }
  Sample c = with_extras("c", 3);
  c.extras.erase("embedding");
  EXPECT_THROW(make_batch({a, c}, {0, 1}), DataError);
  Sample d = with_extras("d", 4);
  d.extras["presence"].data.pop_back();  // 2 values for shape [3]
  EXPECT_THROW(make_batch({d}, {0}), DataError);
  EXPECT_THROW(make_batch({a, d}, {0, 1}), DataError);
}

TEST(Batch, AugmentationCarriesExtrasUnchanged) {
  Sample a = with_extras("a", 1);
  a.image = Image(8, 8, 3, 100);
  a.instances = LabelMap(8, 8);
  AugmentConfig cfg;
  cfg.crop_size = 4;
  std::mt19937_64 rng(5);
  Sample o = augment(a, cfg, rng);
  EXPECT_EQ(o.extras.at("embedding").data, a.extras.at("embedding").data);
  EXPECT_EQ(o.extras.at("presence").shape, a.extras.at("presence").shape);
}

TEST(Loader, PositionsSeedAugmentationSoAShareMatchesTheWholeEpoch) {
  MemoryDataset ds(8, 40, 40);
  LoaderConfig cfg;
  cfg.batch_size = 1;
  cfg.threads = 0;
  cfg.seed = 5;
  cfg.augmentation.crop_size = 24;
  cfg.augmentation.rotate_probability = 0.5;
  DataLoader whole(ds, iota(8), cfg);
  const std::vector<Batch> all = drain(whole);
  // The second half of the epoch, loaded alone with its positions, is augmented identically.
  cfg.positions = {4, 5, 6, 7};
  DataLoader share(ds, {4, 5, 6, 7}, cfg);
  const std::vector<Batch> part = drain(share);
  ASSERT_EQ(part.size(), 4u);
  for (size_t k = 0; k < 4; ++k) EXPECT_EQ(part[k].images, all[4 + k].images) << k;
  // Without positions the same samples get the first positions' draws instead.
  cfg.positions.clear();
  DataLoader unpositioned(ds, {4, 5, 6, 7}, cfg);
  EXPECT_NE(drain(unpositioned)[0].images, all[4].images);
  // A positions list of the wrong length is refused.
  cfg.positions = {1, 2};
  EXPECT_THROW(DataLoader(ds, {4, 5, 6, 7}, cfg), DataError);
}

TEST(Batch, CarriesWhetherEachSampleIsClassified) {
  Sample typed = with_extras("typed", 1), plain = with_extras("plain", 2);
  typed.extras.clear();
  plain.extras.clear();
  typed.classes = {2};
  typed.classed = true;
  Batch b = make_batch({typed, plain}, {0, 1});
  EXPECT_EQ(b.classed, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(b.classes[1 * 4 + 1], 2);       // the typed nucleus pixel
  EXPECT_EQ(b.classes[16 + 1 * 4 + 1], 1);  // the plain sample's nucleus: 1, not a type
}
