// Fuzz target: the label manifest reader (CSV or JSON, chosen by the first
// byte) on hostile text. A refusal must be InvalidArgument (or NotFound)
// naming the problem; an accepted entry must name a file inside the folder.
#include <filesystem>
#include <string>

#include "fuzz_util.h"
#include "spoor/label_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using spoor::fuzz::Fail;
  static const std::string dir = spoor::fuzz::MakeTempDir("manifest");
  if (size < 1) return 0;
  const std::string path =
      dir + ((data[0] & 1) ? "/labels.json" : "/labels.csv");
  spoor::fuzz::WriteAll(path, data + 1, size - 1);
  auto entries = spoor::ReadLabelManifest(path);
  if (!entries.ok()) {
    auto code = entries.status().code();
    if (code != absl::StatusCode::kInvalidArgument &&
        code != absl::StatusCode::kNotFound &&
        code != absl::StatusCode::kResourceExhausted) {
      Fail("unexpected refusal: " + entries.status().ToString());
    }
    if (entries.status().message().empty()) Fail("refusal without a message");
    return 0;
  }
  for (const spoor::ManifestEntry& e : *entries) {
    std::filesystem::path p(e.file);
    if (e.file.empty() || p.is_absolute())
      Fail("accepted file '" + e.file + "'");
    for (const auto& part : p)
      if (part == "..") Fail("accepted a path outside the folder: " + e.file);
  }
  return 0;
}
