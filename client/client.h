#ifndef WORKFLOWS_CLIENT_CLIENT_H_
#define WORKFLOWS_CLIENT_CLIENT_H_

// The C++ client of the Descartes Labs Workflows gRPC API, behaving like the
// Python client (descarteslabs.workflows.client.Client): same headers,
// retries, timeouts and errors, with its known bugs fixed (Health honours its
// timeout; WaitForJob's re-opening is bounded by its timeout).
//
//   workflows::ClientOptions options;
//   options.host = "localhost";
//   options.port = 8000;
//   options.use_insecure_channel = true;
//   workflows::Client client(options);
//
//   descarteslabs::workflows::GetJobRequest request;
//   request.set_id("abc");
//   workflows::CallResult<descarteslabs::workflows::Job> job =
//       client.GetJob(request);
//   if (!job.ok()) std::cerr << job.status() << "\n";
//
//   absl::StatusOr<descarteslabs::workflows::Job::State> done =
//       client.WaitForJob("abc", absl::Minutes(10));

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/auth.h"
#include "client/call_result.h"
#include "client/clock.h"
#include "client/errors.h"
#include "client/retry.h"
#include "client/stream_reader.h"
#include "client/version.h"  // WORKFLOWS_CLIENT_VERSION, from //:VERSION
#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/discover.grpc.pb.h"
#include "proto/job.grpc.pb.h"
#include "proto/workflow.grpc.pb.h"
#include "proto/xyz.grpc.pb.h"

