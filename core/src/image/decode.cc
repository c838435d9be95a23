#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <string_view>
#include <vips/vips8>

#include "absl/strings/str_cat.h"
#include "spoor/image.h"

namespace spoor {
namespace {

// The loaders Spoor accepts. Anything else (svg, pdf, magick, matlab, ...)
// is refused: those can fetch external resources, run interpreters, or parse
// formats no photo arrives in. `class_name` is what
// vips_foreign_find_load_buffer returns; `nickname` the operation's name.
struct Loader {
  std::string_view class_name;
  std::string_view nickname;
  std::string_view format;
};
constexpr Loader kAllowedLoaders[] = {
    {"VipsForeignLoadJpegBuffer", "jpegload_buffer", "jpeg"},
    {"VipsForeignLoadPngBuffer", "pngload_buffer", "png"},
    {"VipsForeignLoadSpngBuffer", "pngload_buffer", "png"},
    {"VipsForeignLoadWebpBuffer", "webpload_buffer", "webp"},
    {"VipsForeignLoadNsgifBuffer", "gifload_buffer", "gif"},
    {"VipsForeignLoadGifBuffer", "gifload_buffer", "gif"},
    {"VipsForeignLoadTiffBuffer", "tiffload_buffer", "tiff"},
    {"VipsForeignLoadHeifBuffer", "heifload_buffer", "heif"},
};

void InitVipsOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("spoor") != 0) {
      // Without libvips nothing can be decoded; this is a broken install.
      vips_error_exit("spoor: libvips failed to initialise");
    }
    // Buffer loads are keyed by pointer in the operation cache; a reused
    // allocation could return stale pixels, and the cache only costs memory.
    vips_cache_set_max(0);
    vips_block_untrusted_set(TRUE);
    // The core never prints: libvips warnings (a damaged tile, say) would go
    // to stderr; the failure itself comes back as a status.
    g_log_set_handler(
        "VIPS",
        static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE),
        [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {}, nullptr);
  });
}

std::string TakeVipsError() {
  std::string message = vips_error_buffer();
  vips_error_clear();
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.pop_back();
  // libvips stacks several lines; the first says what went wrong.
  if (auto nl = message.find('\n'); nl != std::string::npos) message.resize(nl);
  return message;
}

// EXIF orientations 5..8 swap width and height.
bool SwapsAxes(const vips::VImage& header) {
  if (header.get_typeof(VIPS_META_ORIENTATION) == 0) return false;
  int orientation = header.get_int(VIPS_META_ORIENTATION);
  return orientation >= 5 && orientation <= 8;
}

}  // namespace

std::vector<std::string> SupportedFormats() {
  InitVipsOnce();
  std::vector<std::string> formats;
  for (const Loader& loader : kAllowedLoaders) {
    std::string format(loader.format);
    if (vips_type_find("VipsOperation", std::string(loader.nickname).c_str()) &&
        std::find(formats.begin(), formats.end(), format) == formats.end())
      formats.push_back(format);
  }
  return formats;
}

