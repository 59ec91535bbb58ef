#include "client/client.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/warning_sink.h"
#include "google/protobuf/descriptor.h"

namespace workflows {
namespace {

constexpr const char* kCaBundleVariables[] = {
    "GRPC_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"};

std::string GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

absl::Status ValidatePem(const std::string& pem, absl::string_view source) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     " is not a valid PEM certificate bundle (no X.509 "
                     "certificate could be read)"));
  }
  X509_free(cert);
  return absl::OkStatus();
}

// Metadata keys are HTTP/2 header names: lower-case token characters.
absl::Status ValidateMetadata(const std::string& key,
                              const std::string& value) {
  if (key.empty()) return absl::InvalidArgumentError("empty metadata key");
  for (char c : key) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' ||
          c == '_' || c == '.')) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid metadata key \"", absl::CEscape(key),
                       "\": only a-z, 0-9, '-', '_' and '.' are allowed"));
    }
  }
  if (absl::StartsWith(key, "grpc-")) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key \"", key, "\" is reserved by gRPC"));
  }
  if (!absl::EndsWith(key, "-bin")) {
    for (char c : value) {
      if (c < 0x20 || c > 0x7e) {
        return absl::InvalidArgumentError(absl::StrCat(
            "invalid value for metadata key \"", key,
            "\": only printable ASCII is allowed (use a -bin key for bytes)"));
      }
    }
  }
  return absl::OkStatus();
}

// dict(a + b + ...) in Python: later keys win, order of first appearance.
absl::StatusOr<Metadata> MergeMetadata(const std::vector<const Metadata*>& in) {
  Metadata out;
  for (const Metadata* metadata : in) {
    for (const auto& [raw_key, value] : *metadata) {
      std::string key = absl::AsciiStrToLower(raw_key);
      absl::Status valid = ValidateMetadata(key, value);
      if (!valid.ok()) return valid;
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const auto& kv) { return kv.first == key; });
      if (it != out.end()) {
        it->second = value;
      } else {
        out.emplace_back(key, value);
      }
    }
  }
  return out;
}

absl::Duration DefaultTimeoutFor(const std::string& name, bool streaming) {
  // The Python model code lists readers with the unary timeout.
  if (name == "ListAccessGrantsStream") return Client::kDefaultTimeout;
  return streaming ? Client::kStreamTimeout : Client::kDefaultTimeout;
}

// gRPC serializes a request only after it started the call, and then
// neither receives the server's metadata (unary; reading it would abort)
// nor survives it (streams assert). Protobuf cannot serialize past 2 GiB.
absl::Status CheckRequestSize(absl::string_view method,
                              const google::protobuf::Message& request) {
  if (request.ByteSizeLong() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", method, " request is ", request.ByteSizeLong(),
                     " bytes; protobuf cannot serialize more than 2 GiB"));
  }
  return absl::OkStatus();
}

void LogWarning(absl::string_view method, absl::string_view warning) {
  EmitWarning(absl::StrCat("Workflows warning (", method, "): ", warning));
}

