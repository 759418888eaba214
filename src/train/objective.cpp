// Targets and the multi-head loss (see objective.h).
#include "nucleisam/train/objective.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nucleisam/errors.h"

namespace nucleisam::train {
namespace {

// Squared Euclidean distance transform of one line (Felzenszwalb & Huttenlocher's lower envelope
// of parabolas): d[i] = min_j (i - j)^2 + f[j]. `v` and `z` are scratch of size n and n + 1.
void distance_transform_1d(const float* f, float* d, int n, std::vector<int>& v, std::vector<float>& z) {
  const float inf = std::numeric_limits<float>::infinity();
  int k = 0;
  v[0] = 0;
  z[0] = -inf;
  z[1] = inf;
  for (int q = 1; q < n; ++q) {
    if (f[q] == inf) continue;
    if (f[v[k]] == inf) {  // the envelope so far is empty
      v[k] = q;
      continue;
    }
    float s;
    while (true) {
      const int p = v[k];
      s = ((f[q] + float(q) * q) - (f[p] + float(p) * p)) / (2.0f * (q - p));
      if (s > z[k] || k == 0) break;
      --k;
    }
    if (s <= z[k]) {  // k == 0 and the new parabola wins everywhere
      v[0] = q;
      z[1] = inf;
      continue;
    }
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = inf;
  }
  if (f[v[0]] == inf) {
    std::fill(d, d + n, inf);
    return;
  }
  k = 0;
  for (int q = 0; q < n; ++q) {
    while (z[k + 1] < q) ++k;
    const float dq = float(q - v[k]);
    d[q] = dq * dq + f[v[k]];
  }
}

}  // namespace

std::vector<float> normalised_distance(const int32_t* instances, int height, int width) {
  const size_t plane = static_cast<size_t>(height) * width;
  std::vector<float> out(plane, 0.0f);
  if (plane == 0) return out;
  // Bounding box of every instance.
  struct Box {
    int y0 = 1 << 30, x0 = 1 << 30, y1 = -1, x1 = -1;
  };
  std::vector<Box> boxes;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const int32_t id = instances[static_cast<size_t>(y) * width + x];
      if (id <= 0) continue;
      if (static_cast<size_t>(id) >= boxes.size()) boxes.resize(static_cast<size_t>(id) + 1);
      Box& b = boxes[id];
      b.y0 = std::min(b.y0, y), b.y1 = std::max(b.y1, y);
      b.x0 = std::min(b.x0, x), b.x1 = std::max(b.x1, x);
    }
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> f, g, line_in, line_out;
  std::vector<int> v;
  std::vector<float> z;
  for (size_t id = 1; id < boxes.size(); ++id) {
    const Box& b = boxes[id];
    if (b.y1 < 0) continue;
    // The box grown by one pixel, so that a pixel outside the instance (or the image) is always
    // present on every side: distances are to the nearest non-member pixel.
    const int h = b.y1 - b.y0 + 3, w = b.x1 - b.x0 + 3;
    f.assign(static_cast<size_t>(h) * w, 0.0f);
    for (int y = 1; y < h - 1; ++y)
      for (int x = 1; x < w - 1; ++x) {
        const int iy = b.y0 + y - 1, ix = b.x0 + x - 1;
        if (instances[static_cast<size_t>(iy) * width + ix] == static_cast<int32_t>(id))
          f[static_cast<size_t>(y) * w + x] = inf;
      }
    const int n = std::max(h, w);
    v.assign(n, 0);
    z.assign(n + 1, 0.0f);
    line_in.resize(n);
    line_out.resize(n);
    g.assign(f.size(), 0.0f);
    for (int x = 0; x < w; ++x) {  // columns
      for (int y = 0; y < h; ++y) line_in[y] = f[static_cast<size_t>(y) * w + x];
      distance_transform_1d(line_in.data(), line_out.data(), h, v, z);
      for (int y = 0; y < h; ++y) g[static_cast<size_t>(y) * w + x] = line_out[y];
    }
    float largest = 0;
    for (int y = 0; y < h; ++y) {  // rows
      distance_transform_1d(g.data() + static_cast<size_t>(y) * w, line_out.data(), w, v, z);
      for (int x = 0; x < w; ++x) f[static_cast<size_t>(y) * w + x] = line_out[x];
    }
    for (int y = 1; y < h - 1; ++y)
      for (int x = 1; x < w - 1; ++x) {
        const size_t o = static_cast<size_t>(b.y0 + y - 1) * width + (b.x0 + x - 1);
        if (instances[o] != static_cast<int32_t>(id)) continue;
        const float d = std::sqrt(f[static_cast<size_t>(y) * w + x]);
        out[o] = d;
        largest = std::max(largest, d);
      }
    if (largest <= 0) continue;
    for (int y = b.y0; y <= b.y1; ++y)
      for (int x = b.x0; x <= b.x1; ++x) {
        const size_t o = static_cast<size_t>(y) * width + x;
        if (instances[o] == static_cast<int32_t>(id)) out[o] /= largest;
      }
  }
  return out;
}

