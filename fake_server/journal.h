#ifndef WORKFLOWS_FAKE_SERVER_JOURNAL_H_
#define WORKFLOWS_FAKE_SERVER_JOURNAL_H_

#include <grpcpp/support/slice.h>
#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/container/node_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fake_server/journal.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace workflows {
namespace fake {

struct JournalOptions {
  // When false, no call is retained (Calls() stays empty) and requests and
  // responses are never copied; InFlight() and WaitForCalls() still work.
  bool enabled = true;
  // At most this many ended calls are retained; older ones are dropped (and
  // counted) so that long runs stay bounded in memory.
  size_t max_calls = 100000;
  // At most about this many bytes of ended calls are retained (estimated:
  // payloads, metadata, messages and per-call overhead). Over it, or over
  // max_calls, the oldest call of the session holding the most bytes is
  // dropped, so that one session's flood never evicts another's calls.
  size_t max_bytes = size_t{32} << 20;
  // Requests, responses, metadata values and status messages longer than
  // this are kept truncated to it, with a marker and their original size
  // (RecordedCall.truncations). One call keeps at most
  // kMaxValuesPerCall * max_value_bytes of responses; later ones are
  // counted, not kept.
  size_t max_value_bytes = size_t{64} << 10;
  // At most this many sessions (non-empty kSessionMetadataKey values) are
  // tracked at once; a call that would start one more is refused with
  // RESOURCE_EXHAUSTED naming the limit. A session is tracked from its first
  // call until ClearSession() or Clear().
  size_t max_sessions = 1024;
  // Request metadata whose values are secrets: the journal keeps them
  // redacted (see Journal::RedactSecret), never in the clear. Lowercase, as
  // gRPC delivers keys. "authorization" is always sensitive.
  std::vector<std::string> sensitive_headers;
};

// Journal records every RPC a fake server handles: method, request, metadata,
// the client's deadline, peer and identity, the rule that decided it, the
// final status and the responses. Tests read it to assert on what the client
// sent, wait for calls to happen, and dump it as textproto for golden files.
// Thread-safe; recording takes the lock only briefly at the start and end of
// a call, and the RecordedCall messages are built only when read.
//
//   Journal& journal = server->journal();
//   ASSERT_THAT(journal.WaitForCalls("GetJob", 2, absl::Seconds(5)), IsOk());
//   std::vector<RecordedCall> calls = journal.Calls("GetJob");
//   EXPECT_EQ(calls[1].status_code(), "OK");
//   std::string golden = journal.ToTextProto({.deterministic = true});
//
// Method names in queries are bare ("GetJob"), service-qualified
// ("JobAPI/GetJob") or full ("/descarteslabs.workflows.JobAPI/GetJob"), as in
// the script. A name that no served method has is a mistake in the test, not
// "no calls": WaitForCalls and WaitForInFlight return INVALID_ARGUMENT at once
// (instead of waiting out the timeout), TryCalls and TryCountCalls return
// it, and Calls(method) and CountCalls abort with the same message, since an
// empty answer would let EXPECT_THAT(Calls("GetJbo"), IsEmpty()) pass. The
// message lists the valid names (see ValidateMethodQuery). testing/waits.h
// wraps the waits as ::testing::AssertionResult for gtest.
class Journal {
 private:
  // A request or response as recorded: its type and wire bytes. Packed into
  // a google.protobuf.Any only when the journal is read, so recording costs
  // at most one serialization (none for unary calls, whose bytes the server
  // has anyway) and no Any per message. A grpc::Slice, so that a unary
  // response is kept by reference to the very bytes sent (no copy), and a
  // short request (up to 23 bytes) is stored inline.
  struct Payload {
    const google::protobuf::Descriptor* type = nullptr;
    grpc::Slice bytes;
  };

  using Metadata = std::multimap<std::string, std::string>;

  // A value kept shorter than it came (see JournalOptions).
  struct Truncation {
    std::string field;
    uint64_t original_bytes = 0;
  };