absl::Mutex default_client_mu(absl::kConstInit);
std::shared_ptr<Client>* default_client ABSL_GUARDED_BY(default_client_mu) =
    nullptr;

}  // namespace

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      auth_(options_.auth ? options_.auth : Auth::GetDefault()),
      clock_(options_.clock ? options_.clock : Clock::Real()),
      insecure_factory_(&Client::InsecureChannelFactory),
      secure_factory_(&Client::SecureChannelFactory),
      stub_factory_(&Client::DefaultStubFactory) {
  const google::protobuf::DescriptorPool* pool =
      google::protobuf::DescriptorPool::generated_pool();
  struct Service {
    std::string name;
    std::vector<std::string> only;  // empty: every method
  };
  const std::vector<Service> services = {
      {"grpc.health.v1.Health", {"Check"}},
      {wf::WorkflowAPI::service_full_name(), {}},
      {wf::JobAPI::service_full_name(), {}},
      {wf::XYZAPI::service_full_name(), {}},
      {discover::AccessGrantApi::service_full_name(),
       {"CreateAccessGrant", "DeleteAccessGrant", "ListAccessGrantsStream"}},
  };
  for (const Service& service : services) {
    const google::protobuf::ServiceDescriptor* descriptor =
        pool->FindServiceByName(service.name);
    if (descriptor == nullptr) continue;  // Linked in by the stubs' headers.
    for (int i = 0; i < descriptor->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* method = descriptor->method(i);
      if (!service.only.empty() &&
          std::find(service.only.begin(), service.only.end(), method->name()) ==
              service.only.end()) {
        continue;
      }
      ApiMethod entry;
      entry.name = method->name();
      entry.full_name = absl::StrCat("/", service.name, "/", method->name());
      entry.server_streaming = method->server_streaming();
      entry.default_timeout =
          DefaultTimeoutFor(entry.name, entry.server_streaming);
      if (auto it = options_.api_retry.find(entry.name);
          it != options_.api_retry.end()) {
        entry.retry = it->second;
      } else if (entry.name == "CreateJob") {
        entry.retry = RetryPolicy::CreateJob(std::nullopt);
      } else {
        entry.retry = options_.default_retry.value_or(RetryPolicy::Default());
      }
      if (auto it = options_.api_metadata.find(entry.name);
          it != options_.api_metadata.end()) {
        entry.metadata = it->second;
      }
      api_[entry.name] = std::move(entry);
    }
  }
}

Client::~Client() = default;

