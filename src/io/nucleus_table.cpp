// Nucleus CSV table: writer and the matching strict reader.
#include "nucleisam/io/nucleus_table.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"

namespace nucleisam {
namespace {

std::string quoted(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

// Splits one CSV record starting at `pos` (quoted fields may hold commas, quotes, newlines).
// Returns false at end of text.
bool next_record(const std::string& text, size_t& pos, std::vector<std::string>& fields) {
  fields.clear();
  if (pos >= text.size()) return false;
  std::string field;
  bool in_quotes = false;
  for (; pos < text.size(); ++pos) {
    char c = text[pos];
    if (in_quotes) {
      if (c == '"' && pos + 1 < text.size() && text[pos + 1] == '"') field += '"', ++pos;
      else if (c == '"') in_quotes = false;
      else field += c;
    } else if (c == '"') {
      in_quotes = true;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') ++pos;
      ++pos;
      break;
    } else {
      field += c;
    }
  }
  fields.push_back(field);
  return true;
}

}  // namespace

std::string nucleus_table_csv(const std::vector<Nucleus>& nuclei) {
  std::string out = std::string(kNucleusTableHeader) + "\n";
  char buf[256];
  for (const Nucleus& n : nuclei) {
    std::snprintf(buf, sizeof buf, "%d,%d,", n.id, n.class_id);
    out += buf;
    out += quoted(n.class_name);
    std::snprintf(buf, sizeof buf, ",%.3f,%.3f,%lld,%d,%d,%d,%d,%.4f\n", n.centroid_x, n.centroid_y,
                  static_cast<long long>(n.area), n.bbox.x, n.bbox.y, n.bbox.width, n.bbox.height,
                  static_cast<double>(n.score));
    out += buf;
  }
  return out;
}

void write_nucleus_table(const std::string& path, const std::vector<Nucleus>& nuclei) {
  write_file_atomic(path, nucleus_table_csv(nuclei));
}

std::vector<Nucleus> read_nucleus_table(const std::string& path) {
  const std::string text = read_file(path);
  size_t pos = 0;
  std::vector<std::string> f;
  if (!next_record(text, pos, f)) throw IoError(path + ": empty file, expected a nucleus table header");
  std::string header;
  for (size_t i = 0; i < f.size(); ++i) header += (i ? "," : "") + f[i];
  if (header != kNucleusTableHeader)
    throw IoError(path + ": not a nucleus table (header is \"" + header + "\", expected \"" +
                  kNucleusTableHeader + "\")");
  std::vector<Nucleus> out;
  int line = 1;
  while (next_record(text, pos, f)) {
    ++line;
    if (f.size() == 1 && f[0].empty()) continue;  // blank line
    if (f.size() != 11)
      throw IoError(path + ": line " + std::to_string(line) + " has " + std::to_string(f.size()) +
                    " fields, expected 11");
    auto number = [&](size_t i) {
      char* end = nullptr;
      double v = std::strtod(f[i].c_str(), &end);
      if (f[i].empty() || *end != '\0')
        throw IoError(path + ": line " + std::to_string(line) + ": \"" + f[i] + "\" is not a number");
      return v;
    };
    Nucleus n;
    n.id = static_cast<int>(number(0));
    n.class_id = static_cast<int>(number(1));
    n.class_name = f[2];
    n.centroid_x = number(3);
    n.centroid_y = number(4);
    n.area = static_cast<int64_t>(number(5));
    n.bbox = {static_cast<int>(number(6)), static_cast<int>(number(7)), static_cast<int>(number(8)),
              static_cast<int>(number(9))};
    n.score = static_cast<float>(number(10));
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace nucleisam
