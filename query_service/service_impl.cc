#include "query_service/service_impl.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "query_service/convert.h"

namespace spoor::service {
namespace {

// Client text for the log: quoted, control and non-ASCII bytes escaped and
// long values cut, so a caller cannot forge log lines or flood the log.
std::string Quoted(absl::string_view text) {
  constexpr std::size_t kMost = 200;
  std::string out = absl::StrCat(
      "\"", absl::CHexEscape(text.substr(0, std::min(text.size(), kMost))),
      "\"");
  if (text.size() > kMost) absl::StrAppend(&out, "...");
  return out;
}

using Clock = std::chrono::steady_clock;

constexpr int kDefaultMaxResults = 5;
constexpr int kMaxMaxResults = 100;
constexpr int kDefaultPageSize = 50;
// Earlier sightings in one Match answer, strongest first.
constexpr int kMaxEarlierSightings = 20;
// Longest side of the thumbnails kept where a platform's policy allows.
constexpr int kThumbnailSide = 320;
constexpr int kMaxPageSize = 1000;

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK:
      return "OK";
    case grpc::CANCELLED:
      return "CANCELLED";
    case grpc::UNKNOWN:
      return "UNKNOWN";
    case grpc::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::ABORTED:
      return "ABORTED";
    case grpc::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::INTERNAL:
      return "INTERNAL";
    case grpc::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "OTHER";
  }
}

std::string Metadata(const grpc::ServerContext* ctx, const std::string& key) {
  auto range = ctx->client_metadata().equal_range(key);
  if (range.first == range.second) return "";
  return std::string(range.first->second.data(), range.first->second.size());
}

absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0)
    return absl::InvalidArgumentError("page_size must not be negative");
  return requested == 0 ? kDefaultPageSize : std::min(requested, kMaxPageSize);
}

// The id after which a page starts: 0 for the first page.
absl::StatusOr<std::int64_t> PageStart(const std::string& token,
                                       const std::string& collection) {
  if (token.empty()) return 0;
  auto id = ParseName(token, collection);
  if (!id.ok()) return absl::InvalidArgumentError("page_token is not valid");
  return *id;
}

absl::StatusOr<double> MinScore(bool has, double value) {
  if (!has) return kDefaultMinScore;
  if (!(value >= 0 && value <= 1))
    return absl::InvalidArgumentError("min_score must be in [0, 1]");
  return value;
}

absl::Status NeedSeller(const std::string& platform, const std::string& id) {
  if (platform.empty())
    return absl::InvalidArgumentError("platform is required");
  if (id.empty()) return absl::InvalidArgumentError("seller_id is required");
  return absl::OkStatus();
}

}  // namespace

// The state one pool job shares between the handler that waits for it and
// the worker that runs it; either may finish first.
template <typename T>
struct SpoorService::PoolJob {
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  std::atomic<bool> abandoned{false};
  absl::StatusOr<T> result = absl::UnknownError("not run");
  Clock::time_point queued = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
  double queue_ms = 0;

  bool ShouldStop() const {
    return abandoned.load() || Clock::now() > deadline;
  }
  // On the worker, first thing.
  void Started() {
    queue_ms = std::chrono::duration<double, std::milli>(Clock::now() - queued)
                   .count();
  }
  void Finish(absl::StatusOr<T> r) {
    std::lock_guard lock(mu);
    result = std::move(r);
    done = true;
    done_cv.notify_all();
  }
  // On the handler: waits for the worker, the deadline or the client's
  // cancellation, whichever comes first; the job is abandoned in the last
  // two cases, and the worker stops at its next check.
  absl::Status Wait(grpc::ServerContext* ctx, const char* late_message) {
    std::unique_lock lock(mu);
    while (!done) {
      // Wake up now and then to notice a cancelled call.
      auto until =
          std::min(deadline, Clock::now() + std::chrono::milliseconds(50));
      done_cv.wait_until(lock, until);
      if (done) break;
      // An expiring deadline also cancels the call, and the client's timer
      // may fire a moment before ours: a cancellation that close to the
      // deadline is the deadline.
      auto now = Clock::now();
      bool cancelled = ctx->IsCancelled();
      if (now >= deadline ||
          (cancelled && now + std::chrono::milliseconds(50) >= deadline)) {
        abandoned = true;
        return absl::DeadlineExceededError(late_message);
      }
      if (cancelled) {
        abandoned = true;
        return absl::CancelledError("call cancelled by the client");
      }
    }
    return result.status();
  }
};

struct SpoorService::Call {
  std::string request_id;
  std::string principal;    // key name, or "-" without authentication
  std::vector<Role> roles;  // the key's; empty without authentication
  std::string target;       // what the call acted on, for the audit log
  Clock::time_point deadline;
};