std::shared_ptr<grpc::Channel> Client::InsecureChannelFactory(
    const std::string& target, const grpc::ChannelArguments& arguments,
    grpc_compression_algorithm compression) {
  grpc::ChannelArguments args = arguments;
  args.SetCompressionAlgorithm(compression);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

std::shared_ptr<grpc::Channel> Client::SecureChannelFactory(
    const std::string& target,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& arguments,
    grpc_compression_algorithm compression) {
  grpc::ChannelArguments args = arguments;
  args.SetCompressionAlgorithm(compression);
  return grpc::CreateCustomChannel(target, credentials, args);
}

std::shared_ptr<Client::Stubs> Client::DefaultStubFactory(
    const std::shared_ptr<grpc::Channel>& channel) {
  auto stubs = std::make_shared<Stubs>();
  stubs->health = health::Health::NewStub(channel);
  stubs->workflow = wf::WorkflowAPI::NewStub(channel);
  stubs->job = wf::JobAPI::NewStub(channel);
  stubs->xyz = wf::XYZAPI::NewStub(channel);
  stubs->access_grant = discover::AccessGrantApi::NewStub(channel);
  return stubs;
}

void Client::set_insecure_channel_factory(InsecureFactory factory) {
  absl::MutexLock lock(&mu_);
  insecure_factory_ = std::move(factory);
}

void Client::set_secure_channel_factory(SecureFactory factory) {
  absl::MutexLock lock(&mu_);
  secure_factory_ = std::move(factory);
}

void Client::set_stub_factory(StubFactory factory) {
  absl::MutexLock lock(&mu_);
  stub_factory_ = std::move(factory);
  stubs_.reset();
}

absl::StatusOr<std::string> Client::target() const {
  std::string host = options_.host;
  if (host.empty()) host = GetEnv("DESCARTESLABS_WORKFLOWS_HOST");
  if (host.empty()) host = kDefaultHost;
  for (char c : host) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        !absl::ascii_isprint(static_cast<unsigned char>(c)) || c == '/' ||
        c == '@' || c == '?' || c == '#') {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid Workflows host \"", absl::CEscape(host),
          "\": expected a host name or IP address without scheme or path"));
    }
  }
  size_t colons = std::count(host.begin(), host.end(), ':');
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid Workflows host \"", host, "\": unbalanced brackets"));
    }
  } else if (colons == 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid Workflows host \"", host,
        "\": give the port separately (ClientOptions::port), not in the host"));
  } else if (colons > 1) {
    host = absl::StrCat("[", host, "]");  // A bare IPv6 address.
  }

  int port = options_.port;
  if (port == 0) {
    std::string env = GetEnv("DESCARTESLABS_WORKFLOWS_PORT");
    if (!env.empty() && !absl::SimpleAtoi(env, &port)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid DESCARTESLABS_WORKFLOWS_PORT \"", env, "\": not a number"));
    }
  }
  if (port == 0) port = options_.use_insecure_channel ? 8000 : 443;
  if (port < 1 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid Workflows port ", port, ": must be in 1..65535"));
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::string> Client::certificate() const {
  if (!options_.certificate.empty()) {
    absl::Status valid =
        ValidatePem(options_.certificate, "ClientOptions::certificate");
    if (!valid.ok()) return valid;
    return options_.certificate;
  }
  for (const char* variable : kCaBundleVariables) {
    std::string path = GetEnv(variable);
    if (path.empty()) continue;
    std::ifstream file(path, std::ios::binary);
    std::stringstream contents;
    contents << file.rdbuf();
    if (!file.good() && !file.eof()) {
      return absl::NotFoundError(absl::StrCat("cannot read the CA bundle \"",
                                              path, "\" named by $", variable));
    }
    if (!file.is_open()) {
      return absl::NotFoundError(absl::StrCat("cannot read the CA bundle \"",
                                              path, "\" named by $", variable));
    }
    std::string pem = contents.str();
    absl::Status valid = ValidatePem(
        pem, absl::StrCat("the CA bundle \"", path, "\" named by $", variable));
    if (!valid.ok()) return valid;
    return pem;
  }
  return std::string();  // gRPC's default roots: the system trust store.
}

absl::StatusOr<std::string> Client::token() const { return auth_->Token(); }

absl::Status Client::OpenChannelLocked() {
  if (channel_ != nullptr) return absl::OkStatus();
  if (options_.channel != nullptr) {
    channel_ = options_.channel;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> target = this->target();
  if (!target.ok()) return target.status();
  grpc::ChannelArguments args = options_.channel_arguments;
  // The HTTP/2 transport replaces any user-agent metadata with this.
  args.SetUserAgentPrefix(options_.user_agent);
  std::shared_ptr<grpc::Channel> channel;
  if (options_.use_insecure_channel) {
    channel = insecure_factory_(*target, args, options_.compression);
  } else {
    absl::StatusOr<std::string> roots = certificate();
    if (!roots.ok()) return roots.status();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *roots;
    std::shared_ptr<grpc::ChannelCredentials> credentials =
        grpc::SslCredentials(ssl);  // The token is added per call.
    channel = secure_factory_(*target, credentials, args, options_.compression);
  }
  if (channel == nullptr) {
    return absl::InternalError(
        absl::StrCat("the channel factory returned no channel for ", *target));
  }
  channel_ = std::move(channel);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Client::channel() {
  absl::MutexLock lock(&mu_);
  absl::Status opened = OpenChannelLocked();
  if (!opened.ok()) return opened;
  return channel_;
}

absl::StatusOr<std::shared_ptr<Client::Stubs>> Client::GetStubs() {
  absl::MutexLock lock(&mu_);
  if (stubs_ != nullptr) return stubs_;
  absl::Status opened = OpenChannelLocked();
  if (!opened.ok()) return opened;
  std::shared_ptr<Stubs> stubs = stub_factory_(channel_);
  if (stubs == nullptr) {
    return absl::InternalError("the stub factory returned no stubs");
  }
  stubs_ = std::move(stubs);
  return stubs_;
}

void Client::Close() {
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<Stubs> stubs;
  {
    absl::MutexLock lock(&mu_);
    channel = std::move(channel_);
    stubs = std::move(stubs_);
    channel_ = nullptr;
    stubs_ = nullptr;
  }
  // Released outside the lock: the last reference may block briefly.
}

std::shared_ptr<Client> Client::GetDefaultClient() {
  absl::MutexLock lock(&default_client_mu);
  if (default_client == nullptr) {
    default_client = new std::shared_ptr<Client>(std::make_shared<Client>());
  } else if (*default_client == nullptr) {
    *default_client = std::make_shared<Client>();
  }
  return *default_client;
}

void Client::SetDefaultClient(std::shared_ptr<Client> client) {
  // The replaced client is destroyed here, after the lock is released.
  ExchangeDefaultClient(std::move(client));
}

std::shared_ptr<Client> Client::ExchangeDefaultClient(
    std::shared_ptr<Client> client) {
  absl::MutexLock lock(&default_client_mu);
  if (default_client == nullptr) {
    default_client = new std::shared_ptr<Client>(std::move(client));
    return nullptr;
  }
  std::shared_ptr<Client> previous = std::move(*default_client);
  *default_client = std::move(client);
  return previous;
}

absl::StatusOr<Client::CallPlan> Client::Plan(const std::string& method,
                                              bool streaming,
                                              const CallOptions& options) {
  if (options.timeout.has_value() && *options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout of ", method, " must be positive, got ",
                     absl::FormatDuration(*options.timeout)));
  }
  if (options.budget.has_value() && *options.budget <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("budget of ", method, " must be positive, got ",
                     absl::FormatDuration(*options.budget)));
  }
  if (options.num_retries.has_value()) {
    if (method != "CreateJob") {
      return absl::InvalidArgumentError(
          absl::StrCat("num_retries applies only to CreateJob, not ", method));
    }
    if (*options.num_retries < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("num_retries must be >= 0, got ", *options.num_retries));
    }
  }
  CallPlan plan;
  plan.method = method;
  plan.auth = auth_;

  ApiMethod fallback;
  const ApiMethod* api = nullptr;
  if (auto it = api_.find(method); it != api_.end()) {
    api = &it->second;
  } else {
    // Typed RPCs outside the Python client's table (ListAccessGrants,
    // ReplaceAccessGrant) get the same defaults.
    fallback.name = method;
    fallback.server_streaming = streaming;
    fallback.default_timeout = DefaultTimeoutFor(method, streaming);
    auto retry = options_.api_retry.find(method);
    fallback.retry =
        retry != options_.api_retry.end()
            ? retry->second
            : options_.default_retry.value_or(RetryPolicy::Default());
    if (auto it = options_.api_metadata.find(method);
        it != options_.api_metadata.end()) {
      fallback.metadata = it->second;
    }
    api = &fallback;
  }
  plan.timeout = options.timeout.value_or(api->default_timeout);
  if (options.retry.has_value()) {
    plan.retry = *options.retry;
  } else if (options.num_retries.has_value()) {
    plan.retry = RetryPolicy::CreateJob(options.num_retries);
  } else {
    plan.retry = api->retry;
  }
  if (plan.retry.max_server_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RetryPolicy::max_server_delay of ", method, " must be >= 0, got ",
        absl::FormatDuration(plan.retry.max_server_delay)));
  }
  if (options.budget.has_value() &&
      *options.budget != absl::InfiniteDuration()) {
    plan.budget = *options.budget;
    plan.budget_deadline = clock_->Now() + *options.budget;
  }

  const Metadata base = {{"x-wf-channel", options_.workflows_channel},
                         {"user-agent", options_.user_agent}};
  Metadata on_behalf_of;
  if (options.on_behalf_of.has_value()) {
    on_behalf_of.emplace_back("x-on-behalf-of-user", *options.on_behalf_of);
  }
  absl::StatusOr<Metadata> metadata =
      MergeMetadata({&base, &options_.default_metadata, &api->metadata,
                     &on_behalf_of, &options.metadata});
  if (!metadata.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(method, ": ", metadata.status().message()));
  }
  plan.metadata = *std::move(metadata);

  const bool built_secure =
      options_.channel == nullptr && !options_.use_insecure_channel;
  plan.plain_token = options_.send_token_on_insecure_channel && !built_secure;
  plan.call_token =
      !plan.plain_token && (built_secure || (options_.channel != nullptr &&
                                             options_.channel_is_secure));

  absl::StatusOr<std::shared_ptr<Stubs>> stubs = GetStubs();
  if (!stubs.ok()) return stubs.status();
  plan.stubs = *std::move(stubs);
  return plan;
}

