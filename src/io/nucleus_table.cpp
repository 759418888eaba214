// Nucleus CSV table: writer and the matching strict reader.
#include "nucleisam/io/nucleus_table.h"

#include <cstdio>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/io/csv.h"

namespace nucleisam::io {
std::string nucleus_table_csv(const std::vector<Nucleus>& nuclei) {
  std::string out = std::string(kNucleusTableHeader) + "\n";
  char buf[256];
  for (const Nucleus& n : nuclei) {
    std::snprintf(buf, sizeof buf, "%d,%d,", n.id, n.class_id);
    out += buf;
    out += csv_field(n.class_name);
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
  const std::vector<CsvRecord> records = read_csv(path);
  if (records.empty()) throw IoError(path + ": empty file, expected a nucleus table header");
  std::string header;
  for (size_t i = 0; i < records[0].fields.size(); ++i) header += (i ? "," : "") + records[0].fields[i];
  if (header != kNucleusTableHeader)
    throw IoError(path + ": not a nucleus table (header is \"" + header + "\", expected \"" +
                  kNucleusTableHeader + "\")");
  std::vector<Nucleus> out;
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& f = records[r];
    if (f.fields.size() != 11)
      throw IoError(path + ": line " + std::to_string(f.line) + " has " + std::to_string(f.fields.size()) +
                    " fields, expected 11");
    auto integer = [&](size_t i) { return static_cast<int>(f.integer(i, path)); };
    Nucleus n;
    n.id = integer(0);
    n.class_id = integer(1);
    n.class_name = f.fields[2];
    n.centroid_x = f.number(3, path);
    n.centroid_y = f.number(4, path);
    n.area = f.integer(5, path);
    n.bbox = {integer(6), integer(7), integer(8), integer(9)};
    n.score = static_cast<float>(f.number(10, path));
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace nucleisam::io
