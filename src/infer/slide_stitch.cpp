// Seam stitching of whole-slide tiles (include/nucleisam/infer/slide_stitch.h): union-find over
// the instances of overlapping tiles, matched by their shared pixels, with the pending state kept
// to the seams still open.
#include "nucleisam/infer/slide_stitch.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>

#include "nucleisam/errors.h"
#include "nucleisam/infer/nucleus.h"

namespace nucleisam::infer {

namespace {

// The spans of one axis of the plan (columns or rows): window start/length and owned range.
struct AxisSpan {
  int start = 0, length = 0, own0 = 0, own1 = 0;
};

// For each span, the other spans whose windows intersect it.
std::vector<std::vector<int>> intersecting(const std::vector<AxisSpan>& spans) {
  std::vector<std::vector<int>> out(spans.size());
  for (size_t a = 0; a < spans.size(); ++a)
    for (size_t b = 0; b < spans.size(); ++b)
      if (a != b && spans[a].start < spans[b].start + spans[b].length &&
          spans[b].start < spans[a].start + spans[a].length)
        out[a].push_back(static_cast<int>(b));
  return out;
}

// The span whose owned range holds coordinate v (owned ranges partition the axis).
int span_owning(const std::vector<AxisSpan>& spans, int64_t v) {
  int lo = 0, hi = static_cast<int>(spans.size()) - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (spans[mid].own0 <= v)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

struct Rect {
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // half-open, grid coordinates
  bool empty() const { return x1 <= x0 || y1 <= y0; }
};

// The runs of label `id` in `m`, shifted by (dx, dy).
std::vector<PixelRun> runs_of(const LabelMap& m, int32_t id, int64_t dx, int64_t dy, int x0 = 0, int y0 = 0,
                              int x1 = -1, int y1 = -1) {
  if (x1 < 0) x1 = m.width;
  if (y1 < 0) y1 = m.height;
  std::vector<PixelRun> runs;
  for (int y = y0; y < y1; ++y) {
    const int32_t* row = m.row(y);
    for (int x = x0; x < x1;) {
      if (row[x] != id) {
        ++x;
        continue;
      }
      const int start = x;
      while (x < x1 && row[x] == id) ++x;
      runs.push_back({dy + y, dx + start, dx + x});
    }
  }
  return runs;
}

Rect window_rect(const TileWindow& t) { return {t.x, t.y, int64_t{t.x} + t.width, int64_t{t.y} + t.height}; }
Rect intersect(const Rect& a, const Rect& b) {
  return {std::max(a.x0, b.x0), std::max(a.y0, b.y0), std::min(a.x1, b.x1), std::min(a.y1, b.y1)};
}

}  // namespace

struct SeamStitcher::Impl {
  // A tile's instance, held while its nucleus may still grow. mask over the bbox: 0 not the
  // instance, 1 the instance outside its tile's effective region, 2 inside it.
  struct Piece {
    int64_t tile = 0;
    Rect box;
    std::vector<uint8_t> mask;
    bool open = false, cut = false;
    int class_id = 0;
    std::string class_name;
    float score = 1.0f;
    int64_t effective_pixels = 0;
  };
  struct Component {
    bool emitted = false;
    int64_t reach = 0;  // last segmented tile that may still add a piece
    std::vector<int64_t> members;
  };
  // A tile's labels over its window's intersection with a later tile's window, with the node of
  // each label.
  struct Strip {
    int64_t source = 0;
    Rect rect;
    std::vector<int32_t> labels;
    std::shared_ptr<const std::vector<int64_t>> node_of_label;
  };

  std::vector<TileWindow> plan;
  std::vector<size_t> segmented;
  int64_t grid_w = 0, grid_h = 0;
  bool with_runs = false;
  std::vector<AxisSpan> cols, rows;
  std::vector<std::vector<int>> col_neighbours, row_neighbours;
  std::vector<int64_t> segmented_of_plan;  // plan index -> segmented index, -1 when not segmented
  int64_t next = -1;                       // the segmented index expected by add(); -1 before the first

