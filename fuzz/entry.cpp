// libFuzzer entry of one target: fuzz_<NUCLEISAM_FUZZ_TARGET>. A nucleisam::Error is the parser
// refusing bad input (the expected outcome); any other exception escapes to libFuzzer, which
// reports it as a crash, like a sanitizer report, a timeout or running out of memory.
#include <cstdio>
#include <cstdlib>

#include "harness.h"
#include "nucleisam/errors.h"
#include "nucleisam/log.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!nucleisam::fuzz::find_target(NUCLEISAM_FUZZ_TARGET)) {
    std::fprintf(stderr, "no fuzz target '%s'\n", NUCLEISAM_FUZZ_TARGET);
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nucleisam::fuzz::Body body = nucleisam::fuzz::find_target(NUCLEISAM_FUZZ_TARGET)->body;
  try {
    body(data, size);
  } catch (const nucleisam::Error&) {
  }
  return 0;
}
