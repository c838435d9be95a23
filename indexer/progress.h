// A one-line progress bar with rate and ETA on stderr, redrawn at most every
// 100 ms; on a non-terminal it prints a plain line every 10%.
#ifndef SPOOR_INDEXER_PROGRESS_H_
#define SPOOR_INDEXER_PROGRESS_H_

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace spoor::indexer {

class Progress {
 public:
  Progress(std::string label, long total)
      : label_(std::move(label)),
        total_(total),
        tty_(isatty(2)),
        start_(Clock::now()),
        last_draw_(start_) {}

  void Update(long done) {
    auto now = Clock::now();
    bool last = done >= total_;
    if (tty_) {
      if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
    } else {
      long decile = total_ > 0 ? done * 10 / total_ : 10;
      if (!last && decile == last_decile_) return;
      last_decile_ = decile;
    }
    last_draw_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? done / secs : 0;
    double eta = rate > 0 ? (total_ - done) / rate : 0;
    int width = 30;
    int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "%s%s [%s] %ld/%ld  %.1f img/s  ETA %.0fs%s",
                 tty_ ? "\r" : "", label_.c_str(), bar.c_str(), done, total_,
                 rate, eta, tty_ ? (last ? "\n" : "") : "\n");
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  long total_;
  bool tty_;
  Clock::time_point start_, last_draw_;
  long last_decile_ = -1;
};

}  // namespace spoor::indexer

#endif  // SPOOR_INDEXER_PROGRESS_H_