  // What few calls have: a session, a rule that matched, an error message,
  // truncated values. Allocated only for those calls, to keep Entry small;
  // shared (read-only once the call ended) by the copies readers take.
  struct Rare {
    std::string session;
    std::string rule;
    std::string status_message;
    std::vector<Truncation> truncations;
  };

  // One call as stored. Kept in native types rather than as a RecordedCall:
  // building that message (Anys, Timestamps, a message per metadata entry)
  // on every call was most of the fake server's per-call overhead (#7).
  struct Entry {
    uint64_t sequence = 0;
    const std::string* method = nullptr;  // interned in names_
    absl::Time start_time;
    // InfiniteDuration() when the client sent no deadline.
    absl::Duration deadline_remaining = absl::InfiniteDuration();
    // One request per call (no client streaming): inline, no allocation.
    absl::InlinedVector<Payload, 1> requests;
    absl::InlinedVector<Payload, 1> responses;
    // Shared with the previous call when equal (see End): calls from one
    // client mostly send the same metadata, which then costs nothing to keep.
    std::shared_ptr<const Metadata> request_metadata;
    // Shared by all calls over one transport where the server can tell.
    std::shared_ptr<const std::string> peer;
    // The transport's part of the identity, shared likewise;
    // has_bearer_token is per call.
    std::shared_ptr<const CallerIdentity> transport_identity;
    grpc::StatusCode status_code = grpc::StatusCode::OK;
    bool has_bearer_token = false;
    // The order calls ended in (readers list calls in it); from 1.
    uint64_t end_order = 0;
    // What retaining the call costs, as counted against max_bytes.
    size_t bytes = 0;
    std::shared_ptr<Rare> rare;  // null: all of Rare's fields are empty

    absl::string_view session() const {
      return rare == nullptr ? absl::string_view() : rare->session;
    }
    Rare& MutableRare() {
      if (rare == nullptr) rare = std::make_shared<Rare>();
      return *rare;
    }
  };
  // The retained calls live in std::deques, which pack 512 / sizeof(Entry)
  // entries per block: at 257 bytes or more each entry gets a 512-byte block
  // of its own, and retaining a call costs twice the memory (and page
  // faults) it needs.
  static_assert(sizeof(Entry) <= 256, "keep Journal::Entry within 256 bytes");

 public:
  // One call between Begin() and End(), owned by the server thread handling
  // it; record into it (when recording()) without any lock. Every setter is
  // a no-op when the journal was disabled at Begin().
  class ActiveCall {
   public:
    ActiveCall(ActiveCall&&) = default;
    ActiveCall& operator=(ActiveCall&&) = default;

    // False when the journal is disabled: skip computing what to record.
    bool recording() const { return recording_; }
    // False when the call's session would exceed max_sessions: end the call
    // at once with refusal() (End() counts it; nothing is retained).
    bool admitted() const { return refusal_.ok(); }
    const grpc::Status& refusal() const { return refusal_; }
    uint64_t sequence() const { return entry_.sequence; }

    void AddRequest(const google::protobuf::Message& request);
    void AddResponse(const google::protobuf::Message& response);
    // The same, for a message already in wire form (`bytes` of a `type`), so
    // that a message serialized for the wire is not serialized again. The
    // slice is kept as given (a reference, for a refcounted slice): give a
    // copy of bytes that belong to a larger buffer.
    void AddRequestBytes(const google::protobuf::Descriptor* type,
                         grpc::Slice bytes);
    void AddResponseBytes(const google::protobuf::Descriptor* type,
                          grpc::Slice bytes);
    // Takes the metadata by value so that a caller done with it can move it.
    void SetRequestMetadata(std::multimap<std::string, std::string> metadata);
    void SetDeadlineRemaining(absl::Duration remaining);
    // Shared, so that calls over one transport need not copy it.
    void SetPeer(std::shared_ptr<const std::string> peer);
    // `transport_identity` without has_bearer_token, which is given apart so
    // that calls over one transport can share it.
    void SetIdentity(std::shared_ptr<const CallerIdentity> transport_identity,
                     bool has_bearer_token);
    void SetRule(absl::string_view rule);

