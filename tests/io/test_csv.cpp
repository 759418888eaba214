// The RFC 4180 reader: quoting, line endings, line numbers, strict numbers, and bad input.
#include <gtest/gtest.h>

#include "nucleisam/errors.h"
#include "nucleisam/io/csv.h"

using namespace nucleisam;
using namespace nucleisam::io;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no IoError";
  return "";
}
}  // namespace

TEST(Csv, QuotedFieldsLineEndingsAndLineNumbers) {
  auto r = parse_csv("a,b\r\n\"x, \"\"y\"\"\",2\n\n\"multi\nline\",3\r4,\"\"\n", "t.csv");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].fields, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r[1].fields, (std::vector<std::string>{"x, \"y\"", "2"}));
  EXPECT_EQ(r[1].line, 2);
  EXPECT_EQ(r[2].fields, (std::vector<std::string>{"multi\nline", "3"}));
  EXPECT_EQ(r[2].line, 4);  // line 3 is blank and skipped
  EXPECT_EQ(r[3].fields, (std::vector<std::string>{"4", ""}));
  EXPECT_EQ(r[3].line, 6);
  EXPECT_TRUE(parse_csv("", "e.csv").empty());
  // The writer's quoting reads back.
  const std::string name = "a,\"b\"\nc";
  EXPECT_EQ(parse_csv(csv_field(name) + ",1\n", "w.csv")[0].fields[0], name);
  EXPECT_EQ(csv_field("plain"), "plain");
}

TEST(Csv, NumbersAreStrict) {
  auto r = parse_csv("id,score\n12abc,0.5\n7,1e-3\n8, 2\n", "s.csv");
  EXPECT_EQ(error_of([&] { r[1].integer(0, "s.csv"); }), "s.csv: line 2: \"12abc\" is not a number (expected an integer)");
  EXPECT_EQ(r[2].integer(0, "s.csv"), 7);
  EXPECT_DOUBLE_EQ(r[2].number(1, "s.csv"), 1e-3);
  EXPECT_NE(error_of([&] { r[3].number(1, "s.csv"); }).find("\" 2\" is not a number"), std::string::npos);
  EXPECT_NE(error_of([&] { r[2].integer(5, "s.csv"); }).find("s.csv: line 3 has 2 fields"), std::string::npos);
  EXPECT_NE(error_of([] { parse_integer("99999999999999999999", "x"); }).find("out of range"), std::string::npos);
  EXPECT_NE(error_of([] { parse_number("", "x"); }).find("is not a number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_csv("a,\"open\n", "q.csv"); }).find("q.csv: line 1: quoted field never closed"),
            std::string::npos);
  EXPECT_NE(error_of([] { read_csv("/nonexistent/x.csv"); }).find("x.csv"), std::string::npos);
}