template <typename Body>
grpc::Status SpoorService::Handle(grpc::ServerContext* ctx, const char* rpc,
                                  std::initializer_list<Role> roles,
                                  Body&& body) {
  auto start = Clock::now();
  Call call;
  // A caller's own request id is kept when it is short and plain, so it
  // cannot forge log lines.
  std::string given = Metadata(ctx, "x-request-id");
  bool plain =
      !given.empty() && given.size() <= 64 &&
      given.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyz"
          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == std::string::npos;
  call.request_id = plain ? given : absl::StrCat("r", next_request_++);
  call.principal = "-";
  // The client's deadline, moved onto the steady clock.
  auto remaining = ctx->deadline() - std::chrono::system_clock::now();
  call.deadline =
      remaining > std::chrono::hours(24 * 365)
          ? Clock::time_point::max()
          : start + std::chrono::duration_cast<Clock::duration>(remaining);

  absl::Status status;
  if (auto keys = state_.Keys()) {
    auto principal = keys->Authenticate(Metadata(ctx, "authorization"));
    if (!principal.ok()) {
      status = principal.status();
    } else {
      call.principal = principal->name;
      call.roles = principal->roles;
      bool allowed = false;
      for (Role r : roles) allowed |= principal->Has(r);
      if (!allowed) {
        std::string needed;
        for (Role r : roles)
          absl::StrAppend(&needed, needed.empty() ? "" : " or ", RoleName(r));
        status = absl::PermissionDeniedError(
            absl::StrCat("key '", principal->name, "' lacks the role ", needed,
                         " needed for ", rpc));
      } else if (!state_.limiter.TryAcquire(principal->name,
                                            principal->requests_per_second,
                                            principal->burst)) {
        status = absl::ResourceExhaustedError(
            absl::StrCat("rate limit: key '", principal->name, "' is over its ",
                         principal->requests_per_second,
                         " requests per second; retry with backoff"));
      }
    }
  }
  if (status.ok()) {
    try {
      status = body(call);
    } catch (const std::exception& e) {
      status =
          absl::InternalError(absl::StrCat("uncaught exception: ", e.what()));
    } catch (...) {
      status = absl::InternalError("uncaught exception");
    }
  }
  grpc::Status out = ToGrpcStatus(status, call.request_id);
  Audit(rpc, call, out);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  state_.metrics.Record(rpc, CodeName(out.error_code()), seconds);
  if (out.ok()) {
    state_.log->info("{} {} key={} OK {:.1f}ms", call.request_id, rpc,
                     call.principal, seconds * 1000);
  } else {
    state_.log->warn("{} {} key={} {} {:.1f}ms: {}", call.request_id, rpc,
                     call.principal, CodeName(out.error_code()), seconds * 1000,
                     Quoted(status.message()));
  }
  return out;
}

void SpoorService::Audit(const char* rpc, const Call& call,
                         const grpc::Status& out) {
  if (!state_.audit) return;
  std::string roles;
  bool audited = false;
  for (Role r : call.roles) {
    absl::StrAppend(&roles, roles.empty() ? "" : ",", RoleName(r));
    audited |= r == Role::kCurator || r == Role::kInvestigator;
  }
  if (!audited) return;
  auto s = state_.audit->Append({call.request_id, call.principal, roles, rpc,
                                 call.target, CodeName(out.error_code())});
  if (!s.ok()) {
    state_.log->critical("{} not in the audit log: {}", call.request_id,
                         std::string(s.message()));
  }
}

absl::Status SpoorService::RequireIndex() const {
  if (state_.index) return absl::OkStatus();
  // The reason (with server paths) is in the log from the start; the client
  // only needs to know there is no index.
  return absl::FailedPreconditionError(
      "no index loaded; the service's log says why");
}

absl::Status SpoorService::RequireSightings() const {
  if (auto s = RequireIndex(); !s.ok()) return s;
  if (state_.sightings) return absl::OkStatus();
  return absl::FailedPreconditionError("no sighting log open");
}