namespace workflows {

namespace wf = ::descarteslabs::workflows;
namespace discover = ::descarteslabs::discover::v0alpha;
namespace health = ::grpc::health::v1;

inline constexpr char kClientVersion[] = WORKFLOWS_CLIENT_VERSION;
inline constexpr char kDefaultHost[] = "workflows-api.descarteslabs.com";
inline constexpr char kDefaultWorkflowsChannel[] = "v0-19";

// How a Client connects and what it sends on every call.
struct ClientOptions {
  // Empty: $DESCARTESLABS_WORKFLOWS_HOST, else kDefaultHost. A host name,
  // IPv4 address or IPv6 address (bracketed or not), without the port.
  std::string host;
  // 0: $DESCARTESLABS_WORKFLOWS_PORT, else 443 (8000 when insecure).
  int port = 0;
  // Null: Auth::GetDefault() ($DESCARTESLABS_TOKEN, read at call time).
  std::shared_ptr<Auth> auth;
  // PEM root CAs. Empty: the file named by the first non-empty of
  // $GRPC_CA_BUNDLE, $SSL_CERT_FILE, $REQUESTS_CA_BUNDLE, $CURL_CA_BUNDLE,
  // else the system trust store.
  std::string certificate;
  // A ready channel, used as is (host, port, TLS and channel arguments are
  // then ignored). The token is sent over it only when channel_is_secure or
  // send_token_on_insecure_channel says how.
  std::shared_ptr<grpc::Channel> channel;
  // `channel` has transport security (TLS, or local credentials): send the
  // token through per-call credentials on it. Leave false for insecure
  // channels: gRPC fails calls that carry call credentials over them.
  bool channel_is_secure = false;
  // Extra channel arguments (e.g. max message sizes, proxies).
  grpc::ChannelArguments channel_arguments;
  grpc_compression_algorithm compression = GRPC_COMPRESS_NONE;
  bool use_insecure_channel = false;
  // Sent on every call, after x-wf-channel and user-agent (so they may
  // override them), before per-API and per-call metadata.
  Metadata default_metadata;
  // Per-API metadata and retry, keyed by bare RPC name (e.g. "GetJob").
  std::map<std::string, Metadata> api_metadata;
  std::map<std::string, RetryPolicy> api_retry;
  // Null: RetryPolicy::Default(). CreateJob always uses RetryPolicy::CreateJob
  // unless overridden in api_retry or per call.
  std::optional<RetryPolicy> default_retry;
  // The Workflows API version, sent as x-wf-channel.
  std::string workflows_channel = kDefaultWorkflowsChannel;
  // Used for all backoff sleeping and retry-after date math. Null: Real().
  std::shared_ptr<Clock> clock;
  std::string user_agent = std::string("workflows-cpp/") + kClientVersion;
  // gRPC never sends call credentials on insecure channels. When set, and
  // the client did not build a secure channel itself (insecure or a given
  // `channel`), `authorization: Bearer <token>` is sent as plain metadata
  // instead, so tests over in-process channels can exercise auth.
  bool send_token_on_insecure_channel = false;
};

// Options of one call.
struct CallOptions {
  // Per attempt. Unset: Client::kDefaultTimeout for unary calls,
  // Client::kStreamTimeout for streams (ListAccessGrantsStream: 5 s, as in
  // the Python client). Must be positive; absl::InfiniteDuration() means no
  // deadline.
  std::optional<absl::Duration> timeout;
  // Merged last: later keys win. Keys are case-insensitive.
  Metadata metadata;
  // Overrides the API's policy; RetryPolicy::None() disables retries.
  std::optional<RetryPolicy> retry;
  // Sent as x-on-behalf-of-user.
  std::optional<std::string> on_behalf_of;
  // CreateJob only: RetryPolicy::CreateJob(num_retries). Must be >= 0.
  std::optional<int> num_retries;
  // Bounds the whole call, on the client's Clock: every attempt and every
  // backoff. Each attempt's deadline is min(timeout, what is left); a
  // backoff that would reach the end is not slept; running out returns
  // DEADLINE_EXCEEDED naming the budget, the attempts made and the last
  // error (RetryAttempts() has them all). Streams: the budget bounds their
  // opening attempts and, once open, their deadline. Unset (the default, as
  // in the Python client): no bound beyond 1 + max_retries attempts of
  // `timeout` plus their backoffs. Must be positive;
  // absl::InfiniteDuration() is the same as unset.
  //
  //   client.GetJob(request, {.budget = absl::Seconds(30)});
  std::optional<absl::Duration> budget;
};

// One entry of Client::api(): an operation of the Workflows API.
struct ApiMethod {
  std::string name;       // "GetJob"
  std::string full_name;  // "/descarteslabs.workflows.JobAPI/GetJob"
  bool server_streaming = false;
  absl::Duration default_timeout;
  RetryPolicy retry;
  Metadata metadata;  // per-API defaults
};

// Options of Client::WaitForJob.
struct WaitOptions {
  // Cancel the job when the timeout passes (as the Python client does).
  bool cancel_on_timeout = true;
  // Called with every state received.
  std::function<void(const wf::Job::State&)> on_state;
  // Used for every WatchJob (and the CancelJob); its timeout is ignored,
  // and so is its budget for WatchJob (WaitForJob's `timeout` bounds it all).
  CallOptions call;
};

// A Workflows client. Thread-safe. Nothing connects until the first call.
class Client {
 public:
  static constexpr absl::Duration kDefaultTimeout = absl::Seconds(5);
  static constexpr absl::Duration kStreamTimeout = absl::Seconds(86400);

  using InsecureFactory = std::function<std::shared_ptr<grpc::Channel>(
      const std::string& target, const grpc::ChannelArguments& arguments,
      grpc_compression_algorithm compression)>;
  using SecureFactory = std::function<std::shared_ptr<grpc::Channel>(
      const std::string& target,
      const std::shared_ptr<grpc::ChannelCredentials>& credentials,
      const grpc::ChannelArguments& arguments,
      grpc_compression_algorithm compression)>;

