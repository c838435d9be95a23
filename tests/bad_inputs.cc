#include "bad_inputs.h"

#include <random>

#include "test_util.h"

namespace spoor::testing {
namespace {

// A textured sRGB test picture (a gradient with a grid), built by libvips.
vips::VImage Picture(int width, int height) {
  vips::VImage xy = vips::VImage::xyz(width, height);
  vips::VImage r = (xy[0] * 255 / std::max(1, width - 1));
  vips::VImage g = (xy[1] * 255 / std::max(1, height - 1));
  vips::VImage b = ((xy[0] / 8 + xy[1] / 8) % 2) * 200;
  return r.bandjoin(g)
      .bandjoin(b)
      .cast(VIPS_FORMAT_UCHAR)
      .copy(vips::VImage::option()->set("interpretation",
                                        VIPS_INTERPRETATION_sRGB))
      .copy_memory();
}

std::vector<std::uint8_t> Half(std::vector<std::uint8_t> bytes) {
  bytes.resize(bytes.size() / 2);
  return bytes;
}

std::vector<std::uint8_t> Cat(std::vector<std::uint8_t> a,
                              const std::string& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::uint8_t> Text(const std::string& s) {
  return std::vector<std::uint8_t>(s.begin(), s.end());
}

// A JPEG with an extra APPn segment of `size` bytes after SOI.
std::vector<std::uint8_t> WithSegment(const std::vector<std::uint8_t>& jpeg,
                                      std::uint8_t marker,
                                      const std::string& tag, int size,
                                      std::uint32_t seed) {
  std::vector<std::uint8_t> payload(tag.begin(), tag.end());
  std::mt19937 rng(seed);
  while (static_cast<int>(payload.size()) < size)
    payload.push_back(static_cast<std::uint8_t>(rng()));
  int length = static_cast<int>(payload.size()) + 2;
  std::vector<std::uint8_t> out(jpeg.begin(), jpeg.begin() + 2);  // SOI
  out.insert(out.end(), {0xFF, marker, static_cast<std::uint8_t>(length >> 8),
                         static_cast<std::uint8_t>(length & 255)});
  out.insert(out.end(), payload.begin(), payload.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

}  // namespace

std::vector<std::uint8_t> VipsSave(const vips::VImage& image,
                                   const std::string& suffix) {
  void* buf = nullptr;
  size_t size = 0;
  image.write_to_buffer(suffix.c_str(), &buf, &size);
  std::vector<std::uint8_t> out(static_cast<std::uint8_t*>(buf),
                                static_cast<std::uint8_t*>(buf) + size);
  g_free(buf);
  return out;
}

std::vector<BadInput> BadInputs() {
  if (VIPS_INIT("spoor-tests")) return {};
  using C = absl::StatusCode;
  const vips::VImage picture = Picture(96, 64);
  const auto jpeg = VipsSave(picture, ".jpg");
  const auto png = VipsSave(picture, ".png");
  std::mt19937 rng(7);
  std::vector<std::uint8_t> random(4096);
  for (auto& b : random) b = static_cast<std::uint8_t>(rng());

  // The 30000x30000 fixture's signature and IHDR, then IEND at once: a
  // header that declares a bomb with no zlib stream behind it.
  auto bomb = ReadFile(FixturePath("bomb_30000x30000.png"));
  std::vector<std::uint8_t> bomb_no_zlib(bomb.begin(), bomb.begin() + 33);
  bomb_no_zlib.insert(bomb_no_zlib.end(),
                      {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82});

  // Two frames stacked, "page-height" set: an animated GIF.
  vips::VImage strip = picture.join(picture.flip(VIPS_DIRECTION_HORIZONTAL),
                                    VIPS_DIRECTION_VERTICAL);
  strip.set("page-height", 64);

  std::vector<std::uint8_t> png_as_jpeg = jpeg;  // PNG magic, JPEG body
  std::copy(png.begin(), png.begin() + 8, png_as_jpeg.begin());

  return {
      {"empty.jpg", {}, C::kInvalidArgument, "empty input"},
      {"one_byte.jpg", {0xFF}, C::kInvalidArgument, "not a recognised image"},
      {"random.bin", random, C::kInvalidArgument, "not a recognised image"},
      {"truncated.jpg", Half(jpeg), C::kInvalidArgument, "cannot decode jpeg"},
      {"truncated.png", Half(png), C::kInvalidArgument, "cannot decode png"},
      {"truncated.webp", Half(VipsSave(picture, ".webp")), C::kInvalidArgument,
       "cannot decode webp"},
      {"truncated.gif", Half(VipsSave(picture, ".gif")), C::kInvalidArgument,
       "cannot decode gif"},
      // Half a TIFF no longer sniffs as TIFF; only ImageMagick's catch-all
      // would take it.
      {"truncated.tif", Half(VipsSave(picture, ".tif")), C::kInvalidArgument,
       "not a recognised image format"},
      {"wrong_magic.png", png_as_jpeg, C::kInvalidArgument,
       "cannot decode png"},
      // No IDAT: libvips cannot even read the header, so the size check never
      // sees it; refused all the same, with a reason.
      {"bomb_header_only.png", bomb_no_zlib, C::kInvalidArgument,
       "cannot decode png: "},
      {"bomb.png", bomb, C::kInvalidArgument, "30000x30000"},
      {"one_pixel.png", VipsSave(Picture(1, 1), ".png"), C::kOk, ""},
      {"wide_100000x1.png", VipsSave(Picture(100000, 1), ".png"),
       C::kInvalidArgument, "100000x1"},
      {"tall_1x100000.png", VipsSave(Picture(1, 100000), ".png"),
       C::kInvalidArgument, "1x100000"},
      {"animated.gif", VipsSave(strip, ".gif"), C::kOk, ""},
      {"palette.png", VipsSave(picture, ".png[palette]"), C::kOk, ""},
      {"sixteen_bit.png",
       VipsSave(picture.cast(VIPS_FORMAT_USHORT) * 256, ".png"), C::kOk, ""},
      {"cmyk.jpg", VipsSave(picture.icc_transform("cmyk"), ".jpg"), C::kOk, ""},
      {"huge_exif.jpg",
       WithSegment(jpeg, 0xE1, std::string("Exif\0\0", 6), 60000, 1), C::kOk,
       ""},
      {"malformed_icc.jpg",
       WithSegment(jpeg, 0xE2, std::string("ICC_PROFILE\0\x01\x01", 14), 3000,
                   2),
       C::kOk, ""},
      {"jpeg_with_zip.jpg",
       Cat(jpeg, std::string("PK\x03\x04", 4) + std::string(2000, 'z')), C::kOk,
       ""},
      {"gif_html.gif", Text("GIF89a<html><script>alert(1)</script></html>"),
       C::kInvalidArgument, "cannot decode gif"},
      {"postscript.ps", Text("%!PS-Adobe-3.0\n/Times findfont\nshowpage\n"),
       C::kInvalidArgument, "only ImageMagick's catch-all loader"},
      {"svg.svg",
       Text("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" "
            "height=\"10\"><image href=\"file:///etc/passwd\"/></svg>"),
       C::kInvalidArgument, "unsupported image format 'svg'"},
      {"pdf.pdf", ReadFile(FixturePath("document.pdf")), C::kInvalidArgument,
       "unsupported image format 'pdf'"},
  };
}

}  // namespace spoor::testing
