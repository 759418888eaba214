// The batch loader: a fixed pool of workers claims batch numbers in order, never more than
// `prefetch` ahead of the consumer, and parks finished batches until the consumer reaches them.
#include "nucleisam/data/loader.h"

#include <random>

#include "nucleisam/data/sampler.h"
#include "nucleisam/data/targets.h"
#include "nucleisam/errors.h"

namespace nucleisam::data {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string t = "[";
  for (size_t i = 0; i < shape.size(); ++i) t += (i ? ", " : "") + std::to_string(shape[i]);
  return t + "]";
}

// Throws DataError unless the extra's data matches its shape.
void check_extra(const Sample& s, const std::string& name, const SampleExtra& extra) {
  size_t n = 1;
  for (int64_t d : extra.shape) {
    if (d < 0) throw DataError(s.name + ": extra '" + name + "' has a negative dimension " + shape_text(extra.shape));
    n *= static_cast<size_t>(d);
  }
  if (extra.data.size() != n)
    throw DataError(s.name + ": extra '" + name + "' holds " + std::to_string(extra.data.size()) +
                    " values, its shape " + shape_text(extra.shape) + " needs " + std::to_string(n));
}

// Appends sample k's extras to the batch; the first sample fixes the names and shapes.
void append_extras(Batch& b, const Sample& s, size_t batch_size, size_t k) {
  if (k == 0)
    for (const auto& [name, extra] : s.extras) {
      b.extra_shapes[name] = extra.shape;
      b.extras[name].reserve(batch_size * extra.data.size());
    }
  if (s.extras.size() != b.extra_shapes.size())
    throw DataError(s.name + ": sample has " + std::to_string(s.extras.size()) + " extras, the batch's first sample " +
                    std::to_string(b.extra_shapes.size()));
  for (const auto& [name, extra] : s.extras) {
    auto shape = b.extra_shapes.find(name);
    if (shape == b.extra_shapes.end())
      throw DataError(s.name + ": extra '" + name + "' is not in the batch's first sample");
    if (shape->second != extra.shape)
      throw DataError(s.name + ": extra '" + name + "' has shape " + shape_text(extra.shape) + ", the batch's " +
                      shape_text(shape->second));
    check_extra(s, name, extra);
    std::vector<float>& out = b.extras[name];
    out.insert(out.end(), extra.data.begin(), extra.data.end());
  }
}

}  // namespace

std::vector<int64_t> Batch::extra_shape(const std::string& name) const {
  auto it = extra_shapes.find(name);
  if (it == extra_shapes.end()) throw DataError("batch has no extra '" + name + "'");
  std::vector<int64_t> shape{size};
  shape.insert(shape.end(), it->second.begin(), it->second.end());
  return shape;
}

Batch make_batch(const std::vector<Sample>& samples, const std::vector<size_t>& indices) {
  Batch b;
  b.size = static_cast<int>(samples.size());
  if (samples.empty()) return b;
  b.height = samples[0].image.height;
  b.width = samples[0].image.width;
  const size_t plane = static_cast<size_t>(b.height) * b.width;
  b.images.resize(samples.size() * 3 * plane);
  b.instances.resize(samples.size() * plane);
  b.classes.resize(samples.size() * plane);
  b.three_class.resize(samples.size() * plane);
  for (size_t k = 0; k < samples.size(); ++k) {
    const Sample& s = samples[k];
    if (!s.image.same_size(b.height, b.width) || !s.instances.same_size(b.height, b.width))
      throw DataError(s.name + ": sample is " + std::to_string(s.image.width) + "x" +
                      std::to_string(s.image.height) + " but the batch is " + std::to_string(b.width) + "x" +
                      std::to_string(b.height) + " (enable cropping to batch samples of different sizes)");
    float* img = b.images.data() + k * 3 * plane;
    for (size_t p = 0; p < plane; ++p)
      for (int c = 0; c < 3; ++c) img[c * plane + p] = s.image.data[p * 3 + c];
    std::copy(s.instances.data.begin(), s.instances.data.end(), b.instances.begin() + k * plane);
    LabelMap cls = s.class_map();
    std::copy(cls.data.begin(), cls.data.end(), b.classes.begin() + k * plane);
    LabelMap three = three_class_map(s.instances);
    std::copy(three.data.begin(), three.data.end(), b.three_class.begin() + k * plane);
    append_extras(b, s, samples.size(), k);
    b.instance_classes.push_back(s.classes);
    b.classed.push_back(s.classed ? 1 : 0);
    b.names.push_back(s.name);
    b.indices.push_back(k < indices.size() ? indices[k] : 0);
  }
  return b;
}

DataLoader::DataLoader(const Dataset& dataset, std::vector<size_t> order, LoaderConfig config)
    : dataset_(dataset), order_(std::move(order)), config_(std::move(config)) {
  if (config_.batch_size == 0) throw DataError("data loader: batch size must be positive");
  for (size_t i : order_)
    if (i >= dataset_.size())
      throw DataError("data loader: index " + std::to_string(i) + " is past the dataset's " +
                      std::to_string(dataset_.size()) + " samples");
  batch_count_ = config_.drop_last ? order_.size() / config_.batch_size
                                   : (order_.size() + config_.batch_size - 1) / config_.batch_size;
  if (!config_.positions.empty() && config_.positions.size() != order_.size())
    throw DataError("data loader: " + std::to_string(config_.positions.size()) + " positions for " +
                    std::to_string(order_.size()) + " samples");
  if (config_.prefetch == 0) config_.prefetch = 1;
  for (int t = 0; t < config_.threads; ++t) workers_.emplace_back([this] { work(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  for (auto& w : workers_) w.join();
}

Batch DataLoader::build(size_t b) const {
  const size_t first = b * config_.batch_size;
  const size_t last = std::min(order_.size(), first + config_.batch_size);
  std::vector<Sample> samples;
  std::vector<size_t> indices;
  for (size_t k = first; k < last; ++k) {
    Sample s = dataset_.get(order_[k]);
    if (config_.augment) {
      // Seeded by the sample's position in the epoch: independent of threads and timing.
      const size_t position = config_.positions.empty() ? k : config_.positions[k];
      std::mt19937_64 rng(mix_seed(config_.seed, config_.epoch, position));
      s = augment(s, config_.augmentation, rng);
    }
    samples.push_back(std::move(s));
    indices.push_back(order_[k]);
  }
  return make_batch(samples, indices);
}

void DataLoader::work() {
  while (true) {
    size_t b;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] {
        return stop_ || next_to_make_ >= batch_count_ || next_to_make_ < next_to_take_ + config_.prefetch;
      });
      if (stop_ || next_to_make_ >= batch_count_) return;
      b = next_to_make_++;
    }
    Slot slot;
    try {
      slot.batch = std::make_unique<Batch>(build(b));
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_[b] = std::move(slot);
    }
    changed_.notify_all();
  }
}

bool DataLoader::next(Batch& batch) {
  if (next_to_take_ >= batch_count_) return false;
  if (workers_.empty()) {
    batch = build(next_to_take_++);
    return true;
  }
  Slot slot;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return ready_.count(next_to_take_) > 0; });
    auto it = ready_.find(next_to_take_);
    slot = std::move(it->second);
    ready_.erase(it);
    ++next_to_take_;
  }
  changed_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  batch = std::move(*slot.batch);
  return true;
}

}  // namespace nucleisam::data
