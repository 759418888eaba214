// Replays every fuzz regression case (tests/fuzz/regressions/<target>/<case>: inputs that
// once crashed, hung or ran out of memory) and every seed (fuzz/corpus/<target>/: valid files and
// hand-made edge cases) through the fuzz targets' bodies, i.e. through the engine's own parsers.
// Each must end normally or with a nucleisam::Error; any other exception fails the test, a crash
// fails the whole executable. docs/fuzzing.md lists the cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.h"
#include "nucleisam/errors.h"

namespace nucleisam::fuzz {
namespace {
namespace fs = std::filesystem;

// "" when `body` takes the bytes of `path` without crashing and ends normally or with a
// nucleisam::Error; otherwise what went wrong.
std::string replay(Body body, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    body(bytes.data(), bytes.size());
  } catch (const Error&) {
  } catch (const std::exception& e) {
    return path + ": untyped exception: " + e.what();
  } catch (...) {
    return path + ": unknown exception";
  }
  return "";
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

const fs::path kSource = NUCLEISAM_SOURCE_DIR;

class FuzzReplay : public ::testing::TestWithParam<std::string> {};

TEST_P(FuzzReplay, SeedsAndRegressionsEndCleanly) {
  const Target* target = find_target(GetParam());
  ASSERT_NE(target, nullptr);
  std::vector<std::string> files = files_in(kSource / "fuzz" / "corpus" / target->name);
  const std::vector<std::string> regressions = files_in(kSource / "tests" / "fuzz" / "regressions" / target->name);
  files.insert(files.end(), regressions.begin(), regressions.end());
  // Every target has seeds, so an empty list means the data went missing, not that all passed.
  ASSERT_FALSE(files.empty()) << "no seeds or regression cases for fuzz target " << target->name;
  for (const std::string& f : files) EXPECT_EQ(replay(target->body, f), "");
}

std::vector<std::string> target_names() {
  std::vector<std::string> names;
  for (const Target& t : targets()) names.push_back(t.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(AllTargets, FuzzReplay, ::testing::ValuesIn(target_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// The replay tells a typed refusal from anything else.
TEST(FuzzReplay, ReportsUntypedExceptions) {
  const std::string path = (kSource / "fuzz" / "corpus" / "csv" / "empty").string();
  EXPECT_EQ(replay([](const uint8_t*, size_t) { throw IoError("bad input"); }, path), "");
  EXPECT_NE(replay([](const uint8_t*, size_t) { throw std::out_of_range("vector::at"); }, path), "");
  EXPECT_NE(replay([](const uint8_t*, size_t) { throw 3; }, path), "");
}

// Every fuzz target has a seed folder, and every regression folder belongs to a target.
TEST(FuzzReplay, FoldersMatchTargets) {
  for (const Target& t : targets())
    EXPECT_TRUE(fs::is_directory(kSource / "fuzz" / "corpus" / t.name)) << t.name;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kSource / "tests" / "fuzz" / "regressions", ec)) {
    if (e.is_directory()) {
      EXPECT_NE(find_target(e.path().filename().string()), nullptr) << e.path();
    }
  }
}

}  // namespace
}  // namespace nucleisam::fuzz