  int64_t next_node = 0;
  std::unordered_map<int64_t, int64_t> parent;
  std::unordered_map<int64_t, Piece> pieces;
  std::unordered_map<int64_t, Component> components;  // by root
  std::priority_queue<std::pair<int64_t, int64_t>, std::vector<std::pair<int64_t, int64_t>>, std::greater<>>
      due;
  std::map<int64_t, std::vector<Strip>> strips;  // by the later tile that will read them

  int64_t plan_index(int row, int col) const {
    return static_cast<int64_t>(row) * static_cast<int64_t>(cols.size()) + col;
  }
  int64_t owner_segmented(int64_t x, int64_t y) const {
    return segmented_of_plan[plan_index(span_owning(rows, y), span_owning(cols, x))];
  }

  // Later segmented tiles whose windows meet segmented tile i's window.
  std::vector<int64_t> later_neighbours(int64_t i) const {
    const size_t p = segmented[i];
    const int r = static_cast<int>(p / cols.size()), c = static_cast<int>(p % cols.size());
    std::vector<int> rr = row_neighbours[r], cc = col_neighbours[c];
    rr.push_back(r);
    cc.push_back(c);
    std::vector<int64_t> out;
    for (int a : rr)
      for (int b : cc) {
        const int64_t s = segmented_of_plan[plan_index(a, b)];
        if (s > i) out.push_back(s);
      }
    std::sort(out.begin(), out.end());
    return out;
  }

  int64_t find(int64_t n) {
    int64_t root = n;
    while (parent.at(root) != root) root = parent.at(root);
    while (parent.at(n) != root) {
      const int64_t up = parent.at(n);
      parent[n] = root;
      n = up;
    }
    return root;
  }

  void unite(int64_t a, int64_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    Component& ca = components.at(a);
    Component& cb = components.at(b);
    if (ca.members.size() < cb.members.size()) {
      std::swap(a, b);
    }
    Component& big = components.at(a);
    Component& small = components.at(b);
    big.members.insert(big.members.end(), small.members.begin(), small.members.end());
    big.emitted = big.emitted || small.emitted;
    const bool later = small.reach > big.reach;
    big.reach = std::max(big.reach, small.reach);
    parent[b] = a;
    components.erase(b);
    if (later) due.push({big.reach, a});
  }

