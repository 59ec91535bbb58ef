#include "bench/bare_server.h"

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/call_context.h"

namespace workflows {
namespace bench {
namespace {

namespace dw = descarteslabs::workflows;

constexpr char kGetJobMethod[] = "/descarteslabs.workflows.JobAPI/GetJob";

// The least a CallContext can do on top of grpc::ServerContext. Metadata is
// converted only if the handler asks for it.
class BareCallContext : public fake::CallContext {
 public:
  BareCallContext(grpc::ServerContext* context, absl::string_view method,
                  Clock* clock)
      : context_(context), method_(method), clock_(clock) {}

  absl::string_view method() const override { return method_; }
  const std::multimap<std::string, std::string>& request_metadata()
      const override {
    if (!metadata_converted_) {
      for (const auto& [key, value] : context_->client_metadata()) {
        metadata_.emplace(std::string(key.data(), key.size()),
                          std::string(value.data(), value.size()));
      }
      metadata_converted_ = true;
    }
    return metadata_;
  }
  absl::Time deadline() const override {
    const auto deadline = context_->deadline();
    if (deadline == std::chrono::system_clock::time_point::max()) {
      return absl::InfiniteFuture();
    }
    return absl::FromChrono(deadline);
  }
  std::string peer() const override { return context_->peer(); }
  bool IsDone() const override {
    return context_->IsCancelled() || absl::Now() >= deadline();
  }
  bool WaitUntilDone(absl::Duration timeout) override {
    const absl::Time end = absl::Now() + timeout;
    while (!IsDone() && absl::Now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return IsDone();
  }
  void AddInitialMetadata(const std::string& key,
                          const std::string& value) override {
    context_->AddInitialMetadata(key, value);
  }
  void AddTrailingMetadata(const std::string& key,
                           const std::string& value) override {
    context_->AddTrailingMetadata(key, value);
  }
  Clock& clock() override { return *clock_; }

 private:
  grpc::ServerContext* const context_;
  const absl::string_view method_;
  Clock* const clock_;
  mutable bool metadata_converted_ = false;
  mutable std::multimap<std::string, std::string> metadata_;
};

}  // namespace

class BareServer::JobService final : public dw::JobAPI::Service {
 public:
  JobService(fake::InMemoryBackend* backend,
             std::vector<dw::Job::State> watch_states)
      : backend_(backend), watch_states_(std::move(watch_states)) {}

  grpc::Status GetJob(grpc::ServerContext* context,
                      const dw::GetJobRequest* request,
                      dw::Job* response) override {
    BareCallContext call(context, kGetJobMethod, &backend_->clock());
    return backend_->GetJob(&call, *request, response);
  }

  grpc::Status WatchJob(grpc::ServerContext* context,
                        const dw::WatchJobRequest* request,
                        grpc::ServerWriter<dw::Job::State>* writer) override {
    for (const dw::Job::State& state : watch_states_) {
      if (!writer->Write(state)) break;
    }
    return grpc::Status::OK;
  }

 private:
  fake::InMemoryBackend* const backend_;
  const std::vector<dw::Job::State> watch_states_;
};

absl::StatusOr<std::unique_ptr<BareServer>> BareServer::Start(Options options) {
  std::unique_ptr<BareServer> server(new BareServer());
  server->backend_ = std::make_shared<fake::InMemoryBackend>();
  server->service_ = std::make_unique<JobService>(
      server->backend_.get(), std::move(options.watch_states));
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  if (options.tcp) {
    std::shared_ptr<grpc::ServerCredentials> credentials;
    if (options.tls_cert_pem.empty()) {
      credentials = grpc::InsecureServerCredentials();
    } else {
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back(
          {options.tls_key_pem, options.tls_cert_pem});
      credentials = grpc::SslServerCredentials(ssl);
    }
    builder.AddListeningPort("127.0.0.1:0", credentials, &port);
  }
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || (options.tcp && port == 0)) {
    return absl::InternalError("bare server failed to start");
  }
  if (options.tcp) server->address_ = absl::StrCat("127.0.0.1:", port);
  return server;
}

BareServer::~BareServer() { Shutdown(); }

std::shared_ptr<grpc::Channel> BareServer::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void BareServer::Shutdown() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(100));
  server_->Wait();
  server_.reset();
  backend_->WakeAll();
}

}  // namespace bench
}  // namespace workflows
