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
      max_bytes_(options.max_bytes),
      max_value_bytes_(options.max_value_bytes),
      max_sessions_(options.max_sessions),
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
  if (!recording_) return;
  Payload payload = SerializedPayload(request);
  AddPayload(/*request=*/true, payload.type, std::move(payload.bytes));
}

void Journal::ActiveCall::AddResponse(
    const google::protobuf::Message& response) {
  if (!recording_) return;
  Payload payload = SerializedPayload(response);
  AddPayload(/*request=*/false, payload.type, std::move(payload.bytes));
}

void Journal::ActiveCall::AddRequestBytes(
    const google::protobuf::Descriptor* type, grpc::Slice bytes) {
  if (recording_) AddPayload(/*request=*/true, type, std::move(bytes));
}

void Journal::ActiveCall::AddResponseBytes(
    const google::protobuf::Descriptor* type, grpc::Slice bytes) {
  if (recording_) AddPayload(/*request=*/false, type, std::move(bytes));
}

void Journal::ActiveCall::Truncated(std::string field,
                                    uint64_t original_bytes) {
  entry_.MutableRare().truncations.push_back(
      Truncation{std::move(field), original_bytes});
}

void Journal::ActiveCall::AddPayload(bool request,
                                     const google::protobuf::Descriptor* type,
                                     grpc::Slice bytes) {
  auto& payloads = request ? entry_.requests : entry_.responses;
  const size_t original = bytes.size();
  const size_t kept = std::min(original, max_value_bytes_);
  // A long stream keeps its first messages; the rest are only counted, so
  // that one call cannot hold more than kMaxValuesPerCall values' worth.
  if (!request &&
      (skipped_responses_ > 0 ||
       payload_bytes_ + kept > kMaxValuesPerCall * max_value_bytes_)) {
    if (skipped_responses_ == 0) skipped_from_ = payloads.size();
    ++skipped_responses_;
    skipped_bytes_ += original;
    return;
  }
  if (kept < original) {
    Truncated(absl::StrCat(request ? "requests[" : "responses[",
                           payloads.size(), "]"),
              original);
    // A copy of the prefix: the full message is not kept alive.
    bytes = grpc::Slice(bytes.begin(), kept);
  }
  payload_bytes_ += kept;
  payloads.push_back(Payload{type, std::move(bytes)});
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
  call.max_value_bytes_ = max_value_bytes_;
  absl::MutexLock lock(&mu_);
  if (!session.empty() && !logs_.contains(session) &&
      TrackedSessionsLocked() >= max_sessions_) {
    call.refusal_ = grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("the fake server already tracks ", max_sessions_,
                     " sessions (--journal_max_sessions); end one with "
                     "FakeControl.Reset or ClearJournal (session set) "
                     "before starting session \"",
                     session.substr(0, 64), session.size() > 64 ? "..." : "",
                     "\""));
    call.ended_ = false;
    return call;
  }
  if (!logs_.contains(session)) logs_.try_emplace(std::string(session));
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

namespace {

// Cuts `value` to `limit` bytes and marks the cut; returns whether it did.
bool TruncateValue(std::string& value, size_t limit) {
  if (value.size() <= limit) return false;
  // A new string: resize() would keep the whole original allocation.
  value = absl::StrCat(absl::string_view(value).substr(0, limit),
                       "...<truncated from ", value.size(), " bytes>");
  return true;
}

// Heap bytes of a string beyond its own object (libstdc++: 15 inline).
size_t HeapBytes(const std::string& s) {
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}

// Estimated bytes of one metadata multimap node (tree node and pair).
size_t MetadataNodeBytes(const std::string& key, const std::string& value) {
  return 32 + 2 * sizeof(std::string) + HeapBytes(key) + HeapBytes(value);
}

}  // namespace

