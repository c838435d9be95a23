#include "index/vector_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFSpectralHash.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "index/hamming_search.h"
#include "index/pq_search.h"
#include "util/atomic_file.h"
#include "util/blas_threads.h"
#include "util/faiss_bytes.h"
#include "util/status_macros.h"

namespace spoor {

using idx_t = faiss::Index::idx_t;

namespace {

// Process-wide FAISS settings, applied once.
//
// FAISS already spreads a search over the cores with OpenMP; OpenBLAS, which
// Debian's FAISS calls for large distance products, would start a thread per
// core of its own on top, and the two pools then fight for the same cores
// (measured: 15 % fewer queries per second on 2 cores). Looked up at run
// time so that any other BLAS works unchanged.
//
// Exact search of fewer than 20 queries scans the whole index once per query;
// a query's 14 VLAD regions then read a large global tier 14 times over.
// From 8 queries on, FAISS computes the distances as one matrix product,
// which reads it once (measured: 558 ms down to 189 ms a query at 100k
// vectors).
void TuneFaissOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    faiss::distance_compute_blas_threshold = 8;
    SetBlasThreads(1);
  });
}

// Searches, adds and removals run on the calling thread alone
// (FaissOnThisThread): the callers answer one query per core already, and
// the indexer describes images on the other cores while one thread adds.
//
// Training (k-means over tens of thousands of vectors) is one large batch
// that runs under the index's writer lock, when no search is running: it
// may use every core.
class AllCoresForBlas {
 public:
  AllCoresForBlas() {
    SetBlasThreads(
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
  ~AllCoresForBlas() { SetBlasThreads(1); }
};

// An exact index with ids: the stand-in for one that awaits training.
std::unique_ptr<faiss::Index> ExactIndex(int dim) {
  auto map = std::make_unique<faiss::IndexIDMap>(new faiss::IndexFlatL2(dim));
  map->own_fields = true;
  return map;
}

// The index inside an IndexIDMap, and inside a PreTransform.
faiss::Index* Inner(const faiss::Index& index) {
  auto* inner = const_cast<faiss::Index*>(&index);
  if (auto* map = dynamic_cast<faiss::IndexIDMap*>(inner)) inner = map->index;
  if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(inner))
    inner = pre->index;
  return inner;
}

// The IVF index inside `index`, or null.
faiss::IndexIVF* IvfIn(const faiss::Index& index) {
  return faiss::ivflib::try_extract_index_ivf(Inner(index));
}

// An IVF index keeps the ids it is given in its lists; every other type is
// wrapped in an IndexIDMap. An IVF index must not be: IndexIDMap numbers
// its inner vectors by position and renumbers them after a removal, which
// IVF lists do not, so a second removal failed FAISS's assertion and aborted
// the process (found by tests/python/test_load.py).
bool KeepsIds(const faiss::Index& index) { return IvfIn(index) != nullptr; }

// Hamming embedding with per-list medians needs one threshold per list and
// bit, but FAISS 1.7.3 sizes the array by the training vectors instead and
// saves it whole: 7.7 MB of zeros past the used part after training on 30k
// descriptors, 85 KB a reference at 103 references. Only the first
// nlist * nbit are ever read.
void DropUnusedThresholds(faiss::Index& index) {
  auto* sh = dynamic_cast<faiss::IndexIVFSpectralHash*>(IvfIn(index));
  if (sh == nullptr || sh->threshold_type == sh->Thresh_global) return;
  const std::size_t used = sh->nlist * static_cast<std::size_t>(sh->nbit);
  if (sh->trained.size() > used) {
    sh->trained.resize(used);
    sh->trained.shrink_to_fit();
  }
}

// The exact index inside `index` (an IndexIDMap over IndexFlatL2: the
// stand-in, or the "Flat" factory), or null.
const faiss::IndexIDMap* ExactIn(const faiss::Index& index) {
  const auto* map = dynamic_cast<const faiss::IndexIDMap*>(&index);
  if (map == nullptr) return nullptr;
  const auto* flat = dynamic_cast<const faiss::IndexFlatL2*>(map->index);
  return flat != nullptr ? map : nullptr;
}

// Squared norms of vectors [from, ntotal) of `map`'s flat index, in place
// of what `norms` held from `from` on; FAISS's own function, so that the
// distances are the ones its search gives.
void SetNorms(const faiss::IndexIDMap& map, std::int64_t from,
              std::vector<float>& norms) {
  const auto& flat = static_cast<const faiss::IndexFlat&>(*map.index);
  from = std::clamp<std::int64_t>(from, 0, flat.ntotal);
  norms.resize(static_cast<std::size_t>(flat.ntotal));
  faiss::fvec_norms_L2sqr(norms.data() + from, flat.get_xb() + from * flat.d,
                          flat.d, flat.ntotal - from);
}

}  // namespace

