#include "fake_server/call_logger.h"

#include <grpcpp/server_context.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/journal.h"

namespace workflows {
namespace fake {
namespace {

class CallLogger : public grpc::experimental::Interceptor {
 public:
  CallLogger(grpc::experimental::ServerRpcInfo* info, std::FILE* out)
      : info_(info), out_(out), start_(absl::Now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const std::string line = absl::StrFormat(
          "call %s peer=%s status=%s message=\"%s\" duration=%s\n",
          info_->method() != nullptr ? info_->method() : "?",
          info_->server_context()->peer(), StatusCodeName(status.error_code()),
          absl::CHexEscape(status.error_message()),
          absl::FormatDuration(absl::Now() - start_));
      std::fwrite(line.data(), 1, line.size(), out_);
      std::fflush(out_);
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* const info_;
  std::FILE* const out_;
  const absl::Time start_;
};

}  // namespace

grpc::experimental::Interceptor* CallLoggerFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new CallLogger(info, out_);
}

}  // namespace fake
}  // namespace workflows
