// Model files: weights + card in one .safetensors (see model_file.h).
#include "nucleisam/models/model_file.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "nucleisam/errors.h"
#include "nucleisam/weights/state_dict.h"

namespace nucleisam::models {
namespace {

constexpr const char* kFormatKey = "nucleisam.model";
constexpr const char* kFormatVersion = "1";

std::string join_floats(const std::array<float, 3>& v) {
  std::ostringstream s;
  s.precision(9);
  s << v[0] << ',' << v[1] << ',' << v[2];
  return s.str();
}

double parse_number(const std::string& text, const std::string& key, const std::string& source) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    throw ModelError(source + ": model card entry '" + key + "' is not a number ('" + text + "')");
  return v;
}

// A whole number that fits an int (casting 1e300 to int is undefined behaviour).
int parse_int(const std::string& text, const std::string& key, const std::string& source) {
  const double v = parse_number(text, key, source);
  if (!(v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max()) || v != std::floor(v))
    throw ModelError(source + ": model card entry '" + key + "' is not an integer ('" + text + "')");
  return static_cast<int>(v);
}

// N comma-separated numbers.
template <size_t N>
std::array<double, N> parse_numbers(const std::string& text, const std::string& key, const std::string& source) {
  std::array<double, N> v{};
  std::stringstream s(text);
  std::string part;
  size_t n = 0;
  while (std::getline(s, part, ',')) {
    if (n == N) break;
    v[n++] = parse_number(part, key, source);
  }
  if (n != N || std::getline(s, part, ','))
    throw ModelError(source + ": model card entry '" + key + "' must hold " + std::to_string(N) +
                     " comma-separated numbers");
  return v;
}

std::array<float, 3> parse_triple(const std::string& text, const std::string& key, const std::string& source) {
  const std::array<double, 3> v = parse_numbers<3>(text, key, source);
  return {static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2])};
}

}  // namespace

std::map<std::string, std::string> card_metadata(const ModelCard& card) {
  std::map<std::string, std::string> m;
  m[kFormatKey] = kFormatVersion;
  m["name"] = card.name;
  m["arch"] = card.arch;
  for (const auto& [k, v] : card.options) m["option." + k] = v;
  m["heads.distance"] = card.heads.distance ? "true" : "false";
  m["heads.num_classes"] = std::to_string(card.heads.num_classes);
  if (card.heads.categories) m["heads.categories"] = "true";  // absent in files of the other networks
  for (size_t i = 0; i < card.class_names.size(); ++i) m["class." + std::to_string(i)] = card.class_names[i];
  m["input.mean"] = join_floats(card.mean);
  m["input.std"] = join_floats(card.std);
  std::ostringstream mpp;
  mpp.precision(9);
  mpp << card.mpp;
  m["input.mpp"] = mpp.str();
  if (card.stain_range) {  // haematoxylin low, high, eosin low, high
    std::ostringstream r;
    r.precision(9);
    const StainAmountRange& s = *card.stain_range;
    r << s.low[0] << ',' << s.high[0] << ',' << s.low[1] << ',' << s.high[1];
    m["input.stain_range"] = r.str();
  }
  m["tile.size"] = std::to_string(card.tile_size);
  m["tile.overlap"] = std::to_string(card.tile_overlap);
  for (const auto& [k, v] : card.decoding) m["decode." + k] = v;
  for (const auto& [k, v] : card.info) m["info." + k] = v;
  return m;
}