   private:
    friend class Journal;
    ActiveCall() = default;
    void AddPayload(bool request, const google::protobuf::Descriptor* type,
                    grpc::Slice bytes);
    void Truncated(std::string field, uint64_t original_bytes);

    bool recording_ = false;
    bool ended_ = false;
    grpc::Status refusal_;
    // From JournalOptions, copied at Begin() so that recording takes no lock.
    size_t max_value_bytes_ = 0;
    // Payload bytes kept so far, and responses not kept past the per-call
    // limit.
    size_t payload_bytes_ = 0;
    size_t skipped_from_ = 0;
    uint64_t skipped_responses_ = 0;
    uint64_t skipped_bytes_ = 0;
    Entry entry_;
    // Becomes entry_.request_metadata at End().
    Metadata request_metadata_;
  };

  // A call that has begun but not ended.
  struct InFlightCall {
    uint64_t sequence = 0;
    std::string method;
    std::string session;
  };

  // A call keeps at most this many max_value_bytes of responses.
  static constexpr size_t kMaxValuesPerCall = 16;

  struct DumpOptions {
    // Omits what changes from run to run (start times, peers, deadlines,
    // transport-generated metadata such as user-agent), for golden files.
    bool deterministic = false;
    // Set: only the calls of this session ("" = untagged calls).
    std::optional<std::string> session;
  };

  explicit Journal(JournalOptions options = {});
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Server side: records the arrival of a call to `method` (full path) in
  // `session` (see kSessionMetadataKey) and its end. `start_time` is the
  // server clock's time.
  ActiveCall Begin(absl::string_view method, absl::Time start_time,
                   absl::string_view session = {});
  void End(ActiveCall& call, const grpc::Status& status);

  bool enabled() const;
  void set_enabled(bool enabled);

  // OK if `method` names a method the fake serves, in any of the accepted
  // spellings; else INVALID_ARGUMENT like `unknown method "GetJbo"; did you
  // mean "GetJob"? valid: CancelJob, Check, ...`. TryCalls and the other
  // Try* queries below apply it and return its error; Calls(method) and
  // CountCalls abort the process on a bad name instead.
  static absl::Status ValidateMethodQuery(absl::string_view method);

  // Ended calls, oldest first. Calls(method) aborts the process on an unknown
  // `method` (so that EXPECT_THAT(Calls("GetJbo"), IsEmpty()) cannot pass);
  // use TryCalls for a method name computed at run time.
  std::vector<RecordedCall> Calls() const;
  std::vector<RecordedCall> Calls(absl::string_view method) const;

  // Calls(method) and CountCalls(method) that return an unknown `method` as
  // INVALID_ARGUMENT (the ValidateMethodQuery error) instead of aborting:
  //
  //   absl::StatusOr<std::vector<RecordedCall>> calls =
  //       journal.TryCalls(method_from_config);
  //   if (!calls.ok()) return calls.status();
  absl::StatusOr<std::vector<RecordedCall>> TryCalls(
      absl::string_view method) const;
  absl::StatusOr<int64_t> TryCountCalls(absl::string_view method) const;

  // Calls begun but not yet ended (e.g. hanging), oldest first. A test
  // fixture's teardown can fail a test that leaves RPCs running.
  std::vector<InFlightCall> InFlight() const;

  // Number of calls to `method` that have ended since the last Clear(),
  // including dropped ones. Aborts on an unknown `method`.
  int64_t CountCalls(absl::string_view method) const;

  // Blocks until at least `n` calls to `method` have ended (counting since
  // the last Clear()) or `timeout` of real time passes. On timeout returns
  // DEADLINE_EXCEEDED saying how many calls to which methods were seen and
  // which are still in flight. An unknown `method` is INVALID_ARGUMENT at
  // once.
  absl::Status WaitForCalls(absl::string_view method, int64_t n,
                            absl::Duration timeout) const;

  // Blocks until at least `n` calls to `method` are in flight at once (e.g.
  // hanging), or `timeout` passes (DEADLINE_EXCEEDED saying what was seen).
  // Lets a test know a hung call has reached the server without sleeping.
  // An unknown `method` is INVALID_ARGUMENT at once.
  absl::Status WaitForInFlight(absl::string_view method, int64_t n,
                               absl::Duration timeout) const;