VectorIndex::VectorIndex(std::unique_ptr<faiss::Index> index,
                         std::unique_ptr<faiss::Index> exact, int dim,
                         std::string factory, std::string what)
    : index_(std::move(index)),
      exact_(std::move(exact)),
      dim_(dim),
      factory_(std::move(factory)),
      what_(std::move(what)) {
  if (const faiss::IndexIDMap* map = ExactIn(active()))
    SetNorms(*map, 0, exact_norms_);
}
VectorIndex::~VectorIndex() = default;

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Create(
    int dim, const std::string& factory, const std::string& what) {
  TuneFaissOnce();
  try {
    auto* inner = faiss::index_factory(dim, factory.c_str());
    // Polysemous training reorders PQ codes by simulated annealing so that
    // Hamming distances approximate real ones; Spoor never filters by
    // Hamming distance, and the annealing took over 10 minutes for PQ128.
    faiss::Index* base = inner;
    if (auto* pre = dynamic_cast<faiss::IndexPreTransform*>(base))
      base = pre->index;
    if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(base))
      ivfpq->do_polysemous_training = false;
    if (auto* pq = dynamic_cast<faiss::IndexPQ*>(base))
      pq->do_polysemous_training = false;
    std::unique_ptr<faiss::Index> index(inner);
    if (!KeepsIds(*index)) {
      auto map = std::make_unique<faiss::IndexIDMap>(index.release());
      map->own_fields = true;
      index = std::move(map);
    }
    std::unique_ptr<faiss::Index> exact;
    if (!index->is_trained) exact = ExactIndex(dim);
    return std::unique_ptr<VectorIndex>(new VectorIndex(
        std::move(index), std::move(exact), dim, factory, what));
  } catch (const std::exception& e) {  // FaissException, bad_alloc
    return absl::InvalidArgumentError(absl::StrCat(
        what, " factory '", factory, "' is not valid: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Read(
    const std::string& path, int dim, const std::string& factory,
    const std::string& what) {
  TuneFaissOnce();
  try {
    std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
    // Ids in an IndexIDMap, or kept by an IVF index itself; an IVF index
    // in an IndexIDMap (written before that mattered) is refused, and the
    // caller rebuilds it from the database.
    const bool mapped = dynamic_cast<faiss::IndexIDMap*>(loaded.get());
    if (loaded->d != dim || mapped == KeepsIds(*loaded)) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": dimension ", loaded->d, " or layout does not match ", dim,
          "-d vectors with ids"));
    }
    // An exact index for a factory that must be trained is its stand-in.
    std::unique_ptr<faiss::Index> exact;
    if (dynamic_cast<faiss::IndexFlat*>(Inner(*loaded)) != nullptr) {
      SPOOR_ASSIGN_OR_RETURN(auto fresh, Create(dim, factory, what));
      if (fresh->exact_) {
        exact = std::move(loaded);
        loaded = std::move(fresh->index_);
      }
    }
    if (!exact && !loaded->is_trained) exact = ExactIndex(dim);
    return std::unique_ptr<VectorIndex>(new VectorIndex(
        std::move(loaded), std::move(exact), dim, factory, what));
  } catch (const std::exception& e) {  // FaissException, bad_alloc
    return absl::DataLossError(
        absl::StrCat(path, ": cannot read ", what, ": ", e.what()));
  }
}

bool VectorIndex::needs_training() const { return !index_->is_trained; }

// FAISS trains an IVF index on as few vectors as it has lists, but lists
// learnt from a handful of references sort the next thousands badly; the
// exact stand-in serves until there are enough.
std::int64_t VectorIndex::MinTraining() const {
  const faiss::IndexIVF* ivf = IvfIn(*index_);
  return ivf ? kMinTrainingPerList * static_cast<std::int64_t>(ivf->nlist) : 1;
}

bool VectorIndex::ReadyToTrain() const {
  return needs_training() && size() >= MinTraining();
}

absl::Status VectorIndex::Train(std::int64_t n, const float* x) {
  if (index_->is_trained) return absl::OkStatus();
  if (n < MinTraining()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot train ", what_, " '", factory_, "' on ", n,
                     " vectors: it needs ", MinTraining()));
  }
  AllCoresForBlas all_cores;
  try {
    index_->train(n, x);
    DropUnusedThresholds(*index_);
    if (exact_ && exact_->ntotal > 0) {
      // The stand-in's vectors move in, with their ids.
      auto& map = static_cast<faiss::IndexIDMap&>(*exact_);
      const auto& flat = static_cast<const faiss::IndexFlat&>(*map.index);
      index_->add_with_ids(map.ntotal, flat.get_xb(), map.id_map.data());
    }
    exact_.reset();
    exact_norms_.clear();
    return absl::OkStatus();
  } catch (const std::exception& e) {  // FaissException, bad_alloc
    return absl::FailedPreconditionError(
        absl::StrCat("cannot train ", what_, " '", factory_, "' on ", n,
                     " vectors: ", e.what()));
  }
}