absl::StatusOr<SpoorService::Started> SpoorService::StartMatch(
    const v1::MatchRequest& request, const Call& call, bool wait_for_room) {
  if (auto s = RequireIndex(); !s.ok()) return s;
  if (request.image().empty()) {
    return absl::InvalidArgumentError("image is empty");
  }
  const v1::MatchOptions& o = request.options();
  if (o.max_results() < 0 || o.max_results() > kMaxMaxResults) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.max_results must be in 0..", kMaxMaxResults));
  }
  if (o.has_min_score() && !(o.min_score() >= 0 && o.min_score() <= 1)) {
    return absl::InvalidArgumentError("options.min_score must be in [0, 1]");
  }
  const v1::AdContext& pad = request.ad();
  std::optional<AdContext> ad;
  if (!pad.platform().empty() || !pad.ad_id().empty() ||
      !pad.seller_id().empty()) {
    auto parsed = FromProto(pad);
    if (!parsed.ok()) return parsed.status();
    ad = std::move(*parsed);
    state_.log->debug("{} ad platform={} ad_id={} seller_id={}",
                      call.request_id, Quoted(ad->platform), Quoted(ad->ad_id),
                      Quoted(ad->seller_id));
  }
  MatchOptions options;
  int wanted = o.max_results() > 0 ? o.max_results() : kDefaultMaxResults;
  // Earlier sightings take their own share of the matcher's results.
  options.max_results = wanted + kMaxEarlierSightings;
  if (o.has_min_score()) options.min_score = o.min_score();
  for (const std::string& bank : o.banks()) {
    if (auto s = ValidateBankName(bank, /*allow_sightings=*/true); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.banks: ", s.message()));
    }
    options.banks.push_back(bank);
  }
  bool search_sightings = options.banks.empty() ||
                          std::find(options.banks.begin(), options.banks.end(),
                                    kSightingsBank) != options.banks.end();
  bool record = ad && state_.record_sightings && state_.sightings;
  options.keep_query = record;
  options.read_text = record && state_.read_sighting_text;
  if (record) {
    const auto& allowed = state_.thumbnail_platforms;
    if (std::find(allowed.begin(), allowed.end(), "*") != allowed.end() ||
        std::find(allowed.begin(), allowed.end(), ad->platform) !=
            allowed.end())
      options.thumbnail_side = kThumbnailSide;
  }

  auto job = std::make_shared<MatchJob>();
  job->deadline = call.deadline;
  options.should_stop = [job] { return job->ShouldStop(); };
  // The job owns a copy of the bytes: the handler may return (deadline,
  // cancellation) while the worker still runs.
  auto work = [this, job, options, ad, record, search_sightings, wanted,
               bytes = request.image()] {
    job->Started();
    absl::StatusOr<MatchOutcome> outcome =
        absl::DeadlineExceededError("deadline passed while queued");
    if (!job->ShouldStop()) {
      // The core returns statuses; this catch only keeps a bug in it from
      // leaving the call waiting for its deadline.
      try {
        outcome =
            RunMatch(bytes, options, ad, record, search_sightings, wanted);
      } catch (const std::exception& e) {
        outcome = absl::InternalError(absl::StrCat("match failed: ", e.what()));
      }
    }
    job->Finish(std::move(outcome));
  };
  bool queued = wait_for_room ? state_.pool->Submit(std::move(work))
                              : state_.pool->TrySubmit(std::move(work));
  if (!queued) {
    return absl::ResourceExhaustedError(
        absl::StrCat("overloaded: ", state_.pool->queue_depth(),
                     " match jobs already queued; retry with backoff"));
  }
  return Started{job, o.include_evidence(),
                 static_cast<std::int64_t>(request.image().size())};
}

absl::StatusOr<SpoorService::MatchOutcome> SpoorService::RunMatch(
    const std::string& bytes, const MatchOptions& options,
    const std::optional<AdContext>& ad, bool record, bool search_sightings,
    int wanted) {
  std::span span(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                 bytes.size());
  auto result = state_.matcher->Match(span, options, "image");
  if (!result.ok()) return result.status();
  MatchOutcome out;
  if (record) {
    auto recorded =
        state_.sightings->Record(*ad, Sha256Hex(span.data(), span.size()),
                                 static_cast<std::int64_t>(span.size()),
                                 *result, UtcText(std::time(nullptr)));
    // Not kept is not acknowledged: the platform retries (Record is
    // idempotent).
    if (!recorded.ok()) return recorded.status();
    out.sighting_id = recorded->sighting.id;
    out.earlier = std::move(recorded->earlier);
  } else if (search_sightings && state_.sightings) {
    // Nothing recorded: the earlier sightings of each matched ad image.
    for (const spoor::Match& m : result->matches) {
      if (m.reference.bank != kSightingsBank || m.verdict == Verdict::kNoMatch)
        continue;
      auto shown = state_.sightings->ForReference(m.reference.id);
      if (!shown.ok()) return shown.status();
      for (Sighting& s : *shown) {
        if (s.image_id != m.reference.id) continue;
        if (ad && s.ad.platform == ad->platform && s.ad.ad_id == ad->ad_id)
          continue;
        Link l;
        l.older_id = s.id;
        l.score = m.score;
        l.verdict = m.verdict;
        l.inliers = m.inliers;
        l.newer_box = m.query_box;
        l.older_box = m.ref_box;
        out.earlier.push_back({std::move(l), std::move(s)});
      }
    }
  }
  std::stable_sort(out.earlier.begin(), out.earlier.end(),
                   [](const Recorded::Earlier& a, const Recorded::Earlier& b) {
                     return a.link.score > b.link.score;
                   });
  if (out.earlier.size() > kMaxEarlierSightings)
    out.earlier.resize(kMaxEarlierSightings);
  // The answer's matches are references; sighting images went above, and
  // benign content (benign-* banks) is no finding.
  std::erase_if(result->matches, [](const spoor::Match& m) {
    return m.reference.bank == kSightingsBank || IsBenignBank(m.reference.bank);
  });
  if (static_cast<int>(result->matches.size()) > wanted)
    result->matches.resize(wanted);
  out.result = std::move(*result);
  return out;
}