  // The nucleus of a finished component that was not written at once, if any (rules in the header).
  std::optional<StitchedNucleus> complete(std::vector<int64_t> members) {
    std::sort(members.begin(), members.end());
    const Piece* closed = nullptr;
    const Piece* largest = nullptr;
    bool any_open = false, cut = false;
    Rect all{INT64_MAX, INT64_MAX, INT64_MIN, INT64_MIN};
    for (int64_t m : members) {
      const Piece& p = pieces.at(m);
      any_open = any_open || p.open;
      cut = cut || p.cut;
      if (!p.open && !closed) closed = &p;
      if (!largest || p.effective_pixels > largest->effective_pixels) largest = &p;
      all = {std::min(all.x0, p.box.x0), std::min(all.y0, p.box.y0), std::max(all.x1, p.box.x1),
             std::max(all.y1, p.box.y1)};
    }
    if (!any_open) return std::nullopt;  // closed everywhere and owned nowhere: its owner missed it
    const int w = static_cast<int>(all.x1 - all.x0), h = static_cast<int>(all.y1 - all.y0);
    // Union of the pieces: bit 1 = seen by some tile, bit 2 = in some piece's effective region.
    std::vector<uint8_t> u(static_cast<size_t>(w) * h, 0);
    for (int64_t m : members) {
      const Piece& p = pieces.at(m);
      const int pw = static_cast<int>(p.box.x1 - p.box.x0);
      for (int64_t y = p.box.y0; y < p.box.y1; ++y)
        for (int64_t x = p.box.x0; x < p.box.x1; ++x) {
          const uint8_t v = p.mask[static_cast<size_t>(y - p.box.y0) * pw + (x - p.box.x0)];
          if (v) u[static_cast<size_t>(y - all.y0) * w + (x - all.x0)] |= v == 2 ? 3 : 1;
        }
    }
    double sx = 0, sy = 0;
    int64_t n = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        if (u[static_cast<size_t>(y) * w + x]) {
          sx += x + 0.5;
          sy += y + 0.5;
          ++n;
        }
    // Ownership: the tile owning the centroid of everything seen must have seen it, or not exist.
    const int64_t owner =
        owner_segmented(all.x0 + static_cast<int64_t>(sx / n), all.y0 + static_cast<int64_t>(sy / n));
    if (owner >= 0 &&
        std::none_of(members.begin(), members.end(), [&](int64_t m) { return pieces.at(m).tile == owner; }))
      return std::nullopt;
    LabelMap map(h, w);
    const Piece& source = closed ? *closed : *largest;
    if (closed) {
      const int pw = static_cast<int>(closed->box.x1 - closed->box.x0);
      for (int64_t y = closed->box.y0; y < closed->box.y1; ++y)
        for (int64_t x = closed->box.x0; x < closed->box.x1; ++x)
          if (closed->mask[static_cast<size_t>(y - closed->box.y0) * pw + (x - closed->box.x0)])
            map.at(static_cast<int>(y - all.y0), static_cast<int>(x - all.x0)) = 1;
      cut = false;
    } else {
      for (size_t k = 0; k < u.size(); ++k) map.data[k] = (u[k] & 2) ? 1 : 0;
    }
    std::vector<Nucleus> found = nuclei_from_instances(map);
    if (found.empty()) return std::nullopt;
    StitchedNucleus s;
    s.nucleus = std::move(found[0]);
    for (auto& q : s.nucleus.polygon) {
      q.x += static_cast<float>(all.x0);
      q.y += static_cast<float>(all.y0);
    }
    s.nucleus.centroid_x += static_cast<double>(all.x0);
    s.nucleus.centroid_y += static_cast<double>(all.y0);
    s.nucleus.bbox.x += static_cast<int>(all.x0);
    s.nucleus.bbox.y += static_cast<int>(all.y0);
    s.nucleus.class_id = source.class_id;
    s.nucleus.class_name = source.class_name;
    s.nucleus.score = source.score;
    s.merged = members.size() > 1;
    s.cut = cut;
    if (with_runs) s.runs = runs_of(map, 1, all.x0, all.y0);
    return s;
  }
};

SeamStitcher::SeamStitcher(std::vector<TileWindow> plan, std::vector<size_t> segmented, int64_t grid_width,
                           int64_t grid_height, bool with_runs)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.with_runs = with_runs;
  s.plan = std::move(plan);
  s.segmented = std::move(segmented);
  s.grid_w = grid_width;
  s.grid_h = grid_height;
  if (s.plan.empty()) return;
  for (const TileWindow& t : s.plan) {
    if (t.y != s.plan.front().y) break;
    s.cols.push_back({t.x, t.width, t.own_x0, t.own_x1});
  }
  for (size_t i = 0; i < s.plan.size(); i += s.cols.size())
    s.rows.push_back({s.plan[i].y, s.plan[i].height, s.plan[i].own_y0, s.plan[i].own_y1});
  if (s.rows.size() * s.cols.size() != s.plan.size())
    throw DataError("seam stitching: the tile plan is not a grid of rows and columns");
  s.col_neighbours = intersecting(s.cols);
  s.row_neighbours = intersecting(s.rows);
  s.segmented_of_plan.assign(s.plan.size(), -1);
  for (size_t i = 0; i < s.segmented.size(); ++i) {
    if (s.segmented[i] >= s.plan.size() || (i > 0 && s.segmented[i] <= s.segmented[i - 1]))
      throw DataError("seam stitching: segmented tiles must be ascending plan indices");
    s.segmented_of_plan[s.segmented[i]] = static_cast<int64_t>(i);
  }
}

SeamStitcher::~SeamStitcher() = default;

std::vector<StitchedNucleus> SeamStitcher::add(int64_t i, const Segmentation& part) {
  Impl& s = *impl_;
  if (i < 0 || i >= static_cast<int64_t>(s.segmented.size()) || (s.next >= 0 && i != s.next))
    throw DataError("seam stitching: tile " + std::to_string(i) + " added out of order");
  s.next = i + 1;
  const TileWindow& tile = s.plan[s.segmented[i]];
  const LabelMap& m = part.instances;
  if (m.height != tile.height || m.width != tile.width)
    throw DataError("segmenter returned a " + std::to_string(m.width) + "x" + std::to_string(m.height) +
                    " map for a " + std::to_string(tile.width) + "x" + std::to_string(tile.height) + " tile");

  // Per instance: pixel count, sums and bbox in tile coordinates.
  struct Sum {
    double x = 0, y = 0;
    int64_t n = 0;
    int min_x = 1 << 30, min_y = 1 << 30, max_x = -1, max_y = -1;
  };
  int32_t max_id = 0;
  for (int32_t v : m.data) max_id = std::max(max_id, v);
  std::vector<Sum> sums(static_cast<size_t>(max_id) + 1);
  for (int y = 0; y < m.height; ++y) {
    const int32_t* row = m.row(y);
    for (int x = 0; x < m.width; ++x)
      if (row[x] > 0) {
        Sum& q = sums[row[x]];
        q.x += x;
        q.y += y;
        ++q.n;
        q.min_x = std::min(q.min_x, x);
        q.max_x = std::max(q.max_x, x);
        q.min_y = std::min(q.min_y, y);
        q.max_y = std::max(q.max_y, y);
      }
  }

  // Effective region along each axis: window pixels owned by this tile or by a tile not segmented.
  const Rect win = window_rect(tile);
  std::vector<int> col_owner(tile.width), row_owner(tile.height);
  for (int x = 0; x < tile.width; ++x) col_owner[x] = span_owning(s.cols, int64_t{tile.x} + x);
  for (int y = 0; y < tile.height; ++y) row_owner[y] = span_owning(s.rows, int64_t{tile.y} + y);
  auto effective = [&](int lx, int ly) {
    const int64_t o = s.segmented_of_plan[s.plan_index(row_owner[ly], col_owner[lx])];
    return o == i || o < 0;
  };
  // Across an inner edge: is the pixel just outside the window in a segmented tile's owned region?
  auto continued = [&](int64_t gx, int64_t gy) { return s.owner_segmented(gx, gy) >= 0; };

  const std::vector<int64_t> later = s.later_neighbours(i);
  auto node_of_label = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(max_id) + 1, -1);
  for (int32_t id = 1; id <= max_id; ++id) {
    const Sum& q = sums[id];
    if (q.n == 0) continue;
    const int64_t node = s.next_node++;
    (*node_of_label)[id] = node;
    Impl::Piece p;
    p.tile = i;
    p.box = {tile.x + q.min_x, tile.y + q.min_y, int64_t{tile.x} + q.max_x + 1,
             int64_t{tile.y} + q.max_y + 1};
    const int pw = q.max_x - q.min_x + 1, ph = q.max_y - q.min_y + 1;
    p.mask.assign(static_cast<size_t>(pw) * ph, 0);
    const bool left = tile.x > 0 && q.min_x == 0, top = tile.y > 0 && q.min_y == 0;
    const bool right = win.x1 < s.grid_w && q.max_x == tile.width - 1;
    const bool bottom = win.y1 < s.grid_h && q.max_y == tile.height - 1;
    p.open = left || top || right || bottom;
    for (int y = q.min_y; y <= q.max_y; ++y) {
      const int32_t* row = m.row(y);
      for (int x = q.min_x; x <= q.max_x; ++x) {
        if (row[x] != id) continue;
        const bool eff = effective(x, y);
        p.mask[static_cast<size_t>(y - q.min_y) * pw + (x - q.min_x)] = eff ? 2 : 1;
        p.effective_pixels += eff;
        if (!p.cut && p.open &&
            ((left && x == 0 && !continued(win.x0 - 1, tile.y + y)) ||
             (right && x == tile.width - 1 && !continued(win.x1, tile.y + y)) ||
             (top && y == 0 && !continued(tile.x + x, win.y0 - 1)) ||
             (bottom && y == tile.height - 1 && !continued(tile.x + x, win.y1))))
          p.cut = true;
      }
    }
    if (!part.classes.empty() && static_cast<size_t>(id) <= part.classes.size()) {
      p.class_id = part.classes[id - 1];
      if (p.class_id > 0 && static_cast<size_t>(p.class_id) < part.class_names.size())
        p.class_name = part.class_names[p.class_id];
    }
    if (!part.scores.empty() && static_cast<size_t>(id) <= part.scores.size()) p.score = part.scores[id - 1];
    Impl::Component c;
    c.reach = i;
    for (int64_t u : later)
      if (!intersect(p.box, window_rect(s.plan[s.segmented[u]])).empty()) c.reach = std::max(c.reach, u);
    c.members.push_back(node);
    s.parent[node] = node;
    s.pieces.emplace(node, std::move(p));
    s.components.emplace(node, std::move(c));
    s.due.push({s.components.at(node).reach, node});
  }

