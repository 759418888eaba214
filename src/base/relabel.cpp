// relabel_consecutive (see include/nucleisam/relabel.h).
#include "nucleisam/relabel.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "nucleisam/errors.h"
#include "nucleisam/limits.h"

namespace nucleisam {
namespace {

// At most maxid labels are distinct; above limits::kMaxLabels they are counted on a sorted copy
// (memory of the map itself), so a billion-label map is refused before any per-label table exists.
void check_label_count(const LabelMap& labels, int32_t maxid, const std::string& file) {
  if (maxid <= limits::kMaxLabels) return;
  std::vector<int32_t> ids(labels.data);
  std::sort(ids.begin(), ids.end());
  const auto distinct = std::unique(ids.begin(), ids.end()) - ids.begin() - (ids.empty() || ids[0] != 0 ? 0 : 1);
  if (distinct > limits::kMaxLabels)
    throw DataError((file.empty() ? std::string("instance map") : file) + ": more than " +
                    std::to_string(limits::kMaxLabels) + " distinct instance labels (limit kMaxLabels)");
}

}  // namespace

std::vector<int32_t> relabel_consecutive(LabelMap& labels, const std::string& file, RelabelOrder order) {
  int32_t maxid = 0;
  for (int32_t v : labels.data) {
    if (v < 0)
      throw DataError((file.empty() ? std::string("instance map") : file) + ": negative instance id " +
                      std::to_string(v));
    maxid = std::max(maxid, v);
  }
  check_label_count(labels, maxid, file);
  std::vector<int32_t> old_ids;
  if (order == RelabelOrder::first_seen) {
    if (maxid <= (1 << 24)) {
      std::vector<int32_t> table(static_cast<size_t>(maxid) + 1, 0);
      for (int32_t& v : labels.data) {
        if (v == 0) continue;
        int32_t& id = table[v];
        if (id == 0) {
          old_ids.push_back(v);
          id = static_cast<int32_t>(old_ids.size());
        }
        v = id;
      }
    } else {
      std::unordered_map<int32_t, int32_t> table;
      for (int32_t& v : labels.data) {
        if (v == 0) continue;
        auto [it, fresh] = table.emplace(v, 0);
        if (fresh) {
          old_ids.push_back(v);
          it->second = static_cast<int32_t>(old_ids.size());
        }
        v = it->second;
      }
    }
    return old_ids;
  }
  // Ascending: a lookup table when ids are small (every real dataset), a sorted map otherwise.
  if (maxid <= (1 << 24)) {
    std::vector<int32_t> table(static_cast<size_t>(maxid) + 1, 0);
    for (int32_t v : labels.data) table[v] = 1;
    table[0] = 0;
    for (int32_t id = 1; id <= maxid; ++id)
      if (table[id]) {
        old_ids.push_back(id);
        table[id] = static_cast<int32_t>(old_ids.size());
      }
    if (static_cast<int32_t>(old_ids.size()) != maxid)
      for (int32_t& v : labels.data) v = table[v];
  } else {
    std::map<int32_t, int32_t> table;
    for (int32_t v : labels.data)
      if (v) table[v] = 0;
    for (auto& kv : table) {
      old_ids.push_back(kv.first);
      kv.second = static_cast<int32_t>(old_ids.size());
    }
    for (int32_t& v : labels.data)
      if (v) v = table[v];
  }
  return old_ids;
}

}  // namespace nucleisam
