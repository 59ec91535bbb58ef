#ifndef WORKFLOWS_BENCH_BARE_SERVER_H_
#define WORKFLOWS_BENCH_BARE_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fake_server/in_memory_backend.h"
#include "proto/job.grpc.pb.h"

namespace workflows {
namespace bench {

// BareServer is the benchmarks' baseline: a plain grpc++ server with a
// generated JobAPI::Service whose GetJob calls the same handler the fake
// server's default path ends in (InMemoryBackend::GetJob) through a trivial
// CallContext, and whose WatchJob writes a fixed list of states. No script,
// no journal, no health, no adapters: whatever the fake costs on top of this
// is its overhead.
//
//   auto bare = BareServer::Start(BareServer::Options{}).value();
//   auto stub = JobAPI::NewStub(bare->InProcessChannel());
class BareServer {
 public:
  struct Options {
    // Listen on 127.0.0.1:0 (else in-process only).
    bool tcp = false;
    // With `tcp`: serve TLS with this certificate and key.
    std::string tls_cert_pem;
    std::string tls_key_pem;
    // What WatchJob streams.
    std::vector<descarteslabs::workflows::Job::State> watch_states;
  };

  static absl::StatusOr<std::unique_ptr<BareServer>> Start(Options options);
  ~BareServer();

  fake::InMemoryBackend& backend() { return *backend_; }
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // "127.0.0.1:<port>" when listening on TCP.
  const std::string& address() const { return address_; }
  void Shutdown();

 private:
  class JobService;
  BareServer() = default;

  std::shared_ptr<fake::InMemoryBackend> backend_;
  std::unique_ptr<JobService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace bench
}  // namespace workflows

#endif  // WORKFLOWS_BENCH_BARE_SERVER_H_