absl::Status Client::PrepareContext(const CallPlan& plan,
                                    grpc::ClientContext* context) {
  // Deadlines past ~100 years are treated as none (and cannot overflow).
  if (plan.timeout < absl::Hours(24 * 365 * 100)) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(plan.timeout));
  }
  for (const auto& [key, value] : plan.metadata) {
    context->AddMetadata(key, value);
  }
  if (plan.plain_token || plan.call_token) {
    // Fetched here rather than in a channel-wide plugin: gRPC would turn a
    // plugin's error into a retryable UNAVAILABLE.
    absl::StatusOr<std::string> token = plan.auth->Token();
    if (!token.ok()) return token.status();
    if (plan.plain_token) {
      context->AddMetadata("authorization", absl::StrCat("Bearer ", *token));
    } else {
      context->set_credentials(BearerTokenCredentials(*std::move(token)));
    }
  }
  return absl::OkStatus();
}

template <typename Response, typename Request, typename Invoke>
CallResult<Response> Client::Unary(const std::string& method,
                                   const Request& request,
                                   const CallOptions& options, Invoke invoke) {
  absl::Status sizable = CheckRequestSize(method, request);
  if (!sizable.ok()) return CallResult<Response>(sizable);
  absl::StatusOr<CallPlan> plan = Plan(method, false, options);
  if (!plan.ok()) return CallResult<Response>(plan.status());
  Retrier retrier(plan->retry, clock_, method);
  if (plan->budget_deadline.has_value()) {
    retrier.set_deadline(*plan->budget_deadline, plan->budget);
  }
  const absl::Duration attempt_timeout = plan->timeout;
  std::vector<std::string> warnings;
  while (true) {
    const absl::Duration left = retrier.TimeLeft();
    if (left <= absl::ZeroDuration()) {
      return CallResult<Response>(retrier.OutOfTime(), std::move(warnings));
    }
    plan->timeout = std::min(attempt_timeout, left);
    grpc::ClientContext context;
    absl::Status prepared = PrepareContext(*plan, &context);
    if (!prepared.ok()) {
      return CallResult<Response>(retrier.EndedEarly(prepared),
                                  std::move(warnings));
    }
    Response response;
    grpc::Status status = invoke(*plan->stubs, &context, request, &response);
    Metadata trailers;
    if (ServerMetadataReadable(&context,
                               plan->stubs->injected_server_metadata)) {
      for (std::string& warning :
           ParseWarnings(ToMetadata(context.GetServerInitialMetadata()))) {
        LogWarning(method, warning);
        warnings.push_back(std::move(warning));
      }
      trailers = ToMetadata(context.GetServerTrailingMetadata());
    }
    if (status.ok()) {
      return CallResult<Response>(std::move(response), std::move(warnings));
    }
    absl::Status next = retrier.OnFailure(FromGrpcStatus(status, trailers));
    if (!next.ok()) return CallResult<Response>(next, std::move(warnings));
  }
}