BatchTargets targets_from_batch(const data::Batch& batch, const models::HeadLayout& heads) {
  const auto shape = batch.map_shape();
  BatchTargets t;
  t.three_class = torch::from_blob(const_cast<int32_t*>(batch.three_class.data()), shape, torch::kInt32)
                      .to(torch::kInt64);
  const size_t plane = static_cast<size_t>(batch.height) * batch.width;
  // An empty Batch::classed (a batch made by hand) counts as all classified.
  auto classed = [&batch](size_t k) { return batch.classed.empty() || batch.classed[k] != 0; };
  if (heads.categories) {
    if (heads.num_classes > 0)
      for (size_t k = 0; k < static_cast<size_t>(batch.size); ++k)
        if (!classed(k))
          throw DataError(batch.names[k] + ": its data has no nucleus classes; a category-descriptor model with "
                          "classes trains only on classified data");
    t.categories = torch::empty(shape, torch::kInt64);
    int64_t* dst = t.categories.data_ptr<int64_t>();
    const int64_t boundary = heads.boundary_category();
    for (size_t i = 0; i < batch.three_class.size(); ++i) {
      const int32_t kind = batch.three_class[i];
      if (kind == 0) {
        dst[i] = 0;
      } else if (kind == 2) {
        dst[i] = boundary;
      } else if (heads.num_classes == 0) {
        dst[i] = 1;
      } else {
        const int32_t c = batch.classes[i];
        if (c < 1 || c > heads.num_classes)
          throw DataError(batch.names[i / plane] + ": nucleus pixel of class " + std::to_string(c) + " outside 1.." +
                          std::to_string(heads.num_classes) + " (the model's classes)");
        dst[i] = c;
      }
    }
    return t;
  }
  if (heads.distance) {
    t.distance = torch::empty(shape, torch::kFloat32);
    float* dst = t.distance.data_ptr<float>();
    for (int k = 0; k < batch.size; ++k) {
      std::vector<float> d = normalised_distance(batch.instances.data() + k * plane, batch.height, batch.width);
      std::copy(d.begin(), d.end(), dst + k * plane);
    }
  }
  if (heads.num_classes > 0) {
    for (size_t i = 0; i < batch.classes.size(); ++i)
      if (batch.classes[i] < 0 || batch.classes[i] > heads.num_classes)
        throw DataError(batch.names[i / plane] + ": class id " + std::to_string(batch.classes[i]) +
                        " is outside 0.." + std::to_string(heads.num_classes) + " (the model's classes)");
    t.classes = torch::from_blob(const_cast<int32_t*>(batch.classes.data()), shape, torch::kInt32)
                    .to(torch::kInt64);
    std::vector<int64_t> kept;
    for (size_t k = 0; k < static_cast<size_t>(batch.size); ++k)
      if (classed(k)) kept.push_back(static_cast<int64_t>(k));
    if (static_cast<int>(kept.size()) != batch.size) t.classed_samples = torch::tensor(kept, torch::kInt64);
  }
  return t;
}

ObjectiveTerms objective(const torch::Tensor& logits_any, const BatchTargets& targets,
                         const models::HeadLayout& heads, const ObjectiveOptions& options) {
  const torch::Tensor logits = logits_any.to(torch::kFloat32);
  if (logits.dim() != 4 || logits.size(1) != heads.channels())
    throw ModelError("objective: logits must be N x " + std::to_string(heads.channels()) +
                     " x H x W for this head layout");
  ObjectiveTerms terms;
  if (heads.categories) {
    // Present = the categories in each image's target (the loss adds those itself).
    auto present = torch::zeros({logits.size(0), logits.size(1)}, torch::kBool);
    terms.total = federated_bce_hinge_loss(logits, targets.categories, present, options.hinge_margin);
    terms.three_class = terms.total;
    return terms;
  }
  terms.three_class = dice_focal_loss(logits.narrow(1, models::HeadLayout::kThreeClass, 3), targets.three_class,
                                      options.three_class_weights, options.dice_variant, options.focal_gamma);
  terms.total = terms.three_class;
  if (heads.distance) {
    torch::Tensor pred = torch::sigmoid(logits.select(1, heads.distance_channel()));
    terms.distance = torch::mse_loss(pred, targets.distance);
    terms.total = terms.total + options.distance_weight * terms.distance;
  }
  if (heads.num_classes > 0) {
    torch::Tensor type_logits = logits.narrow(1, heads.class_offset(), heads.num_classes + 1);
    torch::Tensor type_target = targets.classes;
    if (targets.classed_samples.defined()) {
      type_logits = type_logits.index_select(0, targets.classed_samples);
      type_target = type_target.index_select(0, targets.classed_samples);
    }
    if (type_logits.size(0) == 0) {  // no sample of this batch annotates classes
      terms.classes = torch::zeros({}, logits.options());
    } else {
      terms.classes = dice_focal_loss(type_logits, type_target, {}, options.dice_variant, options.focal_gamma);
      terms.total = terms.total + options.class_weight * terms.classes;
    }
  }
  return terms;
}

}  // namespace nucleisam::train
