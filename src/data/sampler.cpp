// Repeat-factor sampling and the seed mixing shared by the sampler and the loader.
#include "nucleisam/data/sampler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "nucleisam/errors.h"

namespace nucleisam::data {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); }

uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) { return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b); }

std::vector<double> repeat_factors(const std::vector<std::vector<int>>& classes_per_image, double threshold) {
  if (!(threshold > 0)) throw DataError("repeat-factor sampling: threshold must be positive");
  const size_t n = classes_per_image.size();
  std::vector<std::set<int>> present(n);
  std::map<int, size_t> images_with;
  for (size_t i = 0; i < n; ++i) {
    for (int c : classes_per_image[i])
      if (c != 0) present[i].insert(c);
    for (int c : present[i]) ++images_with[c];
  }
  std::vector<double> r(n, 1.0);
  for (size_t i = 0; i < n; ++i)
    for (int c : present[i]) {
      const double f = static_cast<double>(images_with[c]) / static_cast<double>(n);
      r[i] = std::max(r[i], std::sqrt(threshold / f));
    }
  return r;
}

std::vector<size_t> repeat_factor_epoch(const std::vector<double>& factors, uint64_t seed, uint64_t epoch,
                                        bool shuffle) {
  std::mt19937_64 rng(mix_seed(seed, epoch, 0x5EED));
  std::vector<size_t> out;
  for (size_t i = 0; i < factors.size(); ++i) {
    const double r = factors[i];
    if (!(r >= 0) || !std::isfinite(r)) throw DataError("repeat factor of image " + std::to_string(i) + " is invalid");
    const double whole = std::floor(r);
    // One draw per image whatever its factor, so the stream stays aligned across images.
    const bool extra = uniform01(rng) < r - whole;
    const size_t times = static_cast<size_t>(whole) + (extra ? 1 : 0);
    out.insert(out.end(), times, i);
  }
  if (shuffle)
    for (size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[rng() % i]);
  return out;
}

}  // namespace nucleisam::data
