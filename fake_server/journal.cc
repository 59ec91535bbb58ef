#include "fake_server/journal.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fake_server/methods.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/time_util.h"

namespace workflows {
namespace fake {
namespace {

// Metadata the transport adds on its own; its values vary with versions and
// ports, so deterministic dumps leave it out.
bool IsTransportMetadata(absl::string_view key) {
  return absl::StartsWith(key, ":") || absl::StartsWith(key, "grpc-") ||
         key == "user-agent";
}

// Calls(method) and CountCalls cannot return an error without breaking every
// EXPECT_THAT(journal.Calls("GetJob"), SizeIs(n)); a wrong name is a bug in
// the test, so stop it loudly rather than answer "no calls".
void DieOnUnknownMethod(absl::string_view query, absl::string_view caller) {
  const absl::Status valid = Journal::ValidateMethodQuery(query);
  if (valid.ok()) return;
  std::fprintf(stderr, "fake server journal: %.*s: %.*s\n",
               static_cast<int>(caller.size()), caller.data(),
               static_cast<int>(valid.message().size()),
               valid.message().data());
  std::abort();
}

}  // namespace

std::string StatusCodeName(grpc::StatusCode code) {
  // gRPC's codes are absl's codes, number for number; abseil names them.
  const int number = static_cast<int>(code);
  if (number >= 0 &&
      number <= static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(number));
  }
  return absl::StrCat("CODE_", number);
}

Journal::Payload Journal::SerializedPayload(
    const google::protobuf::Message& message) {
  const std::string bytes = message.SerializeAsString();
  return Payload{message.GetDescriptor(),
                 grpc::Slice(bytes.data(), bytes.size())};
}

namespace {

std::vector<std::string> SensitiveHeaders(std::vector<std::string> extra) {
  std::vector<std::string> keys = {"authorization"};
  for (std::string& key : extra) {
    absl::AsciiStrToLower(&key);
    if (!key.empty() &&
        std::find(keys.begin(), keys.end(), key) == keys.end()) {
      keys.push_back(std::move(key));
    }
  }
  return keys;
}

}  // namespace

Journal::Journal(JournalOptions options)
    : max_calls_(options.max_calls),
      sensitive_headers_(
          SensitiveHeaders(std::move(options.sensitive_headers))),
      enabled_(options.enabled) {}

std::string Journal::RedactSecret(absl::string_view value) {
  absl::string_view scheme;
  absl::string_view secret = value;
  // "Bearer <token>", "Basic <credentials>": the scheme says what kind of
  // credential came, and is no secret.
  if (const size_t space = value.find(' ');
      space != absl::string_view::npos && space > 0) {
    scheme = value.substr(0, space);
    secret = value.substr(space + 1);
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
         digest);
  const std::string hash = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), 8));
  return absl::StrCat(scheme, scheme.empty() ? "" : " ",
                      "<redacted sha256:", hash, ">");
}

void Journal::Redact(Metadata& metadata) const {
  for (const std::string& key : sensitive_headers_) {
    auto [begin, end] = metadata.equal_range(key);
    for (auto it = begin; it != end; ++it)
      it->second = RedactSecret(it->second);
  }
}

bool Journal::MethodMatches(absl::string_view full_method,
                            absl::string_view query) {
  if (query.empty()) return false;
  if (full_method == query) return true;
  if (!absl::EndsWith(full_method, query)) return false;
  // The character before the match must separate names, so that "Job" does
  // not match ".../GetJob" but "JobAPI/GetJob" matches
  // "/descarteslabs.workflows.JobAPI/GetJob".
  char before = full_method[full_method.size() - query.size() - 1];
  return before == '/' || (before == '.' && absl::StrContains(query, '/'));
}

