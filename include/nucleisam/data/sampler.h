// Repeat-factor sampling (LVIS, Gupta et al. 2019) over images: rare classes are seen more often.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "nucleisam/data/dataset.h"

namespace nucleisam::data {

// r_i = max over the classes c present in image i of max(1, sqrt(t / f_c)), f_c = fraction of
// images that contain class c. Images with no class get r = 1. `classes_per_image[i]` lists the
// classes of image i (repeats and 0 are ignored). Throws DataError for t <= 0.
std::vector<double> repeat_factors(const std::vector<std::vector<int>>& classes_per_image, double threshold);

// One epoch's image indices: image i appears floor(r_i) times plus once more with probability
// frac(r_i), drawn from (seed, epoch); the list is shuffled when `shuffle`. The same (seed, epoch)
// always gives the same list.
std::vector<size_t> repeat_factor_epoch(const std::vector<double>& factors, uint64_t seed, uint64_t epoch,
                                        bool shuffle = true);

// Mixes (seed, a, b) into a well-spread 64-bit value (splitmix64 steps): the seed of the random
// stream for one draw, so results do not depend on the order or thread that makes them.
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0);

// A double in [0, 1) from the top 53 bits of one draw: the same value on every platform, unlike
// std::uniform_real_distribution, so seeded augmentation and sampling reproduce everywhere.
double uniform01(std::mt19937_64& rng);

}  // namespace nucleisam::data
