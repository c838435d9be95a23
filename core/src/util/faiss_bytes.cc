#include "util/faiss_bytes.h"

#include <faiss/Index.h>
#include <faiss/IndexBinary.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <exception>

#include "absl/strings/str_cat.h"

namespace spoor {
namespace {

template <typename Write>
absl::StatusOr<std::vector<std::uint8_t>> Serialize(absl::string_view what,
                                                    Write write) {
  try {
    faiss::VectorIOWriter writer;
    write(&writer);
    return std::move(writer.data);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": out of memory while serialising"));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(what, ": serialising failed: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<std::vector<std::uint8_t>> SerializeFaiss(
    const faiss::Index& index, absl::string_view what) {
  return Serialize(what,
                   [&](faiss::IOWriter* w) { faiss::write_index(&index, w); });
}

absl::StatusOr<std::vector<std::uint8_t>> SerializeFaiss(
    const faiss::IndexBinary& index, absl::string_view what) {
  return Serialize(
      what, [&](faiss::IOWriter* w) { faiss::write_index_binary(&index, w); });
}

}  // namespace spoor