void Journal::End(ActiveCall& call, const grpc::Status& status) {
  if (call.ended_) return;
  call.ended_ = true;
  if (!call.admitted()) {
    absl::MutexLock lock(&mu_);
    ++refused_;
    return;
  }
  call.entry_.status_code = status.error_code();
  size_t metadata_bytes = 0;
  if (call.recording_) {
    if (!status.error_message().empty()) {
      const std::string& original = status.error_message();
      std::string& message = call.entry_.MutableRare().status_message;
      if (original.size() <= max_value_bytes_) {
        message = original;
      } else {
        message = absl::StrCat(
            absl::string_view(original).substr(0, max_value_bytes_),
            "...<truncated from ", original.size(), " bytes>");
        call.Truncated("status_message", original.size());
      }
    }
    // Here, not in SetRequestMetadata, so that nothing recorded ever holds a
    // secret in the clear; the live call (rules, auth policy) saw the real
    // values before.
    Redact(call.request_metadata_);
    metadata_bytes = sizeof(Metadata) + 16;
    for (auto& [key, value] : call.request_metadata_) {
      const size_t original = value.size();
      if (TruncateValue(value, max_value_bytes_)) {
        call.Truncated(absl::StrCat("request_metadata[", key, "]"), original);
      }
      metadata_bytes += MetadataNodeBytes(key, value);
    }
    if (call.skipped_responses_ > 0) {
      call.Truncated(
          absl::StrCat("responses[", call.skipped_from_, "..",
                       call.skipped_from_ + call.skipped_responses_ - 1,
                       "] not kept"),
          call.skipped_bytes_);
    }
    Entry& entry = call.entry_;
    size_t bytes = sizeof(Entry);
    for (const auto* payloads : {&entry.requests, &entry.responses}) {
      if (payloads->size() > 1) bytes += payloads->capacity() * sizeof(Payload);
      for (const Payload& payload : *payloads) {
        // Slices of up to 23 bytes are inline; others are a refcounted block.
        if (payload.bytes.size() > 23) bytes += payload.bytes.size() + 32;
      }
    }
    if (entry.rare != nullptr) {
      const Rare& rare = *entry.rare;
      bytes += sizeof(Rare) + 16 + HeapBytes(rare.session) +
               HeapBytes(rare.rule) + HeapBytes(rare.status_message) +
               rare.truncations.capacity() * sizeof(Truncation);
      for (const Truncation& truncation : rare.truncations) {
        bytes += HeapBytes(truncation.field);
      }
    }
    // Per call over TCP (shared in-process): counted as if never shared.
    if (entry.peer != nullptr) bytes += 16 + sizeof(std::string) + 32;
    if (entry.transport_identity != nullptr) bytes += 16 + 128;
    entry.bytes = bytes;
  }
  // Destroyed after the lock is released, so that dropping old calls never
  // makes other calls wait on their deallocation.
  std::vector<Entry> dropped;
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
      // Charged to the call that brought it; calls sharing it add nothing.
      call.entry_.bytes += metadata_bytes;
    }
    call.entry_.request_metadata = last_metadata_;
    call.entry_.end_order = next_end_order_++;
    auto found = logs_.find(call.entry_.session());
    if (found == logs_.end()) {
      // The session was cleared while the call ran.
      found = logs_.try_emplace(std::string(call.entry_.session())).first;
    }
    SessionLog& log = found->second;
    log.bytes += call.entry_.bytes;
    retained_bytes_ += call.entry_.bytes;
    ++retained_calls_;
    log.calls.push_back(std::move(call.entry_));
    EvictLocked(dropped);
  }
  changed_.SignalAll();
}

size_t Journal::TrackedSessionsLocked() const {
  return logs_.size() - (logs_.contains("") ? 1 : 0);
}