absl::Status Journal::ValidateMethodQuery(absl::string_view method) {
  // Whatever MethodMatches accepts for some served method, so that every
  // query that worked before still does (including a bare name two services
  // share, which counts both).
  for (const MethodInfo& served : AllMethods()) {
    if (MethodMatches(served.full_name, method)) return absl::OkStatus();
  }
  absl::StatusOr<const MethodInfo*> found = FindMethod(method);
  // Not expected: FindMethod accepts a subset of what MethodMatches does.
  if (found.ok()) return absl::OkStatus();
  return found.status();
}

void Journal::ActiveCall::AddRequest(const google::protobuf::Message& request) {
  if (recording_) entry_.requests.push_back(SerializedPayload(request));
}

void Journal::ActiveCall::AddResponse(
    const google::protobuf::Message& response) {
  if (recording_) entry_.responses.push_back(SerializedPayload(response));
}

void Journal::ActiveCall::AddRequestBytes(
    const google::protobuf::Descriptor* type, grpc::Slice bytes) {
  if (recording_) entry_.requests.push_back(Payload{type, std::move(bytes)});
}

void Journal::ActiveCall::AddResponseBytes(
    const google::protobuf::Descriptor* type, grpc::Slice bytes) {
  if (recording_) entry_.responses.push_back(Payload{type, std::move(bytes)});
}

void Journal::ActiveCall::SetRequestMetadata(
    std::multimap<std::string, std::string> metadata) {
  if (recording_) request_metadata_ = std::move(metadata);
}

void Journal::ActiveCall::SetDeadlineRemaining(absl::Duration remaining) {
  if (recording_) entry_.deadline_remaining = remaining;
}

void Journal::ActiveCall::SetPeer(std::shared_ptr<const std::string> peer) {
  if (recording_) entry_.peer = std::move(peer);
}

void Journal::ActiveCall::SetIdentity(
    std::shared_ptr<const CallerIdentity> transport_identity,
    bool has_bearer_token) {
  if (!recording_) return;
  entry_.transport_identity = std::move(transport_identity);
  entry_.has_bearer_token = has_bearer_token;
}

void Journal::ActiveCall::SetRule(absl::string_view rule) {
  if (recording_ && !rule.empty()) {
    entry_.MutableRare().rule.assign(rule.data(), rule.size());
  }
}

Journal::ActiveCall Journal::Begin(absl::string_view method,
                                   absl::Time start_time,
                                   absl::string_view session) {
  ActiveCall call;
  if (!session.empty()) {
    call.entry_.MutableRare().session.assign(session.data(), session.size());
  }
  absl::MutexLock lock(&mu_);
  call.recording_ = enabled_;
  call.entry_.sequence = next_sequence_++;
  auto name = names_.find(method);
  if (name == names_.end()) name = names_.emplace(method).first;
  call.entry_.method = &*name;
  call.entry_.start_time = start_time;
  in_flight_.try_emplace(call.entry_.sequence,
                         InFlightEntry{&*name, std::string(session)});
  changed_.SignalAll();
  return call;
}

void Journal::End(ActiveCall& call, const grpc::Status& status) {
  if (call.ended_) return;
  call.ended_ = true;
  call.entry_.status_code = status.error_code();
  if (call.recording_ && !status.error_message().empty()) {
    call.entry_.MutableRare().status_message = status.error_message();
  }
  // Here, not in SetRequestMetadata, so that nothing recorded ever holds a
  // secret in the clear; the live call (rules, auth policy) saw the real
  // values before.
  if (call.recording_) Redact(call.request_metadata_);
  // Destroyed after the lock is released, so that dropping the oldest call
  // never makes other calls wait on its deallocation.
  std::optional<Entry> dropped;
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(call.entry_.sequence);
  if (it != in_flight_.end()) {
    const absl::string_view session = call.entry_.session();
    auto counts = ended_counts_.find(session);
    if (counts == ended_counts_.end()) {
      counts = ended_counts_.try_emplace(std::string(session)).first;
    }
    ++counts->second[it->second.method];
    in_flight_.erase(it);
  }
  if (call.recording_ && enabled_) {
    if (last_metadata_ == nullptr ||
        *last_metadata_ != call.request_metadata_) {
      last_metadata_ =
          std::make_shared<const Metadata>(std::move(call.request_metadata_));
    }
    call.entry_.request_metadata = last_metadata_;
    calls_.push_back(std::move(call.entry_));
    if (calls_.size() > max_calls_) {
      dropped.emplace(std::move(calls_.front()));
      calls_.pop_front();
      ++dropped_;
    }
  }
  changed_.SignalAll();
}

