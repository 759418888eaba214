// Checks of an encoded image's bytes before a decoder sees them (io-internal): the size the header
// declares against limits.h, and the file's structure, so that a damaged file (cut short, a chunk
// failing its CRC) is refused instead of decoded into grey fill. OpenCV's imread only prints
// libjpeg's and libpng's warnings; these checks make them errors that name the file.
#pragma once

#include <cstdint>
#include <string>

namespace nucleisam::io {

// Throws IoError("<path>: damaged image: <cause> ...") unless accept_damaged_images() is set, in
// which case it logs the same as a warning and returns.
void report_damage(const std::string& path, const std::string& cause);

// Throws IoError naming the path and the limit when width x height x channels x bytes_per_sample
// declared by a header exceeds limits::kMaxImagePixels or limits::kMaxImageBytes (or is empty).
void check_declared_size(const std::string& path, int64_t width, int64_t height, int64_t channels,
                         int64_t bytes_per_sample);

// PNG, JPEG and BMP (by their magic bytes; anything else is refused with IoError): the declared size
// (check_declared_size), then the structure: PNG chunks inside the file with correct CRCs up to
// IEND; JPEG segments up to an end-of-image marker after the scan data; BMP pixel data inside the
// file. Damage goes to report_damage.
void check_encoded_image(const std::string& bytes, const std::string& path);

}  // namespace nucleisam::io
