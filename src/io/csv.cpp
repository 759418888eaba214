// RFC 4180 CSV reading and strict numbers (see include/nucleisam/io/csv.h).
#include "nucleisam/io/csv.h"

#include <cerrno>
#include <cstdlib>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"

namespace nucleisam::io {

std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& path) {
  std::vector<CsvRecord> records;
  CsvRecord record;
  std::string field;
  bool in_quotes = false, any = false;
  int line = 1;
  record.line = 1;
  auto end_record = [&] {
    record.fields.push_back(field);
    field.clear();
    if (!(record.fields.size() == 1 && record.fields[0].empty())) records.push_back(std::move(record));
    record = CsvRecord{};
    any = false;
  };
  for (size_t pos = 0; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (!any) {
      record.line = line;
      any = true;
    }
    if (in_quotes) {
      if (c == '"' && pos + 1 < text.size() && text[pos + 1] == '"') {
        field += '"';
        ++pos;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        if (c == '\n' || (c == '\r' && !(pos + 1 < text.size() && text[pos + 1] == '\n'))) ++line;
        field += c;
      }
    } else if (c == '"') {
      in_quotes = true;
    } else if (c == ',') {
      record.fields.push_back(field);
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') ++pos;
      ++line;
      end_record();
    } else {
      field += c;
    }
  }
  if (in_quotes) throw IoError(path + ": line " + std::to_string(record.line) + ": quoted field never closed");
  if (any) end_record();
  return records;
}

std::vector<CsvRecord> read_csv(const std::string& path) { return parse_csv(read_file(path), path); }

int64_t parse_integer(const std::string& text, const std::string& where) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || text.find_first_of(" \t") != std::string::npos)
    throw IoError(where + ": \"" + text + "\" is not a number (expected an integer)");
  if (errno == ERANGE) throw IoError(where + ": \"" + text + "\" is out of range");
  return v;
}

double parse_number(const std::string& text, const std::string& where) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || text.find_first_of(" \t") != std::string::npos)
    throw IoError(where + ": \"" + text + "\" is not a number");
  return v;
}

const std::string& CsvRecord::field(size_t i, const std::string& path) const {
  if (i >= fields.size())
    throw IoError(path + ": line " + std::to_string(line) + " has " + std::to_string(fields.size()) +
                  " fields, expected at least " + std::to_string(i + 1));
  return fields[i];
}

int64_t CsvRecord::integer(size_t i, const std::string& path) const {
  return parse_integer(field(i, path), path + ": line " + std::to_string(line));
}

double CsvRecord::number(size_t i, const std::string& path) const {
  return parse_number(field(i, path), path + ": line " + std::to_string(line));
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

}  // namespace nucleisam::io