RecordedCall Journal::ToRecordedCall(const Entry& entry) {
  RecordedCall call;
  call.set_sequence(entry.sequence);
  if (entry.method != nullptr) call.set_method(*entry.method);
  if (entry.rare != nullptr) {
    call.set_session(entry.rare->session);
    call.set_rule(entry.rare->rule);
    call.set_status_message(entry.rare->status_message);
  }
  *call.mutable_start_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          absl::ToUnixNanos(entry.start_time));
  auto pack = [](const Payload& payload, google::protobuf::Any* any) {
    // The URL Any::PackFrom would write.
    any->set_type_url(
        absl::StrCat("type.googleapis.com/", payload.type->full_name()));
    any->set_value(reinterpret_cast<const char*>(payload.bytes.begin()),
                   payload.bytes.size());
  };
  for (const Payload& request : entry.requests) {
    pack(request, call.add_requests());
  }
  if (entry.request_metadata != nullptr) {
    for (const auto& [key, value] : *entry.request_metadata) {
      RecordedMetadata* metadata = call.add_request_metadata();
      metadata->set_key(key);
      metadata->set_value(value);
    }
  }
  if (entry.deadline_remaining != absl::InfiniteDuration()) {
    *call.mutable_deadline_remaining() =
        google::protobuf::util::TimeUtil::NanosecondsToDuration(
            absl::ToInt64Nanoseconds(entry.deadline_remaining));
  }
  if (entry.peer != nullptr) call.set_peer(*entry.peer);
  if (entry.transport_identity != nullptr) {
    *call.mutable_identity() = *entry.transport_identity;
    call.mutable_identity()->set_has_bearer_token(entry.has_bearer_token);
  }
  call.set_status_code(StatusCodeName(entry.status_code));
  call.set_status_code_number(static_cast<int>(entry.status_code));
  for (const Payload& response : entry.responses) {
    pack(response, call.add_responses());
  }
  return call;
}

bool Journal::enabled() const {
  absl::MutexLock lock(&mu_);
  return enabled_;
}

void Journal::set_enabled(bool enabled) {
  absl::MutexLock lock(&mu_);
  enabled_ = enabled;
}

std::vector<RecordedCall> Journal::Calls() const {
  std::vector<RecordedCall> result;
  absl::MutexLock lock(&mu_);
  result.reserve(calls_.size());
  for (const Entry& entry : calls_) result.push_back(ToRecordedCall(entry));
  return result;
}

std::vector<RecordedCall> Journal::Calls(absl::string_view method) const {
  DieOnUnknownMethod(method, "Calls");
  return CallsIn(std::nullopt, method);
}

std::vector<RecordedCall> Journal::SessionCalls(
    absl::string_view session) const {
  return CallsIn(session, "");
}

std::vector<RecordedCall> Journal::SessionCalls(
    absl::string_view session, absl::string_view method) const {
  DieOnUnknownMethod(method, "SessionCalls");
  return CallsIn(session, method);
}

// `method` "" = every method.
std::vector<RecordedCall> Journal::CallsIn(const SessionFilter& session,
                                           absl::string_view method) const {
  std::vector<RecordedCall> result;
  absl::MutexLock lock(&mu_);
  for (const Entry& entry : calls_) {
    if (Covers(session, entry.session()) &&
        (method.empty() || MethodMatches(*entry.method, method))) {
      result.push_back(ToRecordedCall(entry));
    }
  }
  return result;
}