absl::Status SpoorService::AwaitMatch(grpc::ServerContext* ctx,
                                      const Started& started, const Call& call,
                                      v1::MatchResponse* response) {
  MatchJob& job = *started.job;
  if (auto s = job.Wait(ctx, "deadline passed before the match finished");
      !s.ok())
    return s;
  const MatchResult& result = job.result->result;
  for (const auto& m : result.matches) {
    ToProto(m, started.include_evidence, response->add_matches());
  }
  ToProto(result, response);
  if (job.result->sighting_id > 0)
    response->set_sighting(SightingName(job.result->sighting_id));
  for (const Recorded::Earlier& e : job.result->earlier) {
    v1::EarlierSighting* pe = response->add_earlier_sightings();
    ToProto(e.sighting, pe->mutable_sighting());
    ToProto(e.link, pe->mutable_link());
    // A link made for this answer only (nothing recorded) has no name.
    if (e.link.id == 0) pe->mutable_link()->clear_name();
  }
  response->mutable_image()->set_size_bytes(started.image_bytes);
  response->mutable_timings()->set_queue_ms(job.queue_ms);
  response->set_request_id(call.request_id);
  return absl::OkStatus();
}

grpc::Status SpoorService::Match(grpc::ServerContext* ctx,
                                 const v1::MatchRequest* request,
                                 v1::MatchResponse* response) {
  return Handle(ctx, "Match", {Role::kPlatform, Role::kInvestigator},
                [&](const Call& call) -> absl::Status {
                  auto started = StartMatch(*request, call, false);
                  if (!started.ok()) return started.status();
                  return AwaitMatch(ctx, *started, call, response);
                });
}

grpc::Status SpoorService::StreamMatch(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::StreamMatchResponse, v1::StreamMatchRequest>*
        stream) {
  return Handle(
      ctx, "StreamMatch", {Role::kPlatform, Role::kInvestigator},
      [&](const Call& call) -> absl::Status {
        if (auto s = RequireIndex(); !s.ok()) return s;
        // Each stream holds a thread here and one writer thread: bounded.
        if (state_.open_streams.fetch_add(1) >= state_.max_streams) {
          state_.open_streams.fetch_sub(1);
          return absl::ResourceExhaustedError(
              absl::StrCat("too many open streams (", state_.max_streams,
                           "); close one or retry with backoff"));
        }
        struct Release {
          std::atomic<int>& n;
          ~Release() { n.fetch_sub(1); }
        } release{state_.open_streams};
        // Up to two items per worker in flight. This thread reads and queues;
        // when the window is full it stops reading, which pushes back on the
        // client through gRPC flow control. The writer thread awaits the items
        // in request order and sends each answer as soon as it is ready.
        const size_t window = 2 * std::max(1, state_.pool->workers());
        struct Item {
          std::string correlation_id;
          absl::StatusOr<Started> started;
        };
        std::mutex mu;
        std::condition_variable cv;
        std::deque<Item> pending;
        bool reading_done = false;
        bool write_failed = false;
        long served = 0;

        auto send = [&](const Item& item) {
          v1::StreamMatchResponse response;
          response.set_correlation_id(item.correlation_id);
          absl::Status s = item.started.status();
          if (s.ok())
            s = AwaitMatch(ctx, *item.started, call,
                           response.mutable_response());
          if (!s.ok()) {
            response.clear_response();
            grpc::Status g = ToGrpcStatus(s, call.request_id);
            response.mutable_error()->set_code(g.error_code());
            response.mutable_error()->set_message(g.error_message());
          }
          return stream->Write(response);
        };
        std::thread writer([&] {
          while (true) {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return !pending.empty() || reading_done; });
            if (pending.empty()) return;
            Item& front = pending.front();
            lock.unlock();
            bool ok = send(front);
            lock.lock();
            pending.pop_front();
            ++served;
            if (!ok) write_failed = true;
            cv.notify_all();
            if (write_failed) return;
          }
        });

        v1::StreamMatchRequest request;
        while (true) {
          {
            std::unique_lock lock(mu);
            cv.wait(lock,
                    [&] { return pending.size() < window || write_failed; });
            if (write_failed) break;
          }
          if (!stream->Read(&request)) break;
          Item item{request.correlation_id(),
                    StartMatch(request.request(), call, true)};
          {
            std::lock_guard lock(mu);
            pending.push_back(std::move(item));
          }
          cv.notify_all();
        }
        {
          std::lock_guard lock(mu);
          reading_done = true;
        }
        cv.notify_all();
        writer.join();
        // Items the writer never reached (client stopped reading) are
        // abandoned.
        for (auto& item : pending)
          if (item.started.ok()) item.started->job->abandoned = true;
        if (write_failed) return absl::CancelledError("client stopped reading");
        state_.log->debug("{} StreamMatch answered {} items", call.request_id,
                          served);
        return absl::OkStatus();
      });
}

