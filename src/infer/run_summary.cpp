// The folder run's table: rows by output stem, loaded from and written back to segment_summary.csv.
#include "nucleisam/infer/run_summary.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>
#include <utility>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/infer/magnification.h"
#include "nucleisam/io/csv.h"
#include "nucleisam/log.h"

#include <nlohmann/json.hpp>

namespace nucleisam::infer {
namespace {

// Our columns before the class counts, and after them.
const std::vector<std::string> kLeadColumns = {"image", "stem",       "status", "width", "height",
                                               "mpp",   "mpp_source", "method", "nuclei"};
const std::vector<std::string> kTailColumns = {
    "tissue_mm2", "nuclei_per_mm2", "mean_area_um2", "median_diameter_um",
    "mean_score", "stains",         "seconds",       "error"};

bool is_fixed_column(const std::string& column) {
  return std::find(kLeadColumns.begin(), kLeadColumns.end(), column) != kLeadColumns.end() ||
         std::find(kTailColumns.begin(), kTailColumns.end(), column) != kTailColumns.end();
}

// nuclei_<class> (not nuclei_per_mm2).
bool is_class_column(const std::string& column) {
  return column.rfind("nuclei_", 0) == 0 && !is_fixed_column(column);
}

// Appends `item` unless `list` holds it.
void add_once(std::vector<std::string>& list, const std::string& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

}  // namespace

std::vector<std::string> describe_nuclei(const std::vector<Nucleus>& nuclei,
                                         const std::vector<std::string>& class_names, double mpp,
                                         RunSummaryRow& row) {
  row["nuclei"] = std::to_string(nuclei.size());
  const auto class_name = [&](int id) {
    if (id > 0 && id < static_cast<int>(class_names.size()) && !class_names[id].empty())
      return class_names[id];
    return unnamed_class_name(id);
  };
  std::map<std::string, int64_t> per_class;
  std::vector<std::string> order;  // class names in class-id order, then others as met
  const auto count = [&](const std::string& name) {
    if (per_class.emplace(name, 0).second) order.push_back(name);
    return &per_class[name];
  };
  for (int id = 1; id < static_cast<int>(class_names.size()); ++id) count(class_name(id));
  std::vector<int64_t> areas;
  double area_sum = 0, score_sum = 0;
  for (const Nucleus& n : nuclei) {
    if (n.class_id > 0)
      ++*count(n.class_name.empty() ? class_name(n.class_id) : n.class_name);
    else if (class_names.size() > 1)
      ++*count("unclassified");
    areas.push_back(n.area);
    area_sum += static_cast<double>(n.area);
    score_sum += n.score;
  }
  std::vector<std::string> columns;
  for (const std::string& name : order) {
    columns.push_back("nuclei_" + name);
    row[columns.back()] = std::to_string(per_class[name]);
  }
  const bool sized = mpp > 0 && !nuclei.empty();
  row["mean_area_um2"] = sized ? fixed(area_sum / static_cast<double>(nuclei.size()) * mpp * mpp, 2) : "";
  row["median_diameter_um"] = sized ? fixed(median_diameter_um(std::move(areas), mpp), 2) : "";
  row["mean_score"] = nuclei.empty() ? "" : fixed(score_sum / static_cast<double>(nuclei.size()), 3);
  return columns;
}

RunSummaryRow slide_summary_row(const std::string& summary_json) {
  RunSummaryRow row;
  try {
    const nlohmann::json doc = nlohmann::json::parse(read_file(summary_json));
    const auto number = [&](const nlohmann::json& value, int decimals) {
      return value.is_number() ? fixed(value.get<double>(), decimals) : std::string();
    };
    std::ostringstream mpp;
    mpp << doc.at("mpp").get<double>();
    row = {{"image", doc.at("slide").get<std::string>()},
           {"status", "segmented"},
           {"width", std::to_string(doc.at("width").get<int64_t>())},
           {"height", std::to_string(doc.at("height").get<int64_t>())},
           {"mpp", mpp.str()},
           {"mpp_source", doc.value("mpp_source", "")},
           {"method", doc.at("method").get<std::string>()},
           {"nuclei", std::to_string(doc.at("nuclei").get<int64_t>())},
           {"tissue_mm2", number(doc.at("tissue_area_mm2"), 4)},
           {"nuclei_per_mm2", number(doc.at("nuclei_per_mm2"), 1)},
           {"mean_area_um2", number(doc.value("mean_area_um2", nlohmann::json()), 2)},
           {"median_diameter_um", number(doc.value("median_diameter_um", nlohmann::json()), 2)},
           {"mean_score", number(doc.value("mean_score", nlohmann::json()), 3)},
           {"seconds", number(doc.at("seconds").at("wall"), 2)}};
    const nlohmann::json& stains = doc.at("stain_normalisation");
    row["stains"] = stains.is_null() ? "off" : stains.at("applied").get<bool>() ? "normalised" : "as is";
    // Unclassified nuclei are "Nucleus" there; a method without classes has only those.
    const nlohmann::json& per_class = doc.at("nuclei_per_class");
    if (!(per_class.size() == 1 && per_class.contains("Nucleus")))
      for (const auto& [name, count] : per_class.items())
        row["nuclei_" + (name == "Nucleus" ? std::string("unclassified") : name)] =
            std::to_string(count.get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    throw DataError(summary_json + ": not a slide summary (" + e.what() + ")");
  }
  return row;
}

RunSummary::RunSummary(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return;
  try {
    const std::vector<io::CsvRecord> records = io::read_csv(path_);
    if (records.empty()) return;
    const std::vector<std::string>& header = records.front().fields;
    const auto stem_at = std::find(header.begin(), header.end(), "stem");
    if (stem_at == header.end()) throw IoError(path_ + ": no \"stem\" column");
    const size_t stem_column = static_cast<size_t>(stem_at - header.begin());
    for (const std::string& column : header) {
      if (is_class_column(column))
        add_once(class_columns_, column);
      else if (!is_fixed_column(column))
        add_once(extra_columns_, column);
    }
    for (size_t r = 1; r < records.size(); ++r) {
      const std::vector<std::string>& fields = records[r].fields;
      if (fields.size() != header.size())
        throw IoError(path_ + ": line " + std::to_string(records[r].line) + " has " +
                      std::to_string(fields.size()) + " fields, the header " + std::to_string(header.size()));
      RunSummaryRow row;
      for (size_t c = 0; c < header.size(); ++c)
        if (!fields[c].empty()) row[header[c]] = fields[c];
      set(fields[stem_column], std::move(row));
    }
  } catch (const IoError& e) {
    log::warn(e.what(), "; the run summary is written anew");
    order_.clear();
    rows_.clear();
    class_columns_.clear();
    extra_columns_.clear();
  }
}

void RunSummary::reload_others(const std::vector<std::string>& own) {
  const RunSummary now(path_);
  const std::set<std::string> mine(own.begin(), own.end());
  for (const std::string& stem : now.order_)
    if (!mine.count(stem)) set(stem, now.rows_.at(stem));
}

const RunSummaryRow* RunSummary::find(const std::string& stem) const {
  const auto it = rows_.find(stem);
  return it == rows_.end() ? nullptr : &it->second;
}

void RunSummary::set(const std::string& stem, RunSummaryRow row,
                     const std::vector<std::string>& class_columns) {
  // A method's own order comes before that of rows loaded or rebuilt from tables.
  for (const std::string& column : class_columns) add_once(ordered_class_columns_, column);
  for (const auto& [column, value] : row)
    if (is_class_column(column)) add_once(class_columns_, column);
  row["stem"] = stem;
  if (rows_.find(stem) == rows_.end()) order_.push_back(stem);
  rows_[stem] = std::move(row);
}

std::string RunSummary::csv(const std::vector<std::string>& first) const {
  std::vector<const RunSummaryRow*> rows;
  std::set<std::string> placed;
  for (const std::string& stem : first)
    if (const RunSummaryRow* row = find(stem); row && placed.insert(stem).second) rows.push_back(row);
  for (const std::string& stem : order_)
    if (placed.insert(stem).second) rows.push_back(&rows_.at(stem));
  std::vector<std::string> columns = kLeadColumns;
  for (const auto* list : {&ordered_class_columns_, &class_columns_})
    for (const std::string& column : *list) add_once(columns, column);
  columns.insert(columns.end(), kTailColumns.begin(), kTailColumns.end());
  columns.insert(columns.end(), extra_columns_.begin(), extra_columns_.end());
  std::ostringstream out;
  for (size_t c = 0; c < columns.size(); ++c) out << (c ? "," : "") << io::csv_field(columns[c]);
  out << '\n';
  for (const RunSummaryRow* row : rows) {
    for (size_t c = 0; c < columns.size(); ++c) {
      const auto it = row->find(columns[c]);
      out << (c ? "," : "") << (it == row->end() ? "" : io::csv_field(it->second));
    }
    out << '\n';
  }
  return out.str();
}

void RunSummary::write(const std::vector<std::string>& first) const { write_file_atomic(path_, csv(first)); }

}  // namespace nucleisam::infer