  // The generated stubs a client calls through. Tests may substitute gMock
  // stubs (proto/*_mock.grpc.pb.h) with set_stub_factory().
  struct Stubs {
    std::unique_ptr<health::Health::StubInterface> health;
    std::unique_ptr<wf::WorkflowAPI::StubInterface> workflow;
    std::unique_ptr<wf::JobAPI::StubInterface> job;
    std::unique_ptr<wf::XYZAPI::StubInterface> xyz;
    std::unique_ptr<discover::AccessGrantApi::StubInterface> access_grant;
    // Warnings and trailers are read from the ClientContext only when a
    // call was started on it: gRPC aborts the process when initial metadata
    // is read from a context that never ran a call (a missing stub, or a
    // gMock stub returning a status). Set this when the stubs fill the
    // server metadata themselves without a call (gMock stubs using
    // grpc::testing::ClientContextTestPeer::AddServerInitialMetadata on
    // every call), to read it then too.
    bool injected_server_metadata = false;
  };
  using StubFactory = std::function<std::shared_ptr<Stubs>(
      const std::shared_ptr<grpc::Channel>& channel)>;

  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // grpc::CreateCustomChannel with insecure credentials.
  static std::shared_ptr<grpc::Channel> InsecureChannelFactory(
      const std::string& target, const grpc::ChannelArguments& arguments,
      grpc_compression_algorithm compression);
  // grpc::CreateCustomChannel with `credentials`.
  static std::shared_ptr<grpc::Channel> SecureChannelFactory(
      const std::string& target,
      const std::shared_ptr<grpc::ChannelCredentials>& credentials,
      const grpc::ChannelArguments& arguments,
      grpc_compression_algorithm compression);
  // The generated stubs on `channel`.
  static std::shared_ptr<Stubs> DefaultStubFactory(
      const std::shared_ptr<grpc::Channel>& channel);

  // Replace the factories of this instance (e.g. to observe them); they take
  // effect at the next channel opening.
  void set_insecure_channel_factory(InsecureFactory factory);
  void set_secure_channel_factory(SecureFactory factory);
  void set_stub_factory(StubFactory factory);

  // The channel, opened on first use and again after Close().
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel();
  // "host:port" this client connects to (an error for a bad host or port).
  absl::StatusOr<std::string> target() const;
  // The PEM root CAs for TLS; empty means the system trust store. Errors
  // name the unreadable file or the invalid PEM.
  absl::StatusOr<std::string> certificate() const;
  // The bearer token from the Auth.
  absl::StatusOr<std::string> token() const;
  const ClientOptions& options() const { return options_; }

  // The operations keyed by bare RPC name: Check, every WorkflowAPI, JobAPI
  // and XYZAPI RPC, and CreateAccessGrant, DeleteAccessGrant and
  // ListAccessGrantsStream, each with its defaults.
  const std::map<std::string, ApiMethod>& api() const { return api_; }

  // Drops the channel and stubs. Idempotent; the next call reconnects.
  // Calls in flight keep their channel until they end.
  void Close();

  // The process-wide client, created from default ClientOptions on first use.
  static std::shared_ptr<Client> GetDefaultClient();
  // Replaces it; null makes the next GetDefaultClient() create a new one.
  static void SetDefaultClient(std::shared_ptr<Client> client);
  // Replaces it and returns the one it replaced, or null if none was set
  // (it never creates one), so a scope can put the previous default back.
  static std::shared_ptr<Client> ExchangeDefaultClient(
      std::shared_ptr<Client> client);

  // grpc.health.v1.Health/Check with an empty service name: SERVING,
  // NOT_SERVING or UNKNOWN, or the error. `timeout` is the check's budget
  // (CallOptions::budget, or `options.budget` if that is shorter): every
  // attempt's deadline is clipped to what is left of it, a backoff that
  // would reach it is not slept, and running out of it returns
  // DEADLINE_EXCEEDED naming the last attempt's error (and carrying every
  // attempt, see RetryAttempts). Except when the client never got a
  // connection: if the last attempt failed UNAVAILABLE and the channel the
  // client built (not a given ClientOptions::channel) is in
  // TRANSIENT_FAILURE (a refused connection, a failed TLS handshake),
  // running out of the budget returns that UNAVAILABLE, as "Check could not
  // connect within its 5s budget (3 attempts, channel in TRANSIENT_FAILURE);
  // last error: UNAVAILABLE: ... certificate verify failed", with every
  // attempt. `options.timeout`, if shorter, bounds each attempt.
  absl::StatusOr<health::HealthCheckResponse::ServingStatus> Health(
      absl::Duration timeout = kDefaultTimeout, CallOptions options = {});