grpc::Status SpoorService::AddReference(grpc::ServerContext* ctx,
                                        const v1::AddReferenceRequest* request,
                                        v1::AddReferenceResponse* response) {
  return Handle(
      ctx, "AddReference", {Role::kCurator}, [&](Call& call) -> absl::Status {
        if (auto s = RequireIndex(); !s.ok()) return s;
        if (request->image().empty())
          return absl::InvalidArgumentError("image is empty");
        Labels labels = FromProto(request->labels());
        if (auto s = ValidateLabels(labels); !s.ok()) return s;
        std::string bank =
            request->bank().empty() ? kDefaultBank : request->bank();
        if (auto s = ValidateBankName(bank); !s.ok()) return s;
        // Decoding and describing the image are the expensive part: they
        // run on the worker pool, bounded like Match; only the short insert
        // runs here. So does the search of earlier sightings the new
        // reference matches (retroactive matching), when there are any.
        struct Described {
          std::optional<std::int64_t> existing;
          std::string source;
          PreparedReference prepared;
          MatchResult sightings;  // the image matched against ad images
        };
        auto job = std::make_shared<PoolJob<Described>>();
        job->deadline = call.deadline;
        auto work = [this, job, labels, bank, bytes = request->image(),
                     source = request->source()] {
          job->Started();
          if (job->ShouldStop()) {
            job->Finish(
                absl::DeadlineExceededError("deadline passed while queued"));
            return;
          }
          std::span span(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                         bytes.size());
          Described d;
          std::string sha = Sha256Hex(span.data(), span.size());
          d.source = source.empty() ? "upload:" + sha : source;
          d.existing = state_.index->FindBySha256(sha);
          if (!d.existing) {
            auto prepared = state_.index->Prepare(span, d.source, labels);
            if (!prepared.ok()) {
              job->Finish(prepared.status());
              return;
            }
            d.prepared = std::move(*prepared);
            d.prepared.reference.bank = bank;
          }
          auto stats = state_.sightings ? state_.sightings->Stats()
                                        : absl::StatusOr<SightingStats>();
          if (stats.ok() && stats->sightings > 0) {
            MatchOptions o;
            o.banks = {kSightingsBank};
            o.max_results = kMaxPageSize;
            o.should_stop = [job] { return job->ShouldStop(); };
            auto m = state_.matcher->Match(span, o, d.source);
            if (!m.ok()) {
              job->Finish(m.status());
              return;
            }
            d.sightings = std::move(*m);
          }
          job->Finish(std::move(d));
        };
        if (!state_.pool->TrySubmit(std::move(work))) {
          return absl::ResourceExhaustedError(
              absl::StrCat("overloaded: ", state_.pool->queue_depth(),
                           " jobs already queued; retry with backoff"));
        }
        if (auto s = job->Wait(
                ctx, "deadline passed before the image was described");
            !s.ok())
          return s;
        Described& d = *job->result;
        const std::string& source = d.source;
        absl::StatusOr<AddResult> added;
        if (d.existing) {
          // The same bytes: unchanged, or a sighting's image promoted.
          auto promoted =
              state_.index->Promote(*d.existing, bank, source, labels);
          if (!promoted.ok()) return promoted.status();
          added = AddResult{*d.existing, *promoted};
        } else {
          added = state_.index->Insert(std::move(d.prepared));
        }
        if (!added.ok()) return added.status();
        if (added->added) state_.dirty = true;
        auto reference = state_.index->Get(added->id);
        if (!reference.ok()) return reference.status();
        ToProto(*reference, response->mutable_reference());
        response->set_created(added->added);
        call.target = response->reference().name();
        if (added->added && state_.sightings) {
          auto linked = state_.sightings->LinkReference(added->id, d.sightings);
          if (!linked.ok()) return linked.status();
          for (const Sighting& s : *linked)
            ToProto(s, response->add_matched_sightings());
          if (!linked->empty()) {
            state_.log->info("{} reference {} matches {} earlier sightings",
                             call.request_id, added->id, linked->size());
            state_.metrics.Record("RetroactiveMatch", "OK", 0);
          }
        }
        state_.log->info("{} {} reference {} ({}) in bank {}", call.request_id,
                         added->added ? "added" : "already had", added->id,
                         Quoted(source), bank);
        return absl::OkStatus();
      });
}

grpc::Status SpoorService::RemoveReference(
    grpc::ServerContext* ctx, const v1::RemoveReferenceRequest* request,
    v1::RemoveReferenceResponse*) {
  return Handle(ctx, "RemoveReference", {Role::kCurator},
                [&](Call& call) -> absl::Status {
                  call.target = request->name();
                  if (auto s = RequireIndex(); !s.ok()) return s;
                  auto id = ParseReferenceName(request->name());
                  if (!id.ok()) return id.status();
                  if (auto s = state_.index->Remove(*id); !s.ok()) return s;
                  state_.dirty = true;
                  return absl::OkStatus();
                });
}