  // Match against the strips earlier tiles left for this one.
  if (auto it = s.strips.find(i); it != s.strips.end()) {
    for (const Impl::Strip& strip : it->second) {
      std::unordered_map<uint64_t, int64_t> shared;
      std::unordered_map<int64_t, int64_t> here, there;
      const int sw = static_cast<int>(strip.rect.x1 - strip.rect.x0);
      for (int64_t y = strip.rect.y0; y < strip.rect.y1; ++y) {
        const int32_t* row = m.row(static_cast<int>(y - tile.y));
        const int32_t* theirs = strip.labels.data() + static_cast<size_t>(y - strip.rect.y0) * sw;
        for (int64_t x = strip.rect.x0; x < strip.rect.x1; ++x) {
          const int32_t a = row[x - tile.x], b = theirs[x - strip.rect.x0];
          if (a > 0) ++here[a];
          if (b > 0) ++there[b];
          if (a > 0 && b > 0)
            ++shared[(static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b)];
        }
      }
      std::vector<std::pair<int64_t, int64_t>> matches;
      for (const auto& [key, count] : shared) {
        const int32_t a = static_cast<int32_t>(key >> 32), b = static_cast<int32_t>(key & 0xffffffffu);
        if (2 * count <= std::min(here[a], there[b])) continue;
        const int64_t nb = (*strip.node_of_label)[b];
        if (nb < 0 || !s.parent.count(nb)) continue;  // finished already (cannot reach here; defensive)
        matches.push_back({(*node_of_label)[a], nb});
      }
      std::sort(matches.begin(), matches.end());
      for (const auto& [a, b] : matches) s.unite(a, b);
    }
    s.strips.erase(it);
  }