template <typename Response, typename Request, typename Start>
std::unique_ptr<StreamReader<Response>> Client::Stream(
    const std::string& method, const Request& request,
    const CallOptions& options, Start start) {
  absl::Status sizable = CheckRequestSize(method, request);
  if (!sizable.ok()) return std::make_unique<StreamReader<Response>>(sizable);
  absl::StatusOr<CallPlan> plan = Plan(method, true, options);
  if (!plan.ok()) {
    return std::make_unique<StreamReader<Response>>(plan.status());
  }
  auto shared_plan = std::make_shared<const CallPlan>(*std::move(plan));
  auto shared_request = std::make_shared<const Request>(request);
  return std::make_unique<StreamReader<Response>>(
      method,
      [shared_plan](grpc::ClientContext* context) {
        return PrepareContext(*shared_plan, context);
      },
      [shared_plan, shared_request, start](grpc::ClientContext* context) {
        return start(*shared_plan->stubs, context, *shared_request);
      },
      shared_plan->retry, clock_, shared_plan->stubs->injected_server_metadata,
      shared_plan->budget_deadline.has_value()
          ? std::optional<StreamBudget>(StreamBudget{
                *shared_plan->budget_deadline, shared_plan->budget})
          : std::nullopt);
}

#define WORKFLOWS_UNARY(STUB, METHOD, REQUEST, RESPONSE)                   \
  CallResult<RESPONSE> Client::METHOD(const REQUEST& request,              \
                                      CallOptions options) {               \
    return Unary<RESPONSE>(                                                \
        #METHOD, request, options,                                         \
        [](Stubs& stubs, grpc::ClientContext* context, const REQUEST& req, \
           RESPONSE* response) {                                           \
          if (stubs.STUB == nullptr) {                                     \
            return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,           \
                                "no stub for " #METHOD);                   \
          }                                                                \
          return stubs.STUB->METHOD(context, req, response);               \
        });                                                                \
  }