grpc::Status SpoorService::GetReference(grpc::ServerContext* ctx,
                                        const v1::GetReferenceRequest* request,
                                        v1::Reference* response) {
  return Handle(ctx, "GetReference", {Role::kCurator, Role::kInvestigator},
                [&](Call& call) -> absl::Status {
                  call.target = request->name();
                  if (auto s = RequireIndex(); !s.ok()) return s;
                  auto id = ParseReferenceName(request->name());
                  if (!id.ok()) return id.status();
                  auto reference = state_.index->Get(*id);
                  if (!reference.ok()) return reference.status();
                  ToProto(*reference, response);
                  return absl::OkStatus();
                });
}

grpc::Status SpoorService::ListReferences(
    grpc::ServerContext* ctx, const v1::ListReferencesRequest* request,
    v1::ListReferencesResponse* response) {
  return Handle(
      ctx, "ListReferences", {Role::kCurator, Role::kInvestigator},
      [&](const Call&) -> absl::Status {
        if (auto s = RequireIndex(); !s.ok()) return s;
        auto page_size_or = PageSize(request->page_size());
        if (!page_size_or.ok()) return page_size_or.status();
        int page_size = *page_size_or;
        auto after_or = PageStart(request->page_token(), "references");
        if (!after_or.ok()) return after_or.status();
        std::int64_t after = *after_or;
        LabelFilter filter;
        if (!request->filter().empty()) {
          size_t eq = request->filter().find('=');
          if (eq == std::string::npos) {
            return absl::InvalidArgumentError("filter must be 'label=value'");
          }
          filter.field = request->filter().substr(0, eq);
          filter.value = request->filter().substr(eq + 1);
        }
        auto page = state_.index->List(after, page_size + 1, filter);
        if (!page.ok()) return page.status();
        bool more = static_cast<int>(page->size()) > page_size;
        if (more) page->resize(page_size);
        for (const auto& r : *page) ToProto(r, response->add_references());
        if (more) response->set_next_page_token(ReferenceName(page->back().id));
        return absl::OkStatus();
      });
}

grpc::Status SpoorService::GetIndexStats(grpc::ServerContext* ctx,
                                         const v1::GetIndexStatsRequest*,
                                         v1::IndexStats* response) {
  return Handle(
      ctx, "GetIndexStats",
      {Role::kPlatform, Role::kCurator, Role::kInvestigator},
      [&](const Call&) -> absl::Status {
        if (auto s = RequireIndex(); !s.ok()) return s;
        IndexStats s = state_.index->Stats();
        response->set_references(s.references);
        response->set_descriptors(s.descriptors);
        response->set_hashes(s.hashes);
        response->set_descriptor_factory(s.descriptor_factory);
        response->set_descriptor_version(s.descriptor_version);
        response->set_disk_bytes(s.disk_bytes);
        response->set_global_vectors(s.global_vectors);
        response->set_global_factory(s.global_factory);
        response->set_database_bytes(s.database_bytes);
        response->set_hash_index_bytes(s.hash_index_bytes);
        response->set_descriptor_index_bytes(s.descriptor_index_bytes);
        response->set_global_index_bytes(s.global_index_bytes);
        response->set_sighting_images(s.sighting_images);
        for (const auto& [bank, n] : s.banks)
          (*response->mutable_banks())[bank] = n;
        if (state_.sightings) {
          auto sightings = state_.sightings->Stats();
          if (!sightings.ok()) return sightings.status();
          response->set_sightings(sightings->sightings);
          response->set_links(sightings->links);
          response->set_sellers(sightings->sellers);
          for (const auto& p : sightings->review_precision) {
            v1::BankPrecision* bp = response->add_review_precision();
            bp->set_bank(p.bank);
            bp->set_confirmed(p.confirmed);
            bp->set_rejected(p.rejected);
            bp->set_precision(
                static_cast<double>(p.confirmed) /
                std::max<std::int64_t>(1, p.confirmed + p.rejected));
          }
        }
        response->set_queue_depth(state_.pool->queue_depth());
        response->set_workers(state_.pool->workers());
        for (const auto& [k, v] : state_.metrics.RequestCounts())
          (*response->mutable_requests())[k] = v;
        response->set_uptime_seconds(
            std::chrono::duration<double>(Clock::now() - state_.started)
                .count());
        return absl::OkStatus();
      });
}

grpc::Status SpoorService::GetSighting(grpc::ServerContext* ctx,
                                       const v1::GetSightingRequest* request,
                                       v1::Sighting* response) {
  return Handle(ctx, "GetSighting", {Role::kInvestigator, Role::kCurator},
                [&](Call& call) -> absl::Status {
                  call.target = request->name();
                  if (auto s = RequireSightings(); !s.ok()) return s;
                  auto id = ParseName(request->name(), "sightings");
                  if (!id.ok()) return id.status();
                  auto sighting = state_.sightings->Get(*id);
                  if (!sighting.ok()) return sighting.status();
                  ToProto(*sighting, response);
                  return absl::OkStatus();
                });
}

