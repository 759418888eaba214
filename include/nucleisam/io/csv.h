// The one CSV reader (RFC 4180): fields separated by commas; a field in double quotes may hold
// commas, line breaks and doubled quotes (""); records end at LF, CRLF or CR. Used by every CSV the
// engine reads: the nucleus table, the folder dataset's class CSVs, CoNSeP's instances.csv and
// eval's sidecars. Numbers are strict: the whole field must be the number ("12abc" is an error
// naming the file and line).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nucleisam::io {

struct CsvRecord {
  int line = 0;  // 1-based line on which the record starts
  std::vector<std::string> fields;
  // Field i as a strict number; IoError "<path>: line <n>: \"12abc\" is not a number (expected an integer)" otherwise,
  // or "... has 2 fields, expected at least 3" when the record is too short.
  const std::string& field(size_t i, const std::string& path) const;
  int64_t integer(size_t i, const std::string& path) const;
  double number(size_t i, const std::string& path) const;
};

// Every record of `text`, blank lines (a record with one empty field) skipped. An unterminated
// quoted field is an IoError naming `path`.
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& path);
// parse_csv of a file's content; IoError naming the path when it cannot be read.
std::vector<CsvRecord> read_csv(const std::string& path);

// Strict conversions: the whole of `text` (no spaces) must be the number; IoError naming `where`
// ("file.csv: line 3") otherwise. Integers must fit in int64_t.
int64_t parse_integer(const std::string& text, const std::string& where);
double parse_number(const std::string& text, const std::string& where);

// `s` as a CSV field: quoted (quotes doubled) when it holds a comma, quote or line break.
std::string csv_field(const std::string& s);

}  // namespace nucleisam::io
