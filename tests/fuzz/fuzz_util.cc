#include "fuzz_util.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace spoor::fuzz {

namespace fs = std::filesystem;

IndexOptions TemplateOptions() {
  IndexOptions o;
  o.decode.max_side = 320;
  o.features.max_features = 300;
  o.features.min_side = 240;
  return o;
}

std::string ReferencePhoto(const std::string& name) {
  return (fs::path(SPOOR_SOURCE_DIR) / "reference_images" / "references" / name)
      .string();
}

void BuildTemplateIndex(const std::string& dir) {
  auto index = ReferenceIndex::Create(dir, TemplateOptions());
  if (!index.ok()) Fail("template index: " + index.status().ToString());
  for (const char* photo : kTemplatePhotos) {
    auto added = (*index)->Add(ReadAll(ReferencePhoto(photo)), photo, {});
    if (!added.ok())
      Fail(std::string(photo) + ": " + added.status().ToString());
  }
  if (auto saved = (*index)->Save(); !saved.ok())
    Fail("template index: " + saved.ToString());
}

std::string MakeTempDir(const char* tag) {
  std::string pattern = (fs::temp_directory_path() /
                         (std::string("spoor-fuzz-") + tag + "-XXXXXX"))
                            .string();
  if (mkdtemp(pattern.data()) == nullptr) Fail("mkdtemp " + pattern);
  return pattern;
}

std::vector<std::uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteAll(const std::string& path, const void* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) Fail("cannot write " + path);
}

std::vector<std::string> SplitFrames(const std::uint8_t* data,
                                     std::size_t size) {
  std::vector<std::string> frames;
  std::size_t at = 0;
  while (at + 2 <= size) {
    std::size_t n = data[at] | (std::size_t{data[at + 1]} << 8);
    at += 2;
    n = std::min(n, size - at);
    frames.emplace_back(reinterpret_cast<const char*>(data + at), n);
    at += n;
  }
  return frames;
}

std::string Frame(const std::string& message) {
  std::size_t n = std::min<std::size_t>(message.size(), 0xffff);
  std::string out;
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>(n >> 8));
  out.append(message, 0, n);
  return out;
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz check failed: %s\n", what.c_str());
  std::fflush(stderr);
  abort();
}

}  // namespace spoor::fuzz