#define WORKFLOWS_STREAM(STUB, METHOD, REQUEST, RESPONSE)                  \
  std::unique_ptr<StreamReader<RESPONSE>> Client::METHOD(                  \
      const REQUEST& request, CallOptions options) {                       \
    return Stream<RESPONSE>(                                               \
        #METHOD, request, options,                                         \
        [](Stubs& stubs, grpc::ClientContext* context, const REQUEST& req) \
            -> std::unique_ptr<grpc::ClientReaderInterface<RESPONSE>> {    \
          if (stubs.STUB == nullptr) return nullptr;                       \
          return stubs.STUB->METHOD(context, req);                         \
        });                                                                \
  }                                                                        \
  absl::Status Client::METHOD(                                             \
      const REQUEST& request,                                              \
      const std::function<bool(const RESPONSE&)>& on_message,              \
      CallOptions options) {                                               \
    std::unique_ptr<StreamReader<RESPONSE>> reader =                       \
        METHOD(request, std::move(options));                               \
    return ForEach(*reader, on_message);                                   \
  }

WORKFLOWS_UNARY(health, Check, health::HealthCheckRequest,
                health::HealthCheckResponse)
WORKFLOWS_UNARY(workflow, UpsertWorkflow, wf::UpsertWorkflowRequest,
                wf::Workflow)
WORKFLOWS_UNARY(workflow, GetWorkflow, wf::GetWorkflowRequest, wf::Workflow)
WORKFLOWS_UNARY(workflow, GetVersion, wf::GetVersionRequest, wf::VersionedGraft)
WORKFLOWS_STREAM(workflow, SearchWorkflows, wf::SearchWorkflowsRequest,
                 wf::Workflow)
WORKFLOWS_UNARY(workflow, DeleteWorkflow, wf::DeleteWorkflowRequest, wf::Empty)
WORKFLOWS_UNARY(workflow, GetWmtsUrlTemplate, wf::Empty,
                wf::WmtsUrlTemplateResponse)
WORKFLOWS_UNARY(job, CreateJob, wf::CreateJobRequest, wf::Job)
WORKFLOWS_STREAM(job, ListJobs, wf::ListJobsRequest, wf::Job)
WORKFLOWS_UNARY(job, GetJob, wf::GetJobRequest, wf::Job)
WORKFLOWS_UNARY(job, CancelJob, wf::CancelJobRequest, wf::CancelJobResponse)
WORKFLOWS_STREAM(job, WatchJob, wf::WatchJobRequest, wf::Job::State)
WORKFLOWS_UNARY(xyz, CreateXYZ, wf::CreateXYZRequest, wf::XYZ)
WORKFLOWS_UNARY(xyz, GetXYZ, wf::GetXYZRequest, wf::XYZ)
WORKFLOWS_STREAM(xyz, ListXYZ, wf::ListXYZRequest, wf::XYZ)
WORKFLOWS_UNARY(xyz, DeleteXYZ, wf::DeleteXYZRequest, google::protobuf::Empty)
WORKFLOWS_STREAM(xyz, GetXYZSessionLogs, wf::GetXYZSessionLogsRequest,
                 wf::XYZLogRecord)
