// Minimal PNG decoder for the SAM test fixtures (8-bit RGB/RGBA/grey, non-interlaced), so the
// LibTorch-only sam tests can read image.png / input_resized.png without OpenCV. Inflate comes
// from the miniz copy inside LibTorch (it backs torch.save's zip archives).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "nucleisam/raster.h"

extern "C" int mz_uncompress(unsigned char* dest, unsigned long* dest_len, const unsigned char* source,
                             unsigned long source_len);

namespace nucleisam::test {

inline Raster<uint8_t> read_png_rgb(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  auto be32 = [&](size_t o) {
    return (uint32_t{b[o]} << 24) | (uint32_t{b[o + 1]} << 16) | (uint32_t{b[o + 2]} << 8) | b[o + 3];
  };
  if (bytes.size() < 8 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0)
    throw std::runtime_error(path + ": not a PNG");
  size_t pos = 8;
  uint32_t width = 0, height = 0;
  int color = -1;
  std::string idat;
  while (pos + 8 <= bytes.size()) {
    const uint32_t len = be32(pos);
    const std::string type = bytes.substr(pos + 4, 4);
    const size_t data = pos + 8;
    if (data + len > bytes.size()) throw std::runtime_error(path + ": truncated chunk " + type);
    if (type == "IHDR") {
      width = be32(data);
      height = be32(data + 4);
      if (b[data + 8] != 8 || b[data + 12] != 0)
        throw std::runtime_error(path + ": only 8-bit non-interlaced PNG");
      color = b[data + 9];
    } else if (type == "IDAT") {
      idat.append(bytes, data, len);
    } else if (type == "IEND") {
      break;
    }
    pos = data + len + 4;
  }
  const int channels = color == 2 ? 3 : color == 6 ? 4 : color == 0 ? 1 : 0;
  if (channels == 0) throw std::runtime_error(path + ": unsupported PNG colour type");
  const size_t stride = static_cast<size_t>(width) * channels;
  std::vector<uint8_t> raw((stride + 1) * height);
  unsigned long raw_len = static_cast<unsigned long>(raw.size());
  if (mz_uncompress(raw.data(), &raw_len, reinterpret_cast<const uint8_t*>(idat.data()),
                    static_cast<unsigned long>(idat.size())) != 0 ||
      raw_len != raw.size())
    throw std::runtime_error(path + ": corrupt image data");

  std::vector<uint8_t> pix(stride * height);
  for (size_t y = 0; y < height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    uint8_t* out = &pix[y * stride];
    const uint8_t* up = y ? &pix[(y - 1) * stride] : nullptr;
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= static_cast<size_t>(channels) ? out[i - channels] : 0;
      const int u = up ? up[i] : 0;
      const int c = (up && i >= static_cast<size_t>(channels)) ? up[i - channels] : 0;
      int pred = 0;
      switch (filter) {
        case 0:
          pred = 0;
          break;
        case 1:
          pred = a;
          break;
        case 2:
          pred = u;
          break;
        case 3:
          pred = (a + u) / 2;
          break;
        case 4: {
          const int p = a + u - c, pa = std::abs(p - a), pb = std::abs(p - u), pc = std::abs(p - c);
          pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? u : c);
          break;
        }
        default:
          throw std::runtime_error(path + ": bad PNG filter");
      }
      out[i] = static_cast<uint8_t>(in[i] + pred);
    }
  }
  Raster<uint8_t> img(static_cast<int>(height), static_cast<int>(width), 3);
  for (size_t p = 0; p < static_cast<size_t>(width) * height; ++p)
    for (int ch = 0; ch < 3; ++ch) img.data[p * 3 + ch] = pix[p * channels + (channels >= 3 ? ch : 0)];
  return img;
}

}  // namespace nucleisam::test