grpc::Status SpoorService::ListSightings(
    grpc::ServerContext* ctx, const v1::ListSightingsRequest* request,
    v1::ListSightingsResponse* response) {
  return Handle(
      ctx, "ListSightings", {Role::kInvestigator, Role::kCurator},
      [&](Call& call) -> absl::Status {
        if (auto s = RequireSightings(); !s.ok()) return s;
        auto page_size = PageSize(request->page_size());
        if (!page_size.ok()) return page_size.status();
        auto after = PageStart(request->page_token(), "sightings");
        if (!after.ok()) return after.status();
        SightingFilter f;
        f.platform = request->platform();
        f.seller_id = request->seller_id();
        f.ad_id = request->ad_id();
        f.bank = request->bank();
        if (!request->label().empty()) {
          size_t eq = request->label().find('=');
          if (eq == std::string::npos)
            return absl::InvalidArgumentError("label must be 'label=value'");
          f.label = {request->label().substr(0, eq),
                     request->label().substr(eq + 1)};
        }
        f.since = ToTimestampText(request->since());
        f.until = ToTimestampText(request->until());
        call.target =
            absl::StrCat("platform=", f.platform, " seller=", f.seller_id);
        auto page = state_.sightings->List(f, *after, *page_size + 1);
        if (!page.ok()) return page.status();
        bool more = static_cast<int>(page->size()) > *page_size;
        if (more) page->resize(*page_size);
        for (const Sighting& s : *page) ToProto(s, response->add_sightings());
        if (more) response->set_next_page_token(SightingName(page->back().id));
        return absl::OkStatus();
      });
}

grpc::Status SpoorService::GetAdHistory(grpc::ServerContext* ctx,
                                        const v1::GetAdHistoryRequest* request,
                                        v1::AdHistory* response) {
  return Handle(
      ctx, "GetAdHistory", {Role::kInvestigator, Role::kCurator},
      [&](Call& call) -> absl::Status {
        if (auto s = RequireSightings(); !s.ok()) return s;
        if (request->platform().empty() || request->ad_id().empty())
          return absl::InvalidArgumentError("platform and ad_id are required");
        call.target = absl::StrCat(request->platform(), "/", request->ad_id());
        SightingFilter f;
        f.platform = request->platform();
        f.ad_id = request->ad_id();
        auto sightings = state_.sightings->List(f, 0, kMaxPageSize);
        if (!sightings.ok()) return sightings.status();
        if (sightings->empty()) {
          return absl::NotFoundError(absl::StrCat(
              "no sightings of ad '", request->ad_id().substr(0, 100),
              "' on platform '", request->platform().substr(0, 100), "'"));
        }
        std::vector<Link> links;
        for (const Sighting& s : *sightings) {
          ToProto(s, response->add_sightings());
          auto of = state_.sightings->LinksOf(s.id);
          if (!of.ok()) return of.status();
          for (Link& l : *of)
            if (std::none_of(links.begin(), links.end(),
                             [&](const Link& k) { return k.id == l.id; }))
              links.push_back(std::move(l));
        }
        std::stable_sort(
            links.begin(), links.end(),
            [](const Link& a, const Link& b) { return a.score > b.score; });
        for (const Link& l : links) ToProto(l, response->add_links());
        return absl::OkStatus();
      });
}

grpc::Status SpoorService::GetSellerLinks(
    grpc::ServerContext* ctx, const v1::GetSellerLinksRequest* request,
    v1::GetSellerLinksResponse* response) {
  return Handle(
      ctx, "GetSellerLinks", {Role::kInvestigator, Role::kCurator},
      [&](Call& call) -> absl::Status {
        if (auto s = RequireSightings(); !s.ok()) return s;
        if (auto s = NeedSeller(request->platform(), request->seller_id());
            !s.ok())
          return s;
        auto min_score =
            MinScore(request->has_min_score(), request->min_score());
        if (!min_score.ok()) return min_score.status();
        call.target =
            absl::StrCat(request->platform(), "/", request->seller_id());
        auto linked = state_.sightings->SellerLinks(
            {request->platform(), request->seller_id()}, *min_score);
        if (!linked.ok()) return linked.status();
        for (const SellerLink& sl : *linked) {
          v1::SellerLink* out = response->add_sellers();
          out->set_platform(sl.seller.platform);
          out->set_seller_id(sl.seller.seller_id);
          out->set_score(sl.score);
          for (const Link& l : sl.links) ToProto(l, out->add_links());
        }
        return absl::OkStatus();
      });
}

grpc::Status SpoorService::ListClusters(grpc::ServerContext* ctx,
                                        const v1::ListClustersRequest* request,
                                        v1::ListClustersResponse* response) {
  return Handle(
      ctx, "ListClusters", {Role::kInvestigator, Role::kCurator},
      [&](const Call&) -> absl::Status {
        if (auto s = RequireSightings(); !s.ok()) return s;
        auto page_size = PageSize(request->page_size());
        if (!page_size.ok()) return page_size.status();
        auto after = PageStart(request->page_token(), "clusters");
        if (!after.ok()) return after.status();
        auto min_score =
            MinScore(request->has_min_score(), request->min_score());
        if (!min_score.ok()) return min_score.status();
        if (request->min_sellers() < 0)
          return absl::InvalidArgumentError("min_sellers must not be negative");
        auto clusters = state_.sightings->Clusters(*min_score);
        if (!clusters.ok()) return clusters.status();
        int n = 0;
        std::int64_t last = 0;
        for (const Cluster& c : *clusters) {
          if (c.id <= *after ||
              static_cast<int>(c.sellers.size()) < request->min_sellers())
            continue;
          if (n == *page_size) {
            response->set_next_page_token(ClusterName(last));
            break;
          }
          ToProto(c, response->add_clusters());
          last = c.id;
          ++n;
        }
        return absl::OkStatus();
      });
}