WORKFLOWS_UNARY(access_grant, CreateAccessGrant,
                discover::CreateAccessGrantRequest,
                discover::CreateAccessGrantResponse)
WORKFLOWS_UNARY(access_grant, DeleteAccessGrant,
                discover::DeleteAccessGrantRequest,
                discover::DeleteAccessGrantResponse)
WORKFLOWS_UNARY(access_grant, ListAccessGrants,
                discover::ListAccessGrantsRequest,
                discover::ListAccessGrantsResponse)
WORKFLOWS_STREAM(access_grant, ListAccessGrantsStream,
                 discover::ListAccessGrantsStreamRequest,
                 discover::ListAccessGrantsStreamResponse)
WORKFLOWS_UNARY(access_grant, ReplaceAccessGrant,
                discover::ReplaceAccessGrantRequest,
                discover::ReplaceAccessGrantResponse)

#undef WORKFLOWS_UNARY
#undef WORKFLOWS_STREAM

absl::StatusOr<health::HealthCheckResponse::ServingStatus> Client::Health(
    absl::Duration timeout, CallOptions options) {
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("health check timeout must be positive, got ",
                     absl::FormatDuration(timeout)));
  }
  // One budget for the whole probe, like grpc_health_probe's timeout: a
  // per-attempt timeout alone lets the default retries (and their backoff)
  // run ~6x past it against a dead server.
  options.timeout = std::min(options.timeout.value_or(timeout), timeout);
  options.budget = std::min(options.budget.value_or(timeout), timeout);
  CallResult<health::HealthCheckResponse> response =
      Unary<health::HealthCheckResponse>(
          "Check", health::HealthCheckRequest(), options,
          [](Stubs& stubs, grpc::ClientContext* context,
             const health::HealthCheckRequest& request,
             health::HealthCheckResponse* out) {
            if (stubs.health == nullptr) {
              return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                  "no stub for Check");
            }
            return stubs.health->Check(context, request, out);
          });
  if (!response.ok()) {
    return ConnectFailureOrStatus(response.status(), *options.budget);
  }
  return response->status();
}

std::unique_ptr<StreamReader<health::HealthCheckResponse>> Client::WatchHealth(
    const health::HealthCheckRequest& request, CallOptions options) {
  // "Watch" keys its retry policy and metadata (api_retry, api_metadata).
  return Stream<health::HealthCheckResponse>(
      "Watch", request, options,
      [](Stubs& stubs, grpc::ClientContext* context,
         const health::HealthCheckRequest& req)
          -> std::unique_ptr<
              grpc::ClientReaderInterface<health::HealthCheckResponse>> {
        if (stubs.health == nullptr) return nullptr;
        return stubs.health->Watch(context, req);
      });
}

absl::Status Client::WatchHealth(
    const health::HealthCheckRequest& request,
    const std::function<bool(const health::HealthCheckResponse&)>& on_message,
    CallOptions options) {
  std::unique_ptr<StreamReader<health::HealthCheckResponse>> reader =
      WatchHealth(request, std::move(options));
  return ForEach(*reader, on_message);
}