  // Closed instances owning their centroid: written now, whole, in label order, exactly as tiled
  // segmentation does (so small nuclei come out as before); the open pieces joined to them are
  // then dropped. Not suppressed by each other: two such instances of one tile joined through a
  // neighbour's blob that covers both are two nuclei the owner saw apart.
  std::vector<StitchedNucleus> out;
  LabelMap kept;
  bool any_kept = false;
  for (int32_t id = 1; id <= max_id; ++id) {
    const Sum& q = sums[id];
    if (q.n == 0) continue;
    const int64_t node = (*node_of_label)[id];
    if (s.pieces.at(node).open) continue;
    const double cx = tile.x + q.x / q.n + 0.5, cy = tile.y + q.y / q.n + 0.5;
    if (cx < tile.own_x0 || cx >= tile.own_x1 || cy < tile.own_y0 || cy >= tile.own_y1) continue;
    s.components.at(s.find(node)).emitted = true;
    if (!any_kept) kept = LabelMap(m.height, m.width);
    any_kept = true;
    for (int y = q.min_y; y <= q.max_y; ++y)
      for (int x = q.min_x; x <= q.max_x; ++x)
        if (m.at(y, x) == id) kept.at(y, x) = id;
  }
  if (any_kept) {
    std::vector<int> classes;
    std::vector<float> scores;
    if (!part.classes.empty()) {
      classes = part.classes;
      classes.resize(static_cast<size_t>(max_id), 0);
    }
    if (!part.scores.empty()) {
      scores = part.scores;
      scores.resize(static_cast<size_t>(max_id), 1.0f);
    }
    for (Nucleus& n : nuclei_from_instances(kept, classes, scores, part.class_names)) {
      for (auto& p : n.polygon) {
        p.x += static_cast<float>(tile.x);
        p.y += static_cast<float>(tile.y);
      }
      n.centroid_x += tile.x;
      n.centroid_y += tile.y;
      n.bbox.x += tile.x;
      n.bbox.y += tile.y;
      StitchedNucleus sn;
      if (s.with_runs) {
        const Sum& q = sums[n.id];
        sn.runs = runs_of(kept, n.id, tile.x, tile.y, q.min_x, q.min_y, q.max_x + 1, q.max_y + 1);
      }
      sn.nucleus = std::move(n);
      out.push_back(std::move(sn));
    }
  }

