// Sample helpers and instance relabelling: the standard-library part of the dataset interface.
#include <algorithm>
#include <map>

#include "nucleisam/data/dataset.h"
#include "nucleisam/errors.h"

namespace nucleisam::data {

int Sample::instance_count() const {
  int32_t m = 0;
  for (int32_t v : instances.data) m = std::max(m, v);
  return m;
}

LabelMap Sample::class_map() const {
  LabelMap out(instances.height, instances.width, 1, 0);
  for (size_t i = 0; i < instances.data.size(); ++i) {
    int32_t id = instances.data[i];
    if (id <= 0) continue;
    if (!classed) {
      out.data[i] = 1;
    } else if (static_cast<size_t>(id) <= classes.size()) {
      out.data[i] = classes[id - 1];
    } else {
      throw DataError(name + ": instance " + std::to_string(id) + " has no class (" +
                      std::to_string(classes.size()) + " classes listed)");
    }
  }
  return out;
}

std::vector<int32_t> relabel_consecutive(LabelMap& instances, const std::string& file) {
  int32_t maxid = 0;
  for (int32_t v : instances.data) {
    if (v < 0)
      throw DataError((file.empty() ? std::string("instance map") : file) + ": negative instance id " +
                      std::to_string(v));
    maxid = std::max(maxid, v);
  }
  std::vector<int32_t> old_ids;
  // A lookup table when ids are small (every real dataset), a sorted map otherwise.
  if (maxid <= (1 << 24)) {
    std::vector<int32_t> table(static_cast<size_t>(maxid) + 1, 0);
    for (int32_t v : instances.data) table[v] = 1;
    table[0] = 0;
    for (int32_t id = 1; id <= maxid; ++id)
      if (table[id]) {
        old_ids.push_back(id);
        table[id] = static_cast<int32_t>(old_ids.size());
      }
    if (static_cast<int32_t>(old_ids.size()) != maxid)
      for (int32_t& v : instances.data) v = table[v];
  } else {
    std::map<int32_t, int32_t> table;
    for (int32_t v : instances.data)
      if (v) table[v] = 0;
    for (auto& kv : table) {
      old_ids.push_back(kv.first);
      kv.second = static_cast<int32_t>(old_ids.size());
    }
    for (int32_t& v : instances.data)
      if (v) v = table[v];
  }
  return old_ids;
}

}  // namespace nucleisam::data