absl::Status Client::ConnectFailureOrStatus(const absl::Status& status,
                                            absl::Duration budget) {
  if (status.code() != absl::StatusCode::kDeadlineExceeded) return status;
  const std::vector<absl::Status> attempts = RetryAttempts(status);
  if (attempts.empty() ||
      attempts.back().code() != absl::StatusCode::kUnavailable) {
    return status;
  }
  // Only a channel the client built: a given ClientOptions::channel may be
  // in-process, whose state gRPC cannot report (it logs an error instead).
  if (options_.channel != nullptr) return status;
  std::shared_ptr<grpc::Channel> channel;
  {
    absl::MutexLock lock(&mu_);
    channel = channel_;
  }
  // TRANSIENT_FAILURE: the channel's last connection attempt failed (refused,
  // or the TLS handshake failed) and it has not been READY since. A server
  // that answered UNAVAILABLE itself leaves the channel READY.
  if (channel == nullptr || channel->GetState(/*try_to_connect=*/false) !=
                                GRPC_CHANNEL_TRANSIENT_FAILURE) {
    return status;
  }
  absl::Status unavailable(
      absl::StatusCode::kUnavailable,
      absl::StrFormat("Check could not connect within its %s budget (%d "
                      "attempts, channel in TRANSIENT_FAILURE); last error: "
                      "UNAVAILABLE: %s",
                      absl::FormatDuration(budget), attempts.size(),
                      attempts.back().message()));
  status.ForEachPayload(
      [&](absl::string_view type_url, const absl::Cord& payload) {
        unavailable.SetPayload(type_url, payload);
      });
  return unavailable;
}

absl::StatusOr<wf::Job::State> Client::WaitForJob(const std::string& job_id,
                                                  absl::Duration timeout,
                                                  WaitOptions options) {
  if (timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("WaitForJob timeout must be positive, got ",
                     absl::FormatDuration(timeout)));
  }
  if (options.call.num_retries.has_value()) {
    return absl::InvalidArgumentError(
        "num_retries applies only to CreateJob, not WaitForJob");
  }
  const absl::Time deadline = clock_->Now() + timeout;
  // Re-opening backs off like a retried call, so that a server ending the
  // stream at once cannot make this spin; the time spent counts against
  // `timeout`.
  const RetryPolicy reopen_policy =
      options.call.retry.value_or(api_.at("WatchJob").retry);
  const std::set<absl::StatusCode> reopen_codes =
      RetryPolicy::Default().retryable_codes;
  Backoff backoff(reopen_policy);

  auto timed_out = [&]() -> absl::Status {
    absl::Status error = JobTimeoutError(job_id, timeout);
    if (options.cancel_on_timeout) {
      CallOptions cancel_options = options.call;
      cancel_options.timeout.reset();
      wf::CancelJobRequest cancel;
      cancel.set_id(job_id);
      CallResult<wf::CancelJobResponse> cancelled =
          CancelJob(cancel, cancel_options);
      if (!cancelled.ok()) {
        error = absl::DeadlineExceededError(absl::StrCat(
            error.message(),
            "; cancelling it failed: ", cancelled.status().ToString()));
      }
    }
    return error;
  };

  CallOptions watch_options = options.call;
  watch_options.retry = RetryPolicy::None();  // Re-opening is done here.
  watch_options.budget.reset();               // `timeout` bounds it all.
  wf::WatchJobRequest request;
  request.set_id(job_id);
  while (true) {
    absl::Duration remaining = deadline - clock_->Now();
    if (remaining <= absl::ZeroDuration()) return timed_out();
    watch_options.timeout = std::min(remaining, kStreamTimeout);
    std::unique_ptr<StreamReader<wf::Job::State>> states =
        WatchJob(request, watch_options);
    wf::Job::State state;
    bool received = false;
    while (states->Next(&state)) {
      received = true;
      if (options.on_state) options.on_state(state);
      switch (state.stage()) {
        case wf::Job::SUCCEEDED:
          states->Cancel();
          return state;
        case wf::Job::FAILED:
          states->Cancel();
          return JobError(job_id, state.error());
        case wf::Job::CANCELLED:
          states->Cancel();
          return JobCancelledError(job_id);
        default:
          break;
      }
    }
    absl::Status status = states->Finish();
    if (status.code() == absl::StatusCode::kDeadlineExceeded) {
      return timed_out();
    }
    if (!status.ok() && reopen_codes.count(status.code()) == 0) return status;
    if (received) backoff.Reset();
    remaining = deadline - clock_->Now();
    if (remaining <= absl::ZeroDuration()) return timed_out();
    clock_->SleepFor(std::min(backoff.Next(), remaining));
  }
}

}  // namespace workflows
