// Multi-threaded batch loading: worker threads read and augment samples into plain Batch structs
// (no LibTorch: the vectors are laid out for torch::from_blob). Batches come out in order, and
// sample k of an epoch is augmented with a random stream seeded from (seed, epoch, k), so the
// batches are identical whatever the number of threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nucleisam/data/augment.h"
#include "nucleisam/data/dataset.h"

namespace nucleisam::data {

struct Batch {
  int size = 0, height = 0, width = 0;
  std::vector<float> images;          // size x 3 x H x W, RGB 0..255 (the model normalises)
  std::vector<int32_t> instances;     // size x H x W, 0 background, 1..N per sample
  std::vector<int32_t> classes;       // size x H x W class map (unclassed data: 1 on nuclei)
  std::vector<int32_t> three_class;   // size x H x W: 0 background, 1 interior, 2 boundary
  std::vector<std::vector<int>> instance_classes;  // per sample: class of instance k + 1
  // Per sample: 1 when its dataset annotates classes (Sample::classed), 0 when its `classes`
  // plane is only "1 on nuclei" and a type head must not learn from it.
  std::vector<uint8_t> classed;
  std::vector<std::string> names;
  std::vector<size_t> indices;        // dataset index of each sample
  // Optional extra per-sample tensors, from Sample::extras: for each name, the samples' arrays
  // concatenated sample-major (size x per-sample shape, C order), ready for torch::from_blob with
  // extra_shape(name). Every sample of a batch must carry the same names with the same shapes.
  std::map<std::string, std::vector<float>> extras;
  std::map<std::string, std::vector<int64_t>> extra_shapes;  // per-sample shape, without the batch
  std::vector<int64_t> image_shape() const { return {size, 3, height, width}; }
  std::vector<int64_t> map_shape() const { return {size, height, width}; }
  // {size, per-sample shape...} of extras[name]; throws DataError when the batch has no such extra.
  std::vector<int64_t> extra_shape(const std::string& name) const;
};

struct LoaderConfig {
  size_t batch_size = 8;
  int threads = 2;           // 0 loads in the calling thread (no workers)
  size_t prefetch = 4;       // batches prepared ahead of the consumer at most
  uint64_t seed = 0;
  uint64_t epoch = 0;
  bool drop_last = false;    // drop a final batch smaller than batch_size
  bool augment = true;       // false: samples are used as loaded (they must share one size)
  AugmentConfig augmentation;
  // The epoch position of each entry of `order`, which seeds its augmentation; empty = 0, 1, 2...
  // A process that loads only its share of an epoch passes the shared positions, so a sample is
  // augmented the same whichever process loads it.
  std::vector<size_t> positions;
};

// Turns samples of one size into a batch; throws DataError naming the sample whose size differs
// or whose extras differ (names or shapes) from the first sample's.
Batch make_batch(const std::vector<Sample>& samples, const std::vector<size_t>& indices);

class DataLoader {
 public:
  // `order` lists the dataset indices of this epoch (e.g. from repeat_factor_epoch). The dataset
  // must outlive the loader.
  DataLoader(const Dataset& dataset, std::vector<size_t> order, LoaderConfig config);
  ~DataLoader();  // stops the workers and joins them; batches not taken are discarded
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  size_t batch_count() const { return batch_count_; }
  // The next batch in order; false once the epoch is exhausted. A reading or augmentation error in
  // a worker is rethrown here, for the batch it belongs to, with its original type and message.
  bool next(Batch& batch);

 private:
  struct Slot {
    std::unique_ptr<Batch> batch;
    std::exception_ptr error;
  };
  Batch build(size_t b) const;
  void work();

  const Dataset& dataset_;
  std::vector<size_t> order_;
  LoaderConfig config_;
  size_t batch_count_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<size_t, Slot> ready_;
  size_t next_to_make_ = 0;
  size_t next_to_take_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace nucleisam::data
