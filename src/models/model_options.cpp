// ModelOptions: a flat key -> string map with strict typed getters. Every key a getter reads is
// remembered so build_network can reject keys nobody read (a misspelt option would otherwise be
// silently ignored and the model built with its default).
#include "nucleisam/errors.h"
#include "nucleisam/models/segmentation_model.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <utility>

namespace nucleisam::models {
namespace {

[[noreturn]] void bad_value(const std::string& key, const char* expected, const std::string& value) {
  throw ModelError("model option '" + key + "': expected " + expected + ", found '" + value + "'");
}

// Parses all of `v` with a strtoll/strtod-style function: no leading blanks, no leftovers
// ("12abc"), no overflow.
template <typename T, typename Parse>
bool parse_whole(const std::string& v, Parse parse, T& out) {
  if (v.empty() || std::isspace(static_cast<unsigned char>(v[0]))) return false;
  char* end = nullptr;
  errno = 0;
  out = parse(v.c_str(), &end);
  return end == v.c_str() + v.size() && errno != ERANGE;
}

}  // namespace

ModelOptions::ModelOptions(std::map<std::string, std::string> values) : values_(std::move(values)) {}

int64_t ModelOptions::integer(const std::string& key, int64_t fallback) const {
  used_.insert(key);
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  long long parsed = 0;
  if (!parse_whole(it->second, [](const char* s, char** end) { return std::strtoll(s, end, 10); }, parsed))
    bad_value(key, "an integer", it->second);
  return static_cast<int64_t>(parsed);
}

double ModelOptions::number(const std::string& key, double fallback) const {
  used_.insert(key);
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  double parsed = 0;
  if (!parse_whole(it->second, [](const char* s, char** end) { return std::strtod(s, end); }, parsed))
    bad_value(key, "a number", it->second);
  return parsed;
}

bool ModelOptions::flag(const std::string& key, bool fallback) const {
  used_.insert(key);
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  const std::string& v = it->second;
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  bad_value(key, "true, false, 1 or 0", v);
}

std::string ModelOptions::text(const std::string& key, const std::string& fallback) const {
  used_.insert(key);
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

std::string ModelOptions::choice(const std::string& key, const std::string& fallback,
                                 const std::vector<std::string>& allowed) const {
  std::string v = text(key, fallback);
  for (const auto& a : allowed)
    if (v == a) return v;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw ModelError("model option '" + key + "': expected one of " + list + ", found '" + v + "'");
}

std::vector<std::string> ModelOptions::unused() const {
  std::vector<std::string> out;
  for (const auto& kv : values_)
    if (!used_.count(kv.first)) out.push_back(kv.first);
  return out;
}

}  // namespace nucleisam::models