ModelCard card_from_metadata(const std::map<std::string, std::string>& m, const std::string& source) {
  auto it = m.find(kFormatKey);
  if (it == m.end())
    throw ModelError(source + ": not a nucleisam model (no '" + std::string(kFormatKey) +
                     "' entry in the safetensors metadata)");
  if (it->second != kFormatVersion)
    throw ModelError(source + ": model format version " + it->second + " is not supported (this build reads " +
                     kFormatVersion + ")");
  auto need = [&](const std::string& key) -> const std::string& {
    auto f = m.find(key);
    if (f == m.end()) throw ModelError(source + ": model card lacks '" + key + "'");
    return f->second;
  };
  ModelCard c;
  c.name = need("name");
  c.arch = need("arch");
  const std::string& dist = need("heads.distance");
  if (dist != "true" && dist != "false")
    throw ModelError(source + ": model card entry 'heads.distance' must be true or false");
  c.heads.distance = dist == "true";
  const double classes = parse_number(need("heads.num_classes"), "heads.num_classes", source);
  if (classes < 0 || classes > 1000 || classes != static_cast<int>(classes))
    throw ModelError(source + ": model card entry 'heads.num_classes' is not a class count");
  c.heads.num_classes = static_cast<int>(classes);
  if (auto cat = m.find("heads.categories"); cat != m.end()) {
    if (cat->second != "true" && cat->second != "false")
      throw ModelError(source + ": model card entry 'heads.categories' must be true or false");
    c.heads.categories = cat->second == "true";
  }
  c.mean = parse_triple(need("input.mean"), "input.mean", source);
  c.std = parse_triple(need("input.std"), "input.std", source);
  for (float s : c.std)
    if (!(s > 0)) throw ModelError(source + ": model card entry 'input.std' must be positive");
  c.mpp = parse_number(need("input.mpp"), "input.mpp", source);
  if (c.mpp < 0) throw ModelError(source + ": model card entry 'input.mpp' is negative");
  if (auto r = m.find("input.stain_range"); r != m.end()) {
    const std::array<double, 4> v = parse_numbers<4>(r->second, "input.stain_range", source);
    if (!(v[0] > 0 && v[1] > v[0] && v[2] > 0 && v[3] > v[2]))
      throw ModelError(source + ": model card entry 'input.stain_range' must be haematoxylin low < high and eosin low < "
                       "high, all positive ('" + r->second + "')");
    c.stain_range = StainAmountRange{{v[0], v[2]}, {v[1], v[3]}};
  }
  c.tile_size = parse_int(need("tile.size"), "tile.size", source);
  c.tile_overlap = parse_int(need("tile.overlap"), "tile.overlap", source);
  if (c.tile_size < 16 || c.tile_overlap < 0 || c.tile_overlap >= c.tile_size)
    throw ModelError(source + ": model card has an invalid tile size / overlap");
  for (const auto& entry : m) {
    const std::string& k = entry.first;  // a named reference, not a structured binding: clang 14 cannot capture those
    const std::string& v = entry.second;
    auto strip = [&k](const std::string& prefix, std::string& rest) {
      if (k.compare(0, prefix.size(), prefix) != 0) return false;
      rest = k.substr(prefix.size());
      return true;
    };
    std::string rest;
    if (strip("option.", rest)) c.options[rest] = v;
    else if (strip("decode.", rest)) c.decoding[rest] = v;
    else if (strip("info.", rest)) c.info[rest] = v;
  }
  if (c.heads.num_classes > 0) {
    c.class_names.resize(static_cast<size_t>(c.heads.num_classes) + 1);
    for (size_t i = 0; i < c.class_names.size(); ++i) c.class_names[i] = need("class." + std::to_string(i));
  }
  return c;
}

SegmentationNetwork build_network(const ModelCard& card) {
  return build_network(card.arch, card.heads.channels(), ModelOptions(card.options));
}

void save_model(const std::string& path, SegmentationNetworkImpl& network, const ModelCard& card,
                bool half_precision) {
  weights::StateDict state = weights::state_of(network);
  for (auto& [key, t] : state.entries) {
    t = t.detach().to(torch::kCPU).contiguous();
    if (half_precision && t.is_floating_point()) t = t.to(torch::kFloat16);
    else if (t.is_floating_point()) t = t.to(torch::kFloat32);
  }
  weights::write_safetensors(path, state, card_metadata(card));
}

LoadedModel load_model(const std::string& path) {
  LoadedModel m;
  m.card = card_from_metadata(weights::read_safetensors_metadata(path), path);
  try {
    m.network = build_network(m.card);
  } catch (const ModelError& e) {
    throw ModelError(path + ": " + e.what());
  }
  weights::load_into(*m.network, weights::read_checkpoint(path), path);
  m.network->eval();
  return m;
}

}  // namespace nucleisam::models
