// Reading and writing tiles: RGB images and integer label maps. Every writer is atomic.
#pragma once

#include <string>

#include "nucleisam/limits.h"
#include "nucleisam/raster.h"

namespace nucleisam::io {

// Largest image read whole into memory (pixels). Whole slides go through the slide reader.
constexpr long long kMaxTilePixels = limits::kMaxImagePixels;

// Damaged files (cut short, a PNG chunk failing its CRC, a TIFF strip or tile that does not decode)
// are refused with IoError("<path>: damaged image: <cause> ..."), never decoded into grey fill.
// set_accept_damaged_images(true) (the CLI's --accept-damaged-images) logs a warning instead and
// keeps what the decoder recovers. Process-wide; the default is false.
void set_accept_damaged_images(bool accept);
bool accept_damaged_images();

// RGB 8-bit from PNG, JPEG, BMP or TIFF (any compression libtiff decodes: LZW, JPEG, deflate, ...).
// Grey images are replicated to RGB, alpha is dropped, 16-bit images are scaled to 8 bits.
// The size the header declares is checked against limits.h before decoding. Throws IoError naming
// the path and the cause.
Image read_image(const std::string& path);
// Writes PNG, JPEG (quality 95) or TIFF by extension.
void write_image(const std::string& path, const Image& image);

// The resolution an image file records, in microns per pixel; 0 when it records none, or one that
// no microscope image has (outside 0.02-20 um/px: the 72 or 300 dpi of a photo or document). TIFF:
// the OME-XML PhysicalSizeX / Y of its description (Bio-Formats and QuPath exports; units um, nm,
// mm, cm, m), else XResolution / YResolution with ResolutionUnit centimetre or inch; PNG: the pHYs
// chunk (pixels per metre). Other formats, and a TIFF whose unit is "none": 0. Non-square pixels:
// the mean of x and y. Never throws for a readable image; a file that cannot be read gives 0 here
// and fails in read_image.
double read_image_mpp(const std::string& path);

// Integer label map from a single-channel 8/16-bit PNG, 8/16/32-bit TIFF (signed, unsigned or
// integral float) or .npy (any integer type, 2-D or H x W x 1).
LabelMap read_label_map(const std::string& path);
// .png: 16-bit (values must lie in 0..65535); .tif/.tiff: 16-bit when the values fit, else
// 32-bit signed, deflate-compressed; .npy: int32. mpp > 0: a TIFF records that resolution
// (XResolution / YResolution in pixels per centimetre), which read_image_mpp and QuPath read back.
void write_label_map(const std::string& path, const LabelMap& labels, double mpp = 0);

// Lower-case extension including the dot (".tif"), "" when none.
std::string lower_extension(const std::string& path);

}  // namespace nucleisam::io
