#ifndef WORKFLOWS_CLIENT_TEST_SERVER_H_
#define WORKFLOWS_CLIENT_TEST_SERVER_H_

// A scripted grpc++ server for the client's own tests: each RPC answers from
// a queue of replies (status, messages, initial and trailing metadata, or a
// hang until the deadline), and every call is recorded with the metadata and
// the deadline the server saw. Not the fake server: it only knows what the
// test tells it.
//
//   ScriptedServer server;
//   server.Enqueue("GetJob", {.status = grpc::Status(UNAVAILABLE, "down")});
//   ClientOptions options;
//   options.channel = server.InProcessChannel();
//   Client client(options);
//   client.GetJob(request);
//   EXPECT_EQ(server.count("GetJob"), 6);

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/errors.h"

namespace workflows {
namespace testing {

struct RecordedCall {
  std::string method;        // bare RPC name, e.g. "GetJob"
  std::string full_method;   // the path on the wire, "/package.Service/RPC"
  Metadata metadata;         // client metadata as the server saw it
  absl::Duration time_left;  // deadline - now when the call arrived
  std::string request;       // the request, serialized
};

struct Reply {
  grpc::Status status = grpc::Status::OK;
  // Unary: the response (must be the method's type); null = empty response.
  // Streams: every message, written in order before the status.
  std::vector<std::shared_ptr<google::protobuf::Message>> messages;
  Metadata initial_metadata;
  Metadata trailing_metadata;
  // Write the messages, then wait until the client's deadline (or
  // cancellation, or the server's shutdown) before returning the status.
  bool hang = false;
};

class ScriptedServer {
 public:
  ScriptedServer();
  ~ScriptedServer();

  // Starts serving on `address` (e.g. "127.0.0.1:0") with `credentials`
  // (insecure when null). Returns the bound port, or 0 on failure. The
  // in-process channel works whether or not this is called.
  int Start(const std::string& address = "127.0.0.1:0",
            std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);

  std::shared_ptr<grpc::Channel> InProcessChannel();

  // Queues a reply for the next call of `method` (bare RPC name). With an
  // empty queue, calls succeed with an empty response and no messages.
  void Enqueue(const std::string& method, Reply reply);

  std::vector<RecordedCall> calls(const std::string& method = "") const;
  int count(const std::string& method) const;

  // Releases hanging handlers and shuts the server down. Idempotent.
  void Shutdown();

  // Used by the service implementations.
  Reply Begin(grpc::ServerContext* context, const std::string& method,
              const google::protobuf::Message& request);
  void Hang(grpc::ServerContext* context);
  // Notes the path of the call on `context` (from a server interceptor,
  // which sees it before the handler runs).
  void NotePath(const grpc::ServerContextBase* context, std::string path);

 private:
  class Services;
  class PathRecorder;

  // ServerBuilder with the services and the path recorder.
  void Configure(grpc::ServerBuilder& builder);

  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
  absl::Notification release_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::deque<Reply>> replies_ ABSL_GUARDED_BY(mu_);
  std::vector<RecordedCall> calls_ ABSL_GUARDED_BY(mu_);
  // Paths of calls whose handler has not begun yet, by context.
  std::map<const grpc::ServerContextBase*, std::string> paths_
      ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// A message of type T for Reply::messages.
template <typename T>
std::shared_ptr<google::protobuf::Message> Msg(T message) {
  return std::make_shared<T>(std::move(message));
}

}  // namespace testing
}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_TEST_SERVER_H_
