// Fuzz body of refine sessions (`<out>/<image>.refine-session`, predict/refine_session.h): files in
// an output folder that a later `nucleisam refine` reads back. A session that reads must write
// back to the same bytes.
#include <stdexcept>
#include <string>

#include "harness.h"
#include "nucleisam/atomic_file.h"
#include "nucleisam/predict/refine_session.h"

namespace nucleisam::fuzz {

void fuzz_refine_session(const uint8_t* data, size_t size) {
  const std::string path = scratch_file(data, size, ".refine-session");
  const auto session = predict::read_refine_session(path);
  if (!session) throw std::logic_error("an existing session file was reported missing");
  const uint8_t none = 0;
  const std::string again = scratch_file(&none, 0, ".again.refine-session");
  predict::write_refine_session(again, *session);
  if (read_file(again) != std::string(reinterpret_cast<const char*>(data), size))
    throw std::logic_error("a session read and written again changed its bytes");
}

}  // namespace nucleisam::fuzz