absl::Status Journal::WaitUntilIdle(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (!in_flight_.empty()) {
    if (changed_.WaitWithDeadline(&mu_, deadline) && !in_flight_.empty()) {
      std::vector<std::string> calls;
      for (const auto& [sequence, running] : SortedInFlightLocked()) {
        calls.push_back(absl::StrCat(*running->method, " (#", sequence, ")"));
      }
      return absl::DeadlineExceededError(absl::StrCat(
          "after ", absl::FormatDuration(timeout), ", ", in_flight_.size(),
          " call(s) still in flight: ", absl::StrJoin(calls, ", ")));
    }
  }
  return absl::OkStatus();
}

std::vector<std::pair<uint64_t, const Journal::InFlightEntry*>>
Journal::SortedInFlightLocked() const {
  std::vector<std::pair<uint64_t, const InFlightEntry*>> sorted;
  sorted.reserve(in_flight_.size());
  for (const auto& [sequence, running] : in_flight_) {
    sorted.emplace_back(sequence, &running);
  }
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

std::vector<Journal::InFlightCall> Journal::InFlight() const {
  std::vector<InFlightCall> result;
  absl::MutexLock lock(&mu_);
  result.reserve(in_flight_.size());
  for (const auto& [sequence, running] : SortedInFlightLocked()) {
    result.push_back(
        InFlightCall{sequence, *running->method, running->session});
  }
  return result;
}

int64_t Journal::CountLocked(const SessionFilter& session,
                             absl::string_view method) const {
  int64_t n = 0;
  for (const auto& [name, counts] : ended_counts_) {
    if (!Covers(session, name)) continue;
    for (const auto& [full, count] : counts) {
      if (MethodMatches(*full, method)) n += count;
    }
  }
  return n;
}

int64_t Journal::CountCalls(absl::string_view method) const {
  DieOnUnknownMethod(method, "CountCalls");
  absl::MutexLock lock(&mu_);
  return CountLocked(std::nullopt, method);
}

int64_t Journal::CountSessionCalls(absl::string_view session,
                                   absl::string_view method) const {
  DieOnUnknownMethod(method, "CountSessionCalls");
  absl::MutexLock lock(&mu_);
  return CountLocked(session, method);
}

std::string Journal::DescribeSeenLocked(const SessionFilter& session) const {
  std::map<std::string, int64_t> ended;
  for (const auto& [name, counts] : ended_counts_) {
    if (!Covers(session, name)) continue;
    for (const auto& [full, count] : counts) ended[*full] += count;
  }
  std::vector<std::string> seen;
  for (const auto& [full, count] : ended) {
    seen.push_back(absl::StrCat(full, " x", count));
  }
  std::map<std::string, int> in_flight;
  for (const auto& entry : in_flight_) {
    if (!Covers(session, entry.second.session)) continue;
    ++in_flight[*entry.second.method];
  }
  std::vector<std::string> running;
  for (const auto& [full, count] : in_flight) {
    running.push_back(absl::StrCat(full, " x", count));
  }
  return absl::StrCat(
      session.has_value() ? absl::StrCat("in session \"", *session, "\", ")
                          : "",
      "calls ended: ", seen.empty() ? "none" : absl::StrJoin(seen, ", "),
      "; in flight: ", running.empty() ? "none" : absl::StrJoin(running, ", "));
}

absl::Status Journal::WaitForCalls(absl::string_view method, int64_t n,
                                   absl::Duration timeout) const {
  return WaitForEnded(std::nullopt, method, n, timeout);
}

absl::Status Journal::WaitForSessionCalls(absl::string_view session,
                                          absl::string_view method, int64_t n,
                                          absl::Duration timeout) const {
  return WaitForEnded(session, method, n, timeout);
}

absl::Status Journal::WaitForEnded(const SessionFilter& session,
                                   absl::string_view method, int64_t n,
                                   absl::Duration timeout) const {
  absl::Status valid = ValidateMethodQuery(method);
  if (!valid.ok()) return valid;
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (CountLocked(session, method) < n) {
    if (changed_.WaitWithDeadline(&mu_, deadline) &&
        CountLocked(session, method) < n) {
      return absl::DeadlineExceededError(absl::StrCat(
          "waited ", absl::FormatDuration(timeout), " for ", n, " call",
          n == 1 ? "" : "s", " to ", method, " to end, saw ",
          CountLocked(session, method), "; ", DescribeSeenLocked(session)));
    }
  }
  return absl::OkStatus();
}

int64_t Journal::CountInFlightLocked(const SessionFilter& session,
                                     absl::string_view method) const {
  int64_t n = 0;
  for (const auto& entry : in_flight_) {
    if (!Covers(session, entry.second.session)) continue;
    if (MethodMatches(*entry.second.method, method)) ++n;
  }
  return n;
}

absl::Status Journal::WaitForInFlight(absl::string_view method, int64_t n,
                                      absl::Duration timeout) const {
  return WaitForRunning(std::nullopt, method, n, timeout);
}

absl::Status Journal::WaitForSessionInFlight(absl::string_view session,
                                             absl::string_view method,
                                             int64_t n,
                                             absl::Duration timeout) const {
  return WaitForRunning(session, method, n, timeout);
}

absl::Status Journal::WaitForRunning(const SessionFilter& session,
                                     absl::string_view method, int64_t n,
                                     absl::Duration timeout) const {
  absl::Status valid = ValidateMethodQuery(method);
  if (!valid.ok()) return valid;
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (CountInFlightLocked(session, method) < n) {
    if (changed_.WaitWithDeadline(&mu_, deadline) &&
        CountInFlightLocked(session, method) < n) {
      return absl::DeadlineExceededError(absl::StrCat(
          "waited ", absl::FormatDuration(timeout), " for ", n, " call",
          n == 1 ? "" : "s", " to ", method, " to be in flight, saw ",
          CountInFlightLocked(session, method), "; ",
          DescribeSeenLocked(session)));
    }
  }
  return absl::OkStatus();
}

void Journal::Clear() {
  absl::MutexLock lock(&mu_);
  calls_.clear();
  last_metadata_ = nullptr;
  dropped_ = 0;
  ended_counts_.clear();
}

void Journal::ClearSession(absl::string_view session) {
  // Destroyed after the lock is released, as in End().
  std::deque<Entry> removed;
  absl::MutexLock lock(&mu_);
  std::deque<Entry> kept;
  for (Entry& entry : calls_) {
    (entry.session() == session ? removed : kept).push_back(std::move(entry));
  }
  calls_.swap(kept);
  auto counts = ended_counts_.find(session);
  if (counts != ended_counts_.end()) ended_counts_.erase(counts);
}

uint64_t Journal::dropped_calls() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

JournalDump Journal::Dump(const DumpOptions& options) const {
  JournalDump dump;
  const SessionFilter session = options.session;
  {
    absl::MutexLock lock(&mu_);
    if (!session.has_value()) {
      dump.mutable_calls()->Reserve(static_cast<int>(calls_.size()));
    }
    for (const Entry& entry : calls_) {
      if (Covers(session, entry.session())) {
        *dump.add_calls() = ToRecordedCall(entry);
      }
    }
    dump.set_dropped_calls(dropped_);
  }
  if (options.deterministic) {
    for (RecordedCall& call : *dump.mutable_calls()) {
      call.clear_start_time();
      call.clear_peer();
      call.clear_deadline_remaining();
      auto* metadata = call.mutable_request_metadata();
      for (int i = metadata->size() - 1; i >= 0; --i) {
        if (IsTransportMetadata(metadata->Get(i).key())) {
          metadata->DeleteSubrange(i, 1);
        }
      }
    }
  }
  return dump;
}

std::string Journal::ToTextProto(const DumpOptions& options) const {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  // Expanded Any payloads make golden files readable and reviewable.
  printer.SetExpandAny(true);
  printer.PrintToString(Dump(options), &text);
  return text;
}

}  // namespace fake
}  // namespace workflows
