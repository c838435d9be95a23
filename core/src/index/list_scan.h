// What the hand-written IVF searches (SearchHamming, SearchPq) share: the
// query vectors grouped by the inverted list they visit, so that each list
// is read once for all of them, and the k best neighbours kept per query.
#ifndef SPOOR_INDEX_LIST_SCAN_H_
#define SPOOR_INDEX_LIST_SCAN_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace spoor {

// Visits to inverted lists by list: visits[start[l], start[l + 1]) are the
// positions q * nprobe + p of a coarse assignment (n * nprobe list numbers,
// -1 for none) whose list is l.
struct ListVisits {
  std::vector<std::size_t> start;
  std::vector<std::int64_t> visits;
};

inline ListVisits GroupByList(const std::int64_t* coarse, std::int64_t n,
                              std::int64_t nprobe, std::size_t nlist) {
  ListVisits v;
  v.start.assign(nlist + 1, 0);
  const std::int64_t total = n * nprobe;
  for (std::int64_t i = 0; i < total; ++i)
    if (coarse[i] >= 0) ++v.start[coarse[i] + 1];
  for (std::size_t l = 0; l < nlist; ++l) v.start[l + 1] += v.start[l];
  v.visits.resize(v.start[nlist]);
  std::vector<std::size_t> next(v.start.begin(), v.start.end() - 1);
  for (std::int64_t i = 0; i < total; ++i)
    if (coarse[i] >= 0) v.visits[next[coarse[i]]++] = i;
  return v;
}

// The k smallest distances kept for one query, largest first at [0], in
// arrays the caller owns (k of each, the distances filled with a bound that
// nothing kept may reach, the ids with -1).
template <typename Distance>
struct KBest {
  Distance* dist;
  std::int64_t* id;
  int k;
  void Offer(Distance d, std::int64_t i) {
    if (!(d < dist[0])) return;
    // Insertion into a short array kept in descending order.
    int j = 0;
    while (j + 1 < k && dist[j + 1] > d) {
      dist[j] = dist[j + 1];
      id[j] = id[j + 1];
      ++j;
    }
    dist[j] = d;
    id[j] = i;
  }
};

// n queries' kept neighbours (KBest's arrays, n * k each) written out
// nearest first, as FAISS answers: float distances, and -1 ids with the
// largest float past the last found.
template <typename Distance>
void WriteAscending(std::int64_t n, int k, const Distance* best_dist,
                    const std::int64_t* best_id, float* distances,
                    std::int64_t* ids) {
  for (std::int64_t q = 0; q < n; ++q) {
    for (int j = 0; j < k; ++j) {
      const std::int64_t from = q * k + (k - 1 - j);
      const bool found = best_id[from] >= 0;
      distances[q * k + j] = found ? static_cast<float>(best_dist[from])
                                   : std::numeric_limits<float>::max();
      ids[q * k + j] = found ? best_id[from] : -1;
    }
  }
}

}  // namespace spoor

#endif  // SPOOR_INDEX_LIST_SCAN_H_