  // Blocks until no call is in flight, or `timeout` passes (then
  // DEADLINE_EXCEEDED naming the calls still running). Test teardown uses it
  // to tell calls that are finishing from calls that were left behind.
  absl::Status WaitUntilIdle(absl::Duration timeout) const;

  // Forgets ended calls, counts and drops; in-flight calls stay in flight.
  void Clear();

  // Sessions (see kSessionMetadataKey in session.h): the queries above,
  // restricted to the calls of `session` ("" = calls without a session), so
  // that tests sharing one server see only their own calls. Method names
  // are checked as above.
  //
  //   ASSERT_THAT(journal.WaitForSessionCalls("job-a", "GetJob", 1,
  //                                           absl::Seconds(5)),
  //               IsOk());
  //   EXPECT_THAT(journal.SessionCalls("job-a", "GetJob"), SizeIs(1));
  //   journal.ClearSession("job-a");  // other sessions keep their calls
  std::vector<RecordedCall> SessionCalls(absl::string_view session) const;
  std::vector<RecordedCall> SessionCalls(absl::string_view session,
                                         absl::string_view method) const;
  // Not counting dropped calls (the journal does not keep their sessions).
  int64_t CountSessionCalls(absl::string_view session,
                            absl::string_view method) const;
  // As TryCalls and TryCountCalls, for one session.
  absl::StatusOr<std::vector<RecordedCall>> TrySessionCalls(
      absl::string_view session, absl::string_view method) const;
  absl::StatusOr<int64_t> TryCountSessionCalls(absl::string_view session,
                                               absl::string_view method) const;
  absl::Status WaitForSessionCalls(absl::string_view session,
                                   absl::string_view method, int64_t n,
                                   absl::Duration timeout) const;
  absl::Status WaitForSessionInFlight(absl::string_view session,
                                      absl::string_view method, int64_t n,
                                      absl::Duration timeout) const;
  // Forgets the ended calls and counts of `session` only; dropped_calls()
  // stays (it is server-wide).
  void ClearSession(absl::string_view session);

  // Number of ended calls not retained because of `max_calls`.
  uint64_t dropped_calls() const;

  // One page of the ended calls, for readers that must bound what they
  // build and send (FakeControl.GetJournal).
  struct PageQuery {
    // Set: only this session's calls ("" = untagged calls).
    std::optional<std::string> session;
    // "" = every method; else a name ValidateMethodQuery accepts.
    std::string method;
    // 0: from the oldest call; else Page::next of the previous page.
    uint64_t after = 0;
    // At most this many calls (0: no count limit) and at most about
    // max_bytes of serialized JournalDump (at least one call, whose
    // responses are cut, with a truncation noted, if they alone exceed it).
    size_t max_calls = 0;
    size_t max_bytes = size_t{4} << 20;
  };
  struct Page {
    // The calls, dropped_calls and refused_calls; more_calls > 0 when
    // calls remain after this page.
    JournalDump dump;
    // Give as PageQuery::after for the next page; 0 when none remains.
    uint64_t next = 0;
  };
  // The RecordedCall messages are built after the lock is released, from
  // copies that share the payloads.
  Page ReadPage(const PageQuery& query) const;

  // Bytes of ended calls retained, as counted against max_bytes.
  size_t retained_bytes() const;
  // Calls refused because max_sessions sessions were tracked.
  uint64_t refused_calls() const;

  JournalDump Dump(const DumpOptions& options) const;
  JournalDump Dump() const { return Dump(DumpOptions()); }
  std::string ToTextProto(const DumpOptions& options) const;
  std::string ToTextProto() const { return ToTextProto(DumpOptions()); }

  // What the journal keeps of a sensitive metadata value (e.g.
  // "authorization"): its scheme, if the value has one ("Bearer"), and the
  // first 8 bytes of the SHA-256 of the rest, in hex:
  //   RedactSecret("Bearer t0ken") == "Bearer <redacted sha256:1e4f...>"
  // (16 hex digits). Enough to assert on which token came (compute the same
  // from the expected token), useless to replay.
  static std::string RedactSecret(absl::string_view value);