  // grpc.health.v1.Health/Watch: the serving status of `request.service()`
  // ("" = the whole server) now, then one message per change, in order,
  // until the server ends the stream, the call's deadline passes or the
  // caller cancels (StreamReader::Cancel() from any thread, or returning
  // false from `on_message`, which then returns OK). A stream like the
  // others: opening it is retried under the "Watch" policy (api_retry, else
  // the default), an error after the first message ends it, the timeout
  // defaults to kStreamTimeout and CallOptions::budget bounds it all. An
  // unknown service is a SERVICE_UNKNOWN message, not an error (gRPC's
  // health service sends it and keeps watching).
  //
  //   auto statuses = client.WatchHealth(health::HealthCheckRequest());
  //   health::HealthCheckResponse status;
  //   while (statuses->Next(&status)) {
  //     if (status.status() == health::HealthCheckResponse::NOT_SERVING) break;
  //   }
  //   statuses->Cancel();
  std::unique_ptr<StreamReader<health::HealthCheckResponse>> WatchHealth(
      const health::HealthCheckRequest& request, CallOptions options = {});
  absl::Status WatchHealth(
      const health::HealthCheckRequest& request,
      const std::function<bool(const health::HealthCheckResponse&)>& on_message,
      CallOptions options = {});

  // Waits for job `job_id` to finish, following the Python Job.wait:
  // re-opens WatchJob (with backoff) when it ends early or fails with a
  // retryable code; returns the SUCCEEDED state, JobError for FAILED,
  // JobCancelledError for CANCELLED, or JobTimeoutError after `timeout`
  // (measured on the client's Clock), cancelling the job first if asked.
  absl::StatusOr<wf::Job::State> WaitForJob(const std::string& job_id,
                                            absl::Duration timeout,
                                            WaitOptions options = {});

  // ---- Typed calls, one per RPC. ----
  CallResult<health::HealthCheckResponse> Check(
      const health::HealthCheckRequest& request, CallOptions options = {});

  // WorkflowAPI
  CallResult<wf::Workflow> UpsertWorkflow(
      const wf::UpsertWorkflowRequest& request, CallOptions options = {});
  CallResult<wf::Workflow> GetWorkflow(const wf::GetWorkflowRequest& request,
                                       CallOptions options = {});
  CallResult<wf::VersionedGraft> GetVersion(
      const wf::GetVersionRequest& request, CallOptions options = {});
  std::unique_ptr<StreamReader<wf::Workflow>> SearchWorkflows(
      const wf::SearchWorkflowsRequest& request, CallOptions options = {});
  absl::Status SearchWorkflows(
      const wf::SearchWorkflowsRequest& request,
      const std::function<bool(const wf::Workflow&)>& on_message,
      CallOptions options = {});
  CallResult<wf::Empty> DeleteWorkflow(const wf::DeleteWorkflowRequest& request,
                                       CallOptions options = {});
  CallResult<wf::WmtsUrlTemplateResponse> GetWmtsUrlTemplate(
      const wf::Empty& request, CallOptions options = {});

  // JobAPI
  CallResult<wf::Job> CreateJob(const wf::CreateJobRequest& request,
                                CallOptions options = {});
  std::unique_ptr<StreamReader<wf::Job>> ListJobs(
      const wf::ListJobsRequest& request, CallOptions options = {});
  absl::Status ListJobs(const wf::ListJobsRequest& request,
                        const std::function<bool(const wf::Job&)>& on_message,
                        CallOptions options = {});
  CallResult<wf::Job> GetJob(const wf::GetJobRequest& request,
                             CallOptions options = {});
  CallResult<wf::CancelJobResponse> CancelJob(
      const wf::CancelJobRequest& request, CallOptions options = {});
  std::unique_ptr<StreamReader<wf::Job::State>> WatchJob(
      const wf::WatchJobRequest& request, CallOptions options = {});
  absl::Status WatchJob(
      const wf::WatchJobRequest& request,
      const std::function<bool(const wf::Job::State&)>& on_message,
      CallOptions options = {});

  // XYZAPI
  CallResult<wf::XYZ> CreateXYZ(const wf::CreateXYZRequest& request,
                                CallOptions options = {});
  CallResult<wf::XYZ> GetXYZ(const wf::GetXYZRequest& request,
                             CallOptions options = {});
  std::unique_ptr<StreamReader<wf::XYZ>> ListXYZ(
      const wf::ListXYZRequest& request, CallOptions options = {});
  absl::Status ListXYZ(const wf::ListXYZRequest& request,
                       const std::function<bool(const wf::XYZ&)>& on_message,
                       CallOptions options = {});
  CallResult<google::protobuf::Empty> DeleteXYZ(
      const wf::DeleteXYZRequest& request, CallOptions options = {});
  std::unique_ptr<StreamReader<wf::XYZLogRecord>> GetXYZSessionLogs(
      const wf::GetXYZSessionLogsRequest& request, CallOptions options = {});
  absl::Status GetXYZSessionLogs(
      const wf::GetXYZSessionLogsRequest& request,
      const std::function<bool(const wf::XYZLogRecord&)>& on_message,
      CallOptions options = {});