void VectorIndex::SetSearchBreadth(int breadth) {
  if (faiss::IndexIVF* ivf = IvfIn(*index_)) {
    ivf->nprobe = std::max(1, breadth);
  } else if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(Inner(*index_))) {
    hnsw->hnsw.efSearch = std::max(16, breadth);
  }
}

absl::Status VectorIndex::Add(std::int64_t n, const float* x,
                              const std::int64_t* ids) {
  if (n == 0) return absl::OkStatus();
  static_assert(sizeof(idx_t) == sizeof(std::int64_t));
  FaissOnThisThread one_thread;
  try {
    const idx_t before = active().ntotal;
    active().add_with_ids(n, x, reinterpret_cast<const idx_t*>(ids));
    if (const faiss::IndexIDMap* map = ExactIn(active()))
      SetNorms(*map, before, exact_norms_);
    return absl::OkStatus();
  } catch (const std::exception& e) {  // FaissException, bad_alloc
    return absl::InternalError(absl::StrCat(what_, " add: ", e.what()));
  }
}

absl::Status VectorIndex::RemoveRange(std::int64_t first, std::int64_t last) {
  FaissOnThisThread one_thread;
  try {
    faiss::IDSelectorRange selector(first, last);
    active().remove_ids(selector);
    if (const faiss::IndexIDMap* map = ExactIn(active()))
      SetNorms(*map, 0, exact_norms_);  // the survivors moved up
    return absl::OkStatus();
  } catch (const std::exception& e) {  // FaissException, bad_alloc
    return absl::UnimplementedError(
        absl::StrCat(what_, " '", factory_, "' cannot remove: ", e.what()));
  }
}

std::int64_t VectorIndex::size() const { return active().ntotal; }

int VectorIndex::signature_bits() const {
  const auto* sh =
      dynamic_cast<const faiss::IndexIVFSpectralHash*>(IvfIn(active()));
  return sh ? sh->nbit : 0;
}

VectorIndex::Neighbours VectorIndex::Search(std::int64_t n, const float* x,
                                            int k, float max_distance) const {
  Neighbours out;
  const faiss::Index& index = active();
  if (n == 0 || index.ntotal == 0) return out;
  out.k = static_cast<int>(std::min<idx_t>(std::max(1, k), index.ntotal));
  out.distances.resize(n * out.k);
  out.ids.resize(n * out.k);
  FaissOnThisThread one_thread;
  const auto* sh =
      dynamic_cast<const faiss::IndexIVFSpectralHash*>(IvfIn(index));
  if (sh != nullptr && CanSearchHamming(*sh)) {
    const int max_bits = static_cast<int>(
        std::floor(std::min(max_distance, static_cast<float>(sh->nbit))));
    SearchHamming(*sh, n, x, out.k, max_bits, out.distances.data(),
                  out.ids.data());
    return out;
  }
  const auto* pq = dynamic_cast<const faiss::IndexIVFPQ*>(IvfIn(index));
  if (pq != nullptr && CanSearchPq(*pq)) {
    SearchPq(*pq, n, x, out.k, out.distances.data(), out.ids.data());
  } else if (const faiss::IndexIDMap* map = ExactIn(index)) {
    // FAISS's own exact search computes every stored vector's norm again
    // for each call (1.7.3, in portable code): 5.6M multiplications a query
    // for a global tier of 1,100 references. They are kept instead.
    const auto& flat = static_cast<const faiss::IndexFlat&>(*map->index);
    faiss::knn_L2sqr(x, flat.get_xb(), dim_, n, flat.ntotal, out.k,
                     out.distances.data(), out.ids.data(), exact_norms_.data());
    for (std::int64_t& id : out.ids)
      if (id >= 0) id = map->id_map[id];
  } else {
    index.search(n, x, out.k, out.distances.data(),
                 reinterpret_cast<idx_t*>(out.ids.data()));
  }
  for (std::size_t i = 0; i < out.ids.size(); ++i) {
    if (out.distances[i] > max_distance) {
      out.ids[i] = -1;
      out.distances[i] = std::numeric_limits<float>::max();
    }
  }
  return out;
}

absl::Status VectorIndex::Write(const std::string& path) const {
  SPOOR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, Serialize());
  return WriteBytesAtomically(path, bytes);
}

absl::StatusOr<std::vector<std::uint8_t>> VectorIndex::Serialize() const {
  return SerializeFaiss(active(), what_);
}

}  // namespace spoor