  // Strips for the later tiles this window meets.
  for (int64_t u : later) {
    const Rect r = intersect(win, window_rect(s.plan[s.segmented[u]]));
    Impl::Strip strip;
    strip.source = i;
    strip.rect = r;
    strip.node_of_label = node_of_label;
    strip.labels.reserve(static_cast<size_t>((r.x1 - r.x0) * (r.y1 - r.y0)));
    for (int64_t y = r.y0; y < r.y1; ++y) {
      const int32_t* row = m.row(static_cast<int>(y - tile.y));
      strip.labels.insert(strip.labels.end(), row + (r.x0 - tile.x), row + (r.x1 - tile.x));
    }
    s.strips[u].push_back(std::move(strip));
  }

  // Nuclei no later tile can extend: finish them.
  std::vector<std::pair<int64_t, StitchedNucleus>> completed;
  while (!s.due.empty() && s.due.top().first <= i) {
    const int64_t node = s.due.top().second;
    s.due.pop();
    auto c = s.components.find(node);
    if (c == s.components.end() || c->second.reach > i) continue;  // merged away, or due later
    Impl::Component comp = std::move(c->second);
    s.components.erase(c);
    if (!comp.emitted)
      if (auto n = s.complete(comp.members))
        completed.push_back({*std::min_element(comp.members.begin(), comp.members.end()), std::move(*n)});
    for (int64_t mnode : comp.members) {
      s.pieces.erase(mnode);
      s.parent.erase(mnode);
    }
  }
  std::sort(completed.begin(), completed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [anchor, n] : completed) out.push_back(std::move(n));
  return out;
}

int64_t SeamStitcher::earliest_held() const {
  const Impl& s = *impl_;
  int64_t first = std::max<int64_t>(s.next, 0);
  for (const auto& [target, list] : s.strips)
    for (const auto& strip : list) first = std::min(first, strip.source);
  for (const auto& [node, piece] : s.pieces) first = std::min(first, piece.tile);
  return first;
}

size_t SeamStitcher::pending_pieces() const { return impl_->pieces.size(); }

size_t SeamStitcher::held_strips() const {
  size_t n = 0;
  for (const auto& [target, list] : impl_->strips) n += list.size();
  return n;
}

}  // namespace nucleisam::infer