void Journal::EvictLocked(std::vector<Entry>& dropped) {
  while (retained_calls_ > max_calls_ || retained_bytes_ > max_bytes_) {
    // The session holding the most bytes gives up its oldest call. A linear
    // scan: sessions are capped (max_sessions), and a journal under budget
    // never gets here.
    SessionLog* victim = nullptr;
    for (auto& [name, log] : logs_) {
      if (!log.calls.empty() &&
          (victim == nullptr || log.bytes > victim->bytes)) {
        victim = &log;
      }
    }
    if (victim == nullptr) return;
    Entry& oldest = victim->calls.front();
    victim->bytes -= oldest.bytes;
    retained_bytes_ -= oldest.bytes;
    --retained_calls_;
    ++dropped_;
    dropped.push_back(std::move(oldest));
    victim->calls.pop_front();
  }
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
  if (entry.rare != nullptr) {
    for (const Truncation& truncation : entry.rare->truncations) {
      TruncatedValue* out = call.add_truncations();
      out->set_field(truncation.field);
      out->set_original_bytes(truncation.original_bytes);
    }
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
  return CallsIn(std::nullopt, "");
}

std::vector<const Journal::Entry*> Journal::OrderedLocked(
    const SessionFilter& session) const {
  std::vector<const Entry*> ordered;
  if (session.has_value()) {
    auto log = logs_.find(*session);
    if (log == logs_.end()) return ordered;
    ordered.reserve(log->second.calls.size());
    for (const Entry& entry : log->second.calls) ordered.push_back(&entry);
    return ordered;
  }
  ordered.reserve(retained_calls_);
  for (const auto& [name, log] : logs_) {
    for (const Entry& entry : log.calls) ordered.push_back(&entry);
  }
  std::sort(ordered.begin(), ordered.end(), [](const Entry* a, const Entry* b) {
    return a->end_order < b->end_order;
  });
  return ordered;
}

std::vector<Journal::Entry> Journal::SnapshotLocked(
    const SessionFilter& session, absl::string_view method) const {
  std::vector<Entry> copies;
  for (const Entry* entry : OrderedLocked(session)) {
    if (method.empty() || MethodMatches(*entry->method, method)) {
      copies.push_back(*entry);
    }
  }
  return copies;
}

std::vector<RecordedCall> Journal::Calls(absl::string_view method) const {
  DieOnUnknownMethod(method, "Calls");
  return CallsIn(std::nullopt, method);
}

absl::StatusOr<std::vector<RecordedCall>> Journal::TryCalls(
    absl::string_view method) const {
  if (absl::Status valid = ValidateMethodQuery(method); !valid.ok()) {
    return valid;
  }
  return CallsIn(std::nullopt, method);
}

absl::StatusOr<int64_t> Journal::TryCountCalls(absl::string_view method) const {
  if (absl::Status valid = ValidateMethodQuery(method); !valid.ok()) {
    return valid;
  }
  absl::MutexLock lock(&mu_);
  return CountLocked(std::nullopt, method);
}

absl::StatusOr<std::vector<RecordedCall>> Journal::TrySessionCalls(
    absl::string_view session, absl::string_view method) const {
  if (absl::Status valid = ValidateMethodQuery(method); !valid.ok()) {
    return valid;
  }
  return CallsIn(session, method);
}

absl::StatusOr<int64_t> Journal::TryCountSessionCalls(
    absl::string_view session, absl::string_view method) const {
  if (absl::Status valid = ValidateMethodQuery(method); !valid.ok()) {
    return valid;
  }
  absl::MutexLock lock(&mu_);
  return CountLocked(session, method);
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
  std::vector<Entry> copies;
  {
    absl::MutexLock lock(&mu_);
    copies = SnapshotLocked(session, method);
  }
  std::vector<RecordedCall> result;
  result.reserve(copies.size());
  for (const Entry& entry : copies) result.push_back(ToRecordedCall(entry));
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
  // Destroyed after the lock is released, as in End().
  absl::flat_hash_map<std::string, SessionLog> removed;
  absl::MutexLock lock(&mu_);
  removed.swap(logs_);
  retained_calls_ = 0;
  retained_bytes_ = 0;
  last_metadata_ = nullptr;
  dropped_ = 0;
  ended_counts_.clear();
}

void Journal::ClearSession(absl::string_view session) {
  // Destroyed after the lock is released, as in End().
  SessionLog removed;
  absl::MutexLock lock(&mu_);
  if (auto log = logs_.find(session); log != logs_.end()) {
    removed = std::move(log->second);
    retained_calls_ -= removed.calls.size();
    retained_bytes_ -= removed.bytes;
    // The session no longer counts against max_sessions.
    logs_.erase(log);
  }
  auto counts = ended_counts_.find(session);
  if (counts != ended_counts_.end()) ended_counts_.erase(counts);
}

uint64_t Journal::dropped_calls() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

size_t Journal::retained_bytes() const {
  absl::MutexLock lock(&mu_);
  return retained_bytes_;
}

uint64_t Journal::refused_calls() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

Journal::Page Journal::ReadPage(const PageQuery& query) const {
  Page page;
  std::vector<Entry> copies;
  uint64_t more = 0;
  {
    absl::MutexLock lock(&mu_);
    page.dump.set_dropped_calls(dropped_);
    page.dump.set_refused_calls(refused_);
    const std::vector<const Entry*> ordered = OrderedLocked(query.session);
    auto it = std::upper_bound(
        ordered.begin(), ordered.end(), query.after,
        [](uint64_t after, const Entry* e) { return after < e->end_order; });
    size_t estimate = 0;
    for (; it != ordered.end(); ++it) {
      const Entry& entry = **it;
      if (!query.method.empty() &&
          !MethodMatches(*entry.method, query.method)) {
        continue;
      }
      const bool full =
          (query.max_calls > 0 && copies.size() >= query.max_calls) ||
          (!copies.empty() && estimate + entry.bytes > query.max_bytes);
      if (full) {
        ++more;
      } else {
        estimate += entry.bytes;
        copies.push_back(entry);
      }
    }
  }
  // Built outside the lock; the estimate may be off (shared metadata is
  // counted once), so the serialized size has the last word.
  size_t total = page.dump.ByteSizeLong() + 16;
  for (size_t i = 0; i < copies.size(); ++i) {
    RecordedCall call = ToRecordedCall(copies[i]);
    size_t size = call.ByteSizeLong() + 8;
    if (i > 0 && total + size > query.max_bytes) {
      more += copies.size() - i;
      copies.resize(i);
      break;
    }
    if (i == 0 && total + size > query.max_bytes) {
      // One call alone is too big: keep the responses that fit.
      const int responses = call.responses_size();
      uint64_t cut_bytes = 0;
      int kept = responses;
      while (kept > 0 && total + size > query.max_bytes) {
        --kept;
        const size_t one = call.responses(kept).ByteSizeLong() + 8;
        cut_bytes += one;
        size -= std::min(size, one);
      }
      call.mutable_responses()->DeleteSubrange(kept, responses - kept);
      TruncatedValue* note = call.add_truncations();
      note->set_field(absl::StrCat("responses[", kept, "..", responses - 1,
                                   "] not in this page"));
      note->set_original_bytes(cut_bytes);
    }
    total += size;
    *page.dump.add_calls() = std::move(call);
  }
  page.dump.set_more_calls(more);
  if (more > 0 && !copies.empty()) page.next = copies.back().end_order;
  return page;
}

JournalDump Journal::Dump(const DumpOptions& options) const {
  JournalDump dump;
  const SessionFilter session = options.session;
  std::vector<Entry> copies;
  {
    absl::MutexLock lock(&mu_);
    copies = SnapshotLocked(session, "");
    dump.set_dropped_calls(dropped_);
    dump.set_refused_calls(refused_);
  }
  dump.mutable_calls()->Reserve(static_cast<int>(copies.size()));
  for (const Entry& entry : copies) *dump.add_calls() = ToRecordedCall(entry);
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
