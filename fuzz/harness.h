// The fuzz targets' bodies: one function per parser of untrusted bytes, shared by the libFuzzer
// executables (fuzz/entry.cpp, NUCLEISAM_FUZZ=ON) and the regression test that replays
// tests/fuzz/regressions/<target>/* in the normal build. A body feeds the bytes to the
// parser exactly as the engine would (through a scratch file when the parser only takes a path)
// and lets its exceptions through: a nucleisam::Error is the expected refusal of bad input,
// anything else (another exception, a crash, a sanitizer report, a hang) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nucleisam::fuzz {

using Body = void (*)(const uint8_t* data, size_t size);

struct Target {
  const char* name;
  Body body;
  const char* covers;  // one line for docs and --help
};

// Every target, in a fixed order.
const std::vector<Target>& targets();
// The target called `name`; nullptr when there is none.
const Target* find_target(const std::string& name);

// Writes the bytes to a scratch file of this process ending in `extension` (".png", ".mat", ...)
// and returns its path. The same path is reused by every call with that extension; it is under
// /dev/shm when writable (no disk I/O per input), else the system temporary folder.
std::string scratch_file(const uint8_t* data, size_t size, const std::string& extension);

// The bodies (fuzz/bodies/*.cpp).
void fuzz_zip(const uint8_t* data, size_t size);
void fuzz_pickle(const uint8_t* data, size_t size);
void fuzz_pth(const uint8_t* data, size_t size);
void fuzz_safetensors(const uint8_t* data, size_t size);
void fuzz_weights_json(const uint8_t* data, size_t size);
void fuzz_npy(const uint8_t* data, size_t size);
void fuzz_image(const uint8_t* data, size_t size);
void fuzz_aperio_xml(const uint8_t* data, size_t size);
void fuzz_mat(const uint8_t* data, size_t size);
void fuzz_csv(const uint8_t* data, size_t size);
void fuzz_geojson(const uint8_t* data, size_t size);
void fuzz_model_card(const uint8_t* data, size_t size);
void fuzz_recipe(const uint8_t* data, size_t size);
void fuzz_refine_session(const uint8_t* data, size_t size);
void fuzz_points(const uint8_t* data, size_t size);

}  // namespace nucleisam::fuzz
