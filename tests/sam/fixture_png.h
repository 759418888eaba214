// Minimal PNG decoder for the SAM test fixtures (8-bit RGB/RGBA/grey, non-interlaced), so the
// LibTorch-only sam tests can read image.png / input_resized.png without OpenCV or zlib (a GPU
// machine with only a CUDA LibTorch must run them). Includes a small DEFLATE (RFC 1951) decoder.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "nucleisam/raster.h"

namespace nucleisam::test {

// DEFLATE decoder (stored, fixed and dynamic Huffman blocks) for a zlib stream. Canonical Huffman
// codes are decoded one bit at a time: slow, but the fixtures are a few MB.
class ZlibInflater {
 public:
  ZlibInflater(const uint8_t* data, size_t size) : in_(data), size_(size) {}

  std::vector<uint8_t> run() {
    if (size_ < 2 || (in_[0] & 0x0f) != 8) throw std::runtime_error("not a zlib stream");
    pos_ = 2;  // CMF, FLG; the trailing Adler-32 is not checked
    bool last = false;
    while (!last) {
      last = bits(1);
      const int type = bits(2);
      if (type == 0)
        stored();
      else if (type == 1)
        fixed();
      else if (type == 2)
        dynamic();
      else
        throw std::runtime_error("bad deflate block type");
    }
    return out_;
  }

 private:
  struct Huffman {
    std::vector<int> count = std::vector<int>(16, 0);  // codes per length
    std::vector<int> symbol;                           // symbols ordered by code
  };

  int bits(int n) {
    int v = 0;
    for (int i = 0; i < n; ++i) {
      if (pos_ >= size_) throw std::runtime_error("truncated deflate stream");
      v |= ((in_[pos_] >> bit_) & 1) << i;
      if (++bit_ == 8) {
        bit_ = 0;
        ++pos_;
      }
    }
    return v;
  }

  static Huffman build(const int* lengths, int n) {
    Huffman h;
    for (int i = 0; i < n; ++i) h.count[lengths[i]]++;
    h.count[0] = 0;
    std::vector<int> offset(16, 0);
    // offsets of each length's first symbol in `symbol`
    int total = 0;
    for (int len = 1; len < 16; ++len) {
      offset[len] = total;
      total += h.count[len];
    }
    h.symbol.assign(total, 0);
    for (int i = 0; i < n; ++i)
      if (lengths[i]) h.symbol[offset[lengths[i]]++] = i;
    return h;
  }

  int decode(const Huffman& h) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len < 16; ++len) {
      code |= bits(1);
      const int count = h.count[len];
      if (code - first < count) return h.symbol[index + (code - first)];
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    throw std::runtime_error("bad Huffman code");
  }

  void stored() {
    if (bit_) {
      bit_ = 0;
      ++pos_;
    }
    if (pos_ + 4 > size_) throw std::runtime_error("truncated stored block");
    const unsigned len = in_[pos_] | (in_[pos_ + 1] << 8);
    pos_ += 4;
    if (pos_ + len > size_) throw std::runtime_error("truncated stored block");
    out_.insert(out_.end(), in_ + pos_, in_ + pos_ + len);
    pos_ += len;
  }

  void codes(const Huffman& lit, const Huffman& dist) {
    static const int kLenBase[] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                   31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static const int kLenExtra[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                    2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static const int kDistBase[] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                    33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
    static const int kDistExtra[] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                     6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
    for (;;) {
      int sym = decode(lit);
      if (sym < 256) {
        out_.push_back(static_cast<uint8_t>(sym));
      } else if (sym == 256) {
        return;
      } else {
        sym -= 257;
        if (sym >= 29) throw std::runtime_error("bad length symbol");
        const int len = kLenBase[sym] + bits(kLenExtra[sym]);
        const int d = decode(dist);
        if (d >= 30) throw std::runtime_error("bad distance symbol");
        const size_t back = static_cast<size_t>(kDistBase[d] + bits(kDistExtra[d]));
        if (back > out_.size()) throw std::runtime_error("distance too far back");
        for (int i = 0; i < len; ++i) out_.push_back(out_[out_.size() - back]);
      }
    }
  }

  void fixed() {
    int lengths[288 + 30];
    for (int i = 0; i < 144; ++i) lengths[i] = 8;
    for (int i = 144; i < 256; ++i) lengths[i] = 9;
    for (int i = 256; i < 280; ++i) lengths[i] = 7;
    for (int i = 280; i < 288; ++i) lengths[i] = 8;
    for (int i = 0; i < 30; ++i) lengths[288 + i] = 5;
    codes(build(lengths, 288), build(lengths + 288, 30));
  }

  void dynamic() {
    static const int kOrder[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    const int nlen = bits(5) + 257, ndist = bits(5) + 1, ncode = bits(4) + 4;
    int lengths[320] = {0};
    for (int i = 0; i < ncode; ++i) lengths[kOrder[i]] = bits(3);
    const Huffman lencode = build(lengths, 19);
    int index = 0;
    while (index < nlen + ndist) {
      int sym = decode(lencode);
      if (sym < 16) {
        lengths[index++] = sym;
        continue;
      }
      int value = 0, repeat = 0;
      if (sym == 16) {
        if (index == 0) throw std::runtime_error("repeat with no previous length");
        value = lengths[index - 1];
        repeat = 3 + bits(2);
      } else if (sym == 17) {
        repeat = 3 + bits(3);
      } else {
        repeat = 11 + bits(7);
      }
      if (index + repeat > nlen + ndist) throw std::runtime_error("too many code lengths");
      while (repeat--) lengths[index++] = value;
    }
    codes(build(lengths, nlen), build(lengths + nlen, ndist));
  }

  const uint8_t* in_;
  size_t size_;
  size_t pos_ = 0;
  int bit_ = 0;
  std::vector<uint8_t> out_;
};

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
  const std::vector<uint8_t> raw =
      ZlibInflater(reinterpret_cast<const uint8_t*>(idat.data()), idat.size()).run();
  if (raw.size() != (stride + 1) * height) throw std::runtime_error(path + ": corrupt image data");

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