  // True if `query` names `full_method` (bare, "Service/Method" with or
  // without package, or full path).
  static bool MethodMatches(absl::string_view full_method,
                            absl::string_view query);

 private:
  // Which sessions a query covers: nullopt = all.
  using SessionFilter = std::optional<absl::string_view>;
  static bool Covers(const SessionFilter& filter, absl::string_view session) {
    return !filter.has_value() || session == *filter;
  }

  struct InFlightEntry {
    const std::string* method = nullptr;  // interned in names_
    std::string session;
  };

  // The retained calls of one session, in the order they ended.
  struct SessionLog {
    std::deque<Entry> calls;
    size_t bytes = 0;
  };

  std::vector<RecordedCall> CallsIn(const SessionFilter& session,
                                    absl::string_view method) const;
  // The retained calls `session` covers, in the order they ended.
  std::vector<const Entry*> OrderedLocked(const SessionFilter& session) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Copies (sharing payloads and metadata) of the calls `session` and
  // `method` ("" = all) cover, for building messages outside the lock.
  std::vector<Entry> SnapshotLocked(const SessionFilter& session,
                                    absl::string_view method) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Drops calls while over max_calls or max_bytes (see JournalOptions),
  // moving them to `dropped` to be destroyed outside the lock.
  void EvictLocked(std::vector<Entry>& dropped)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t TrackedSessionsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status WaitForEnded(const SessionFilter& session,
                            absl::string_view method, int64_t n,
                            absl::Duration timeout) const;
  absl::Status WaitForRunning(const SessionFilter& session,
                              absl::string_view method, int64_t n,
                              absl::Duration timeout) const;
  std::string DescribeSeenLocked(const SessionFilter& session) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int64_t CountLocked(const SessionFilter& session,
                      absl::string_view method) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int64_t CountInFlightLocked(const SessionFilter& session,
                              absl::string_view method) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // in_flight_, oldest first.
  std::vector<std::pair<uint64_t, const InFlightEntry*>> SortedInFlightLocked()
      const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  static RecordedCall ToRecordedCall(const Entry& entry);
  static Payload SerializedPayload(const google::protobuf::Message& message);

  // Replaces the values of sensitive keys in `metadata` by their redacted
  // form. Needs no lock (sensitive_headers_ is const).
  void Redact(Metadata& metadata) const;

  const size_t max_calls_;
  const size_t max_bytes_;
  const size_t max_value_bytes_;
  const size_t max_sessions_;
  // Lowercase; includes "authorization".
  const std::vector<std::string> sensitive_headers_;
  mutable absl::Mutex mu_;
  // Signalled whenever a call begins or ends.
  mutable absl::CondVar changed_;
  bool enabled_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  // Per session ("" included): tracked from a session's first call.
  absl::flat_hash_map<std::string, SessionLog> logs_ ABSL_GUARDED_BY(mu_);
  size_t retained_calls_ ABSL_GUARDED_BY(mu_) = 0;
  size_t retained_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_end_order_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  // The request metadata of the last call retained.
  std::shared_ptr<const Metadata> last_metadata_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  // Ended calls per session, then per method (interned in names_), since
  // the last Clear() (or ClearSession()). Hash maps, because every call
  // updates them under mu_; readers sort what they show.
  absl::flat_hash_map<std::string,
                      absl::flat_hash_map<const std::string*, int64_t>>
      ended_counts_ ABSL_GUARDED_BY(mu_);
  // Method names seen so far, interned so that recording a call allocates no
  // string (node-based: the pointers stay valid); never shrinks (there are
  // only so many methods).
  absl::node_hash_set<std::string> names_ ABSL_GUARDED_BY(mu_);
  // Calls begun and not ended, by sequence number (readers sort them).
  absl::flat_hash_map<uint64_t, InFlightEntry> in_flight_ ABSL_GUARDED_BY(mu_);
};

// "OK", "UNAVAILABLE", ... for a grpc::StatusCode.
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_JOURNAL_H_
