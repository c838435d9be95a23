// What the fuzz targets and their seed writer share: a small real index
// built from the bundled reference photos, the files of an index directory a
// target may replace, and the framing of multi-message inputs.
#ifndef SPOOR_TESTS_FUZZ_FUZZ_UTIL_H_
#define SPOOR_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "spoor/reference_index.h"

namespace spoor::fuzz {

// The bundled reference photos the template index holds.
inline constexpr const char* kTemplatePhotos[] = {"box.png", "graf1.jpg",
                                                  "elephant.jpg", "tiger.jpg"};

// The index files index_open_fuzzer may replace, numbered by the selector
// byte that opens each of its inputs.
inline constexpr const char* kIndexFiles[] = {
    "manifest.json", "hash.faissbin",    "descriptors.faiss",
    "global.faiss",  "vocabulary.faiss", "references.db"};
inline constexpr int kIndexFileCount = 6;

// Small working resolution, so a real photo costs milliseconds, not 100 ms.
IndexOptions TemplateOptions();

// Path of reference_images/references/NAME in the source tree.
std::string ReferencePhoto(const std::string& name);

// Builds the template index (kTemplatePhotos at TemplateOptions) into `dir`,
// saved, and closes it. Aborts with a message on failure: a target without
// its template would fuzz nothing.
void BuildTemplateIndex(const std::string& dir);

// A fresh directory under the system's temporary folder.
std::string MakeTempDir(const char* tag);

std::vector<std::uint8_t> ReadAll(const std::string& path);
void WriteAll(const std::string& path, const void* data, std::size_t size);

// A stream input is a sequence of messages, each a 2-byte little-endian
// length and that many bytes (a short last message takes what is left).
std::vector<std::string> SplitFrames(const std::uint8_t* data,
                                     std::size_t size);
std::string Frame(const std::string& message);

// Prints `what` and aborts, so libFuzzer records the input as a crash.
[[noreturn]] void Fail(const std::string& what);

}  // namespace spoor::fuzz

#endif  // SPOOR_TESTS_FUZZ_FUZZ_UTIL_H_
