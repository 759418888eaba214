// Robustness: damaged files must end in a CheckpointError (or, where the damage happens to leave
// a consistent file, a successful read), never a crash, hang or other exception type. Seeded, so
// a failure reproduces.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "nucleisam/errors.h"
#include "nucleisam/weights/state_dict.h"
#include "weights/state_pickle.h"
#include "weights/zip_archive.h"
#include "support/test_support.h"

using namespace nucleisam;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Parses a data.pkl; returns false when it is refused with a CheckpointError.
bool parses(const std::string& pkl) {
  try {
    weights::read_state_pickle(reinterpret_cast<const uint8_t*>(pkl.data()), pkl.size(), "fuzz");
    return true;
  } catch (const CheckpointError&) {
    return false;
  }
}

std::string fixture_pickle() {
  std::string bytes = slurp(test::shared_path("fixtures/sam/vit_tiny/sam_vit_tiny.pth"));
  auto entries = weights::read_zip_directory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "fixture");
  for (const auto& e : entries)
    if (e.name == "sam_vit_tiny/data.pkl") return bytes.substr(e.data_offset, e.size);
  ADD_FAILURE() << "no data.pkl in the fixture";
  return "";
}

}  // namespace

TEST(CheckpointFuzz, EveryPrefixOfTheFixturePickleIsRefused) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny");
  std::string pkl = fixture_pickle();
  ASSERT_TRUE(parses(pkl));
  // The only complete pickle is the whole one: every shorter prefix lacks the final STOP.
  for (size_t cut = 0; cut < pkl.size(); cut += 1 + cut / 64) EXPECT_FALSE(parses(pkl.substr(0, cut))) << cut;
}

TEST(CheckpointFuzz, RandomlyDamagedPicklesNeverCrash) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny");
  std::string pkl = fixture_pickle();
  std::mt19937 rng(1234);
  int refused = 0;
  for (int round = 0; round < 400; ++round) {
    std::string damaged = pkl;
    for (int k = 0; k < 3; ++k) damaged[rng() % damaged.size()] = static_cast<char>(rng() & 0xFF);
    refused += parses(damaged) ? 0 : 1;
  }
  EXPECT_GT(refused, 0);
}

// Damage to the zip structure or the pickle of a whole file (CRC recomputed, so the pickle
// checks themselves are exercised): the reader must refuse or read consistently.
TEST(CheckpointFuzz, RandomlyDamagedArchivesNeverCrash) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny");
  std::string pkl = fixture_pickle();
  weights::StateDict sd = weights::read_checkpoint(test::shared_path("fixtures/sam/vit_tiny/sam_vit_tiny.pth"));
  test::TempDir dir;
  std::mt19937 rng(99);
  for (int round = 0; round < 60; ++round) {
    std::string damaged = pkl;
    for (int k = 0; k < 2; ++k) damaged[rng() % damaged.size()] = static_cast<char>(rng() & 0xFF);
    std::ostringstream out;
    {
      weights::ZipWriter zip(out);
      zip.add("f/data.pkl", damaged.data(), damaged.size());
      for (size_t i = 0; i < sd.size(); ++i) {
        torch::Tensor t = sd.entries[i].second.contiguous();
        // Drop some records too, so missing storages are hit.
        if (rng() % 50 != 0) zip.add("f/data/" + std::to_string(i), t.data_ptr(), t.nbytes());
      }
      zip.finish();
    }
    std::string bytes = out.str();
    // And damage the zip bytes themselves now and then, in the directory at the end.
    if (round % 3 == 0) bytes[bytes.size() - 1 - rng() % 2000] ^= static_cast<char>(1 + rng() % 255);
    std::string path = dir.file("f.pth");
    std::ofstream(path, std::ios::binary) << bytes;
    try {
      weights::StateDict got = weights::read_checkpoint(path);
      for (const auto& e : got.entries) e.second.sum();  // every view must be readable
    } catch (const CheckpointError&) {
    }
  }
}

// A fuzzing finding: lists nested 50,000 deep with APPEND (no MARK needed) overflowed the stack
// when the values were freed. Nesting is now counted as the values are built (at most 64 levels),
// and a container cannot change once inside another or contain itself, so no cycle is possible.
TEST(CheckpointFuzz, DeepOrCyclicPicklesAreRefusedWhileBuilt) {
  auto error_of = [](const std::string& pkl) -> std::string {
    try {
      weights::read_state_pickle(reinterpret_cast<const uint8_t*>(pkl.data()), pkl.size(), "t.pkl");
    } catch (const CheckpointError& e) {
      return e.what();
    }
    return "";
  };
  // 64 levels read; 65 do not.
  const auto nested = [](int levels) { return "\x80\x02" + std::string(levels + 1, ']') + std::string(levels, 'a') + "."; };
  EXPECT_EQ(error_of(nested(64)), "");
  EXPECT_NE(error_of(nested(65)).find("nest deeper than 64 levels"), std::string::npos) << error_of(nested(65));
  EXPECT_NE(error_of(nested(50000)).find("nest deeper than 64 levels"), std::string::npos);
  // A list appended to itself (through the memo), and a list changed after it went into another.
  const std::string self("\x80\x02]q\x00h\x00" "a.", 9);
  EXPECT_NE(error_of(self).find("contains itself"), std::string::npos) << error_of(self);
  const std::string changed("\x80\x02]q\x00]h\x00" "ah\x00K\x01" "a.", 15);
  EXPECT_NE(error_of(changed).find("already inside another"), std::string::npos) << error_of(changed);
}
