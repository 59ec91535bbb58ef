#ifndef WORKFLOWS_FAKE_SERVER_CALL_LOGGER_H_
#define WORKFLOWS_FAKE_SERVER_CALL_LOGGER_H_

#include <grpcpp/support/server_interceptor.h>

#include <cstdio>

namespace workflows {
namespace fake {

// A server interceptor factory that writes one line per call to `out` when
// the call's status is sent (--log_calls of the standalone binary):
//
//   call /descarteslabs.workflows.JobAPI/GetJob peer=ipv4:127.0.0.1:5123
//   status=UNAVAILABLE message="backend restarting" duration=0.4ms
//
// (on one line). Each line is written with a single fwrite, so lines of
// concurrent calls do not interleave.
//
//   std::vector<std::unique_ptr<
//       grpc::experimental::ServerInterceptorFactoryInterface>> creators;
//   creators.push_back(std::make_unique<CallLoggerFactory>(stderr));
//   builder.experimental().SetInterceptorCreators(std::move(creators));
class CallLoggerFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallLoggerFactory(std::FILE* out) : out_(out) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  std::FILE* const out_;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_CALL_LOGGER_H_