absl::StatusOr<Image> DecodeImage(std::span<const std::uint8_t> bytes,
                                  const DecodeOptions& options,
                                  const std::string& name) {
  InitVipsOnce();
  if (bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty input"));
  }
  if (static_cast<std::int64_t>(bytes.size()) > options.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(name, ": ", bytes.size(), " bytes exceeds the limit of ",
                     options.max_bytes, " bytes"));
  }
  const char* class_name =
      vips_foreign_find_load_buffer(bytes.data(), bytes.size());
  if (class_name == nullptr) {
    vips_error_clear();
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": not a recognised image format"));
  }
  const Loader* loader = nullptr;
  for (const Loader& candidate : kAllowedLoaders) {
    if (candidate.class_name == class_name) loader = &candidate;
  }
  if (loader == nullptr) {
    // "VipsForeignLoadSvgBuffer" -> "svg"
    std::string format(class_name);
    if (format.rfind("VipsForeignLoad", 0) == 0) format = format.substr(15);
    if (auto pos = format.find("Buffer"); pos != std::string::npos)
      format.resize(pos);
    for (char& c : format) c = static_cast<char>(std::tolower(c));
    // ImageMagick's loader claims almost anything (PostScript, truncated
    // TIFF, ...); it is never run, and its name would tell a client nothing.
    if (format == "magick") {
      return absl::InvalidArgumentError(absl::StrCat(
          name,
          ": not a recognised image format (only ImageMagick's catch-all "
          "loader claims it, and that loader is not allowed)"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": unsupported image format '", format, "'"));
  }

  try {
    // The header alone: libvips loads lazily, so no pixel is decoded here.
    vips::VImage header = vips::VImage::new_from_buffer(
        bytes.data(), bytes.size(), "",
        vips::VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL));
    std::int64_t width = header.width();
    std::int64_t height = header.height();
    if (width <= 0 || height <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": image has no pixels"));
    }
    // Too many pixels is a property of the image, not of the request's
    // size: InvalidArgument, so a caller can tell it from an oversized upload.
    if (width > options.max_dimension || height > options.max_dimension) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": ", width, "x", height, " exceeds the limit of ",
                       options.max_dimension, " pixels a side"));
    }
    if (width * height > options.max_pixels) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": ", width, "x", height, " is ", width * height,
                       " pixels, over the limit of ", options.max_pixels));
    }
    if (SwapsAxes(header)) std::swap(width, height);

    // Shrink-on-load to the working size, EXIF rotation applied; the loader
    // fails on truncated or corrupt data instead of padding with grey.
    // The blob borrows `bytes` (no free function): it lives for this call.
    VipsBlob* blob = vips_blob_new(nullptr, bytes.data(), bytes.size());
    struct BlobUnref {
      VipsBlob* blob;
      ~BlobUnref() { vips_area_unref(VIPS_AREA(blob)); }
    } unref{blob};
    vips::VImage image = vips::VImage::thumbnail_buffer(
        blob, options.max_side,
        vips::VImage::option()
            ->set("height", options.max_side)
            ->set("size", VIPS_SIZE_DOWN)
            ->set("option_string", "fail_on=truncated"));

    if (image.interpretation() == VIPS_INTERPRETATION_CMYK) {
      image = image.icc_import(vips::VImage::option()->set("embedded", true))
                  .colourspace(VIPS_INTERPRETATION_sRGB);
    }
    if (image.has_alpha()) {
      double white = (image.format() == VIPS_FORMAT_USHORT) ? 65535 : 255;
      image = image.flatten(vips::VImage::option()->set(
          "background", std::vector<double>{white}));
    }
    if (image.interpretation() != VIPS_INTERPRETATION_sRGB) {
      image = image.colourspace(VIPS_INTERPRETATION_sRGB);
    }
    if (image.format() != VIPS_FORMAT_UCHAR) {
      image = image.cast(VIPS_FORMAT_UCHAR);
    }
    if (image.bands() == 1) {
      image = image.bandjoin(std::vector<vips::VImage>{image, image});
    } else if (image.bands() > 3) {
      image = image.extract_band(0, vips::VImage::option()->set("n", 3));
    }
    if (image.bands() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": cannot normalise ", image.bands(), "-band image to RGB"));
    }

    size_t size = 0;
    void* memory = image.write_to_memory(&size);
    Image out;
    out.width = image.width();
    out.height = image.height();
    out.original_width = static_cast<int>(width);
    out.original_height = static_cast<int>(height);
    out.format = std::string(loader->format);
    out.bgr.resize(size);
    const auto* rgb = static_cast<const std::uint8_t*>(memory);
    for (size_t i = 0; i + 2 < size; i += 3) {
      out.bgr[i] = rgb[i + 2];
      out.bgr[i + 1] = rgb[i + 1];
      out.bgr[i + 2] = rgb[i];
    }
    g_free(memory);
    if (out.bgr.size() != static_cast<size_t>(out.width) * out.height * 3) {
      return absl::InternalError(
          absl::StrCat(name, ": unexpected buffer size"));
    }
    return out;
  } catch (const vips::VError& e) {
    std::string reason = TakeVipsError();
    if (reason.empty()) reason = e.what();
    while (!reason.empty() &&
           std::isspace(static_cast<unsigned char>(reason.back())))
      reason.pop_back();
    if (reason.empty()) reason = "malformed or truncated data";
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": cannot decode ", std::string(loader->format), ": ", reason));
  }
}

absl::StatusOr<std::vector<std::uint8_t>> ReadFileBytes(
    const std::string& path, std::int64_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::int64_t size = in.tellg();
  if (size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  if (size > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        path, ": ", size, " bytes exceeds the limit of ", max_bytes, " bytes"));
  }
  std::vector<std::uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    return absl::DataLossError(absl::StrCat(path, ": read failed"));
  }
  return bytes;
}

absl::StatusOr<Image> DecodeImageFile(const std::string& path,
                                      const DecodeOptions& options) {
  auto bytes = ReadFileBytes(path, options.max_bytes);
  if (!bytes.ok()) return bytes.status();
  return DecodeImage(*bytes, options, path);
}

}  // namespace spoor