grpc::Status SpoorService::GetCluster(grpc::ServerContext* ctx,
                                      const v1::GetClusterRequest* request,
                                      v1::Cluster* response) {
  return Handle(ctx, "GetCluster", {Role::kInvestigator, Role::kCurator},
                [&](Call& call) -> absl::Status {
                  call.target = request->name();
                  if (auto s = RequireSightings(); !s.ok()) return s;
                  auto id = ParseName(request->name(), "clusters");
                  if (!id.ok()) return id.status();
                  auto min_score =
                      MinScore(request->has_min_score(), request->min_score());
                  if (!min_score.ok()) return min_score.status();
                  auto cluster = state_.sightings->ClusterOf(*id, *min_score);
                  if (!cluster.ok()) return cluster.status();
                  ToProto(*cluster, response);
                  return absl::OkStatus();
                });
}

grpc::Status SpoorService::GetReferenceSightings(
    grpc::ServerContext* ctx, const v1::GetReferenceSightingsRequest* request,
    v1::GetReferenceSightingsResponse* response) {
  return Handle(ctx, "GetReferenceSightings",
                {Role::kInvestigator, Role::kCurator},
                [&](Call& call) -> absl::Status {
                  call.target = request->name();
                  if (auto s = RequireSightings(); !s.ok()) return s;
                  auto id = ParseReferenceName(request->name());
                  if (!id.ok()) return id.status();
                  if (auto r = state_.index->Get(*id); !r.ok())
                    return r.status();
                  auto sightings = state_.sightings->ForReference(*id);
                  if (!sightings.ok()) return sightings.status();
                  for (const Sighting& s : *sightings)
                    ToProto(s, response->add_sightings());
                  return absl::OkStatus();
                });
}

grpc::Status SpoorService::GetSightingThumbnail(
    grpc::ServerContext* ctx, const v1::GetSightingThumbnailRequest* request,
    v1::SightingThumbnail* response) {
  return Handle(ctx, "GetSightingThumbnail",
                {Role::kInvestigator, Role::kCurator},
                [&](Call& call) -> absl::Status {
                  call.target = request->name();
                  if (auto s = RequireSightings(); !s.ok()) return s;
                  auto id = ParseName(request->name(), "sightings");
                  if (!id.ok()) return id.status();
                  auto jpeg = state_.sightings->Thumbnail(*id);
                  if (!jpeg.ok()) return jpeg.status();
                  response->set_jpeg(jpeg->data(), jpeg->size());
                  return absl::OkStatus();
                });
}

grpc::Status SpoorService::ReviewLink(grpc::ServerContext* ctx,
                                      const v1::ReviewLinkRequest* request,
                                      v1::Link* response) {
  return Handle(
      ctx, "ReviewLink", {Role::kCurator}, [&](Call& call) -> absl::Status {
        call.target = request->name();
        if (auto s = RequireSightings(); !s.ok()) return s;
        auto id = ParseName(request->name(), "links");
        if (!id.ok()) return id.status();
        Review review = request->review() == v1::CONFIRMED  ? Review::kConfirmed
                        : request->review() == v1::REJECTED ? Review::kRejected
                                                            : Review::kNone;
        if (review == Review::kNone)
          return absl::InvalidArgumentError(
              "review must be CONFIRMED or REJECTED");
        auto link = state_.sightings->ReviewLink(*id, review, request->note(),
                                                 call.principal);
        if (!link.ok()) return link.status();
        ToProto(*link, response);
        return absl::OkStatus();
      });
}

grpc::Status SpoorService::DeleteSightings(
    grpc::ServerContext* ctx, const v1::DeleteSightingsRequest* request,
    v1::DeleteSightingsResponse* response) {
  return Handle(
      ctx, "DeleteSightings", {Role::kPlatform, Role::kCurator},
      [&](Call& call) -> absl::Status {
        if (auto s = RequireSightings(); !s.ok()) return s;
        call.target =
            absl::StrCat(request->platform(), " ad=", request->ad_id(),
                         " seller=", request->seller_id());
        auto deleted = state_.sightings->Delete(
            {request->platform(), request->ad_id(), request->seller_id(), ""});
        if (!deleted.ok()) return deleted.status();
        if (deleted->images > 0) state_.dirty = true;
        response->set_deleted_sightings(deleted->sightings);
        response->set_deleted_images(deleted->images);
        return absl::OkStatus();
      });
}

}  // namespace spoor::service