  // AccessGrantApi
  CallResult<discover::CreateAccessGrantResponse> CreateAccessGrant(
      const discover::CreateAccessGrantRequest& request,
      CallOptions options = {});
  CallResult<discover::DeleteAccessGrantResponse> DeleteAccessGrant(
      const discover::DeleteAccessGrantRequest& request,
      CallOptions options = {});
  CallResult<discover::ListAccessGrantsResponse> ListAccessGrants(
      const discover::ListAccessGrantsRequest& request,
      CallOptions options = {});
  std::unique_ptr<StreamReader<discover::ListAccessGrantsStreamResponse>>
  ListAccessGrantsStream(const discover::ListAccessGrantsStreamRequest& request,
                         CallOptions options = {});
  absl::Status ListAccessGrantsStream(
      const discover::ListAccessGrantsStreamRequest& request,
      const std::function<
          bool(const discover::ListAccessGrantsStreamResponse&)>& on_message,
      CallOptions options = {});
  CallResult<discover::ReplaceAccessGrantResponse> ReplaceAccessGrant(
      const discover::ReplaceAccessGrantRequest& request,
      CallOptions options = {});

 private:
  // What one call needs, resolved from the options and the API table.
  struct CallPlan {
    std::string method;
    std::shared_ptr<Stubs> stubs;
    absl::Duration timeout;
    Metadata metadata;
    RetryPolicy retry;
    // CallOptions::budget as a deadline on clock_; unset without one.
    std::optional<absl::Time> budget_deadline;
    absl::Duration budget = absl::InfiniteDuration();
    std::shared_ptr<Auth> auth;
    bool plain_token = false;  // send the token as plain metadata
    bool call_token = false;   // send it through call credentials (TLS)
  };

  absl::StatusOr<std::shared_ptr<Stubs>> GetStubs();
  absl::StatusOr<CallPlan> Plan(const std::string& method, bool streaming,
                                const CallOptions& options);
  static absl::Status PrepareContext(const CallPlan& plan,
                                     grpc::ClientContext* context);
  absl::Status OpenChannelLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Health's result for `status`, the Check call's error after a `budget`:
  // UNAVAILABLE rather than DEADLINE_EXCEEDED when the channel never
  // connected (see Health).
  absl::Status ConnectFailureOrStatus(const absl::Status& status,
                                      absl::Duration budget);

  template <typename Response, typename Request, typename Invoke>
  CallResult<Response> Unary(const std::string& method, const Request& request,
                             const CallOptions& options, Invoke invoke);
  template <typename Response, typename Request, typename Start>
  std::unique_ptr<StreamReader<Response>> Stream(const std::string& method,
                                                 const Request& request,
                                                 const CallOptions& options,
                                                 Start start);

  const ClientOptions options_;
  const std::shared_ptr<Auth> auth_;
  const std::shared_ptr<Clock> clock_;
  std::map<std::string, ApiMethod> api_;

  mutable absl::Mutex mu_;
  InsecureFactory insecure_factory_ ABSL_GUARDED_BY(mu_);
  SecureFactory secure_factory_ ABSL_GUARDED_BY(mu_);
  StubFactory stub_factory_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Stubs> stubs_ ABSL_GUARDED_BY(mu_);
};

// Drains `reader` into `on_message`; returning false from it cancels the
// stream, and the result is then OK.
template <typename T>
absl::Status ForEach(StreamReader<T>& reader,
                     const std::function<bool(const T&)>& on_message) {
  T message;
  while (reader.Next(&message)) {
    if (!on_message(message)) {
      reader.Cancel();
      reader.Finish().IgnoreError();  // CANCELLED, as asked.
      return absl::OkStatus();
    }
  }
  return reader.Finish();
}

}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_CLIENT_H_
