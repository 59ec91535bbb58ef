// Hostile input against the standalone binary: garbage, the wrong protocol,
// oversized messages, unknown methods and idle half-open connections. After
// each, the server must still answer health SERVING and serve good calls.
// Raw sockets go to 127.0.0.1 only.

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/job.grpc.pb.h"
#include "proto/workflow.grpc.pb.h"
#include "tests/scenarios/server_process.h"

namespace workflows {
namespace testing {
namespace {

namespace wf = ::descarteslabs::workflows;
using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

constexpr char kHttp2Preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// A TCP connection to 127.0.0.1:port with a receive timeout, closed on
// destruction.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address),
                         sizeof(address)) == 0;
    timeval timeout{.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }

  // False if the server closed the connection before all was written.
  bool Send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n =
          send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  void ShutdownWrite() { shutdown(fd_, SHUT_WR); }

  // Reads until the server closes the connection (true) or the 5 s receive
  // timeout passes (false).
  bool ReadUntilClosed(std::string* received) {
    char buffer[4096];
    for (;;) {
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
      received->append(buffer, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 generator(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(generator() & 0xff);
  return bytes;
}

// A TLS 1.2 ClientHello record (random, one cipher suite, no extensions).
std::string TlsClientHello() {
  std::string body;
  body += std::string("\x03\x03", 2);              // client_version TLS 1.2
  body += RandomBytes(32, 7);                      // random
  body += std::string("\x00", 1);                  // session_id length
  body += std::string("\x00\x02\xc0\x2f", 4);      // cipher suites
  body += std::string("\x01\x00", 2);              // compression: null
  body += std::string("\x00\x00", 2);              // extensions length
  std::string handshake = std::string("\x01", 1);  // ClientHello
  handshake += static_cast<char>(0);
  handshake += static_cast<char>(body.size() >> 8);
  handshake += static_cast<char>(body.size() & 0xff);
  handshake += body;
  std::string record("\x16\x03\x01", 3);  // handshake record, TLS 1.0
  record += static_cast<char>(handshake.size() >> 8);
  record += static_cast<char>(handshake.size() & 0xff);
  return record + handshake;
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(std::vector<std::string> args) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> started =
        ServerProcess::Start(args);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    absl::StatusOr<ProcessResult> stopped = server_->Stop(SIGTERM);
    ASSERT_TRUE(stopped.ok()) << stopped.status();
    EXPECT_EQ(stopped->exit_code, 0) << stopped->stderr_text;
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    return context;
  }

  // Health SERVING, and a workflow round trip, on `channel` (default: a
  // fresh plaintext channel).
  void ExpectStillServing(std::shared_ptr<grpc::Channel> channel = nullptr) {
    if (channel == nullptr) {
      grpc::ChannelArguments fresh;
      fresh.SetInt("hostile_test_fresh_channel", ++fresh_channels_);
      channel = grpc::CreateCustomChannel(
          server_->address(), grpc::InsecureChannelCredentials(), fresh);
    }
    HealthCheckResponse health;
    grpc::Status checked = Health::NewStub(channel)->Check(
        Context().get(), HealthCheckRequest(), &health);
    ASSERT_TRUE(checked.ok()) << checked.error_message();
    EXPECT_EQ(health.status(), HealthCheckResponse::SERVING);

    auto workflows = wf::WorkflowAPI::NewStub(channel);
    wf::UpsertWorkflowRequest upsert;
    upsert.set_id("hostile@example.com:survivor");
    upsert.set_title("still here");
    wf::VersionedGraft* graft = upsert.add_versioned_grafts();
    graft->set_version("1.0.0");
    graft->set_serialized_graft(R"({"returns": 1})");
    wf::Workflow upserted;
    grpc::Status up =
        workflows->UpsertWorkflow(Context().get(), upsert, &upserted);
    ASSERT_TRUE(up.ok()) << up.error_message();
    wf::GetWorkflowRequest get;
    get.set_id("hostile@example.com:survivor");
    wf::Workflow got;
    grpc::Status fetched = workflows->GetWorkflow(Context().get(), get, &got);
    ASSERT_TRUE(fetched.ok()) << fetched.error_message();
    EXPECT_EQ(got.title(), "still here");
  }

  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  int fresh_channels_ = 0;
};

TEST_F(HostileInputTest, RandomBytesAreDroppedAndTheConnectionClosed) {
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    RawConnection connection(server_->port());
    ASSERT_TRUE(connection.connected());
    connection.Send(RandomBytes(64 * 1024, seed));
    std::string received;
    EXPECT_TRUE(connection.ReadUntilClosed(&received))
        << "the server kept a garbage connection open (seed " << seed << ")";
  }
  ExpectStillServing();
}

TEST_F(HostileInputTest, PrefaceThenRandomFramesAreDropped) {
  RawConnection connection(server_->port());
  ASSERT_TRUE(connection.connected());
  connection.Send(std::string(kHttp2Preface) + RandomBytes(16 * 1024, 42));
  std::string received;
  EXPECT_TRUE(connection.ReadUntilClosed(&received));
  ExpectStillServing();
}

TEST_F(HostileInputTest, Http1RequestIsRefused) {
  RawConnection connection(server_->port());
  ASSERT_TRUE(connection.connected());
  connection.Send(
      "GET /descarteslabs.workflows.JobAPI/GetJob HTTP/1.1\r\n"
      "Host: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n");
  std::string received;
  EXPECT_TRUE(connection.ReadUntilClosed(&received));
  // Whatever came back is not an HTTP/1.1 success.
  EXPECT_THAT(received, ::testing::Not(HasSubstr("HTTP/1.1 200")));
  ExpectStillServing();
}

TEST_F(HostileInputTest, TlsClientHelloToThePlaintextPortIsRefused) {
  RawConnection connection(server_->port());
  ASSERT_TRUE(connection.connected());
  connection.Send(TlsClientHello());
  std::string received;
  EXPECT_TRUE(connection.ReadUntilClosed(&received));
  ExpectStillServing();
}

TEST_F(HostileInputTest, PlaintextToTheTlsPortIsRefused) {
  TearDown();
  const std::string dir = TempPath("tls");
  Start({"--tls_self_signed_dir=" + dir});
  {
    RawConnection connection(server_->port());
    ASSERT_TRUE(connection.connected());
    connection.Send(std::string(kHttp2Preface) + RandomBytes(1024, 3));
    std::string received;
    EXPECT_TRUE(connection.ReadUntilClosed(&received));
  }
  // A plaintext gRPC client fails cleanly.
  HealthCheckResponse health;
  auto context = Context();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(2));
  EXPECT_FALSE(Health::NewStub(channel_)
                   ->Check(context.get(), HealthCheckRequest(), &health)
                   .ok());
  // TLS clients are still served.
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(dir + "/ca.pem");
  ASSERT_FALSE(ssl.pem_root_certs.empty());
  ExpectStillServing(grpc::CreateChannel(
      absl::StrCat("localhost:", server_->port()), grpc::SslCredentials(ssl)));
}

TEST_F(HostileInputTest, MessagesOver4MiBAreResourceExhausted) {
  auto workflows = wf::WorkflowAPI::NewStub(channel_);
  wf::UpsertWorkflowRequest upsert;
  upsert.set_id("hostile@example.com:huge");
  upsert.set_title(std::string(5 * 1024 * 1024, 'x'));
  wf::Workflow response;
  grpc::Status status =
      workflows->UpsertWorkflow(Context().get(), upsert, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  // The same channel still works.
  ExpectStillServing(channel_);
}

TEST_F(HostileInputTest, StatusMessagesEchoingHugeFieldsAreCut) {
  // NOT_FOUND names the id it did not find; a 3 MB id must not turn into a
  // 3 MB grpc-message trailer, which a default client refuses.
  auto jobs = wf::JobAPI::NewStub(channel_);
  wf::GetJobRequest request;
  request.set_id(std::string(3 * 1024 * 1024, 'j'));
  wf::Job job;
  grpc::Status status = jobs->GetJob(Context().get(), request, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND)
      << status.error_message().substr(0, 200);
  EXPECT_LE(status.error_message().size(), 4096u + 64u);
  EXPECT_THAT(status.error_message(), HasSubstr("message cut from"));
  ExpectStillServing(channel_);
}

TEST_F(HostileInputTest, UnknownServicesAndMethodsAreUnimplemented) {
  grpc::GenericStub generic(channel_);
  for (const char* method :
       {"/no.such.Service/Method", "/descarteslabs.workflows.JobAPI/Nope",
        "/grpc.health.v1.Health/List", "not-even-a-path"}) {
    SCOPED_TRACE(method);
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    auto context = Context();
    generic.UnaryCall(context.get(), method, grpc::StubOptions(), &request,
                      &response, [&](grpc::Status s) {
                        status = std::move(s);
                        done.Notify();
                      });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << status.error_message();
  }
  ExpectStillServing(channel_);
}

TEST_F(HostileInputTest, GarbageRequestBodiesAreRejected) {
  // Bytes that are not a valid GetJobRequest.
  grpc::GenericStub generic(channel_);
  grpc::Slice slice(std::string("\xff\xff\xff\xff\x0f", 5));
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  auto context = Context();
  generic.UnaryCall(context.get(), "/descarteslabs.workflows.JobAPI/GetJob",
                    grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL)
      << status.error_message();
  ExpectStillServing(channel_);
}

TEST_F(HostileInputTest, IdleHalfOpenConnectionsDoNotBlockService) {
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 64; ++i) {
    auto connection = std::make_unique<RawConnection>(server_->port());
    ASSERT_TRUE(connection->connected());
    switch (i % 3) {
      case 0:  // Connected, silent.
        break;
      case 1:  // Half a preface, then silence.
        connection->Send("PRI * HTTP/2.0\r\n");
        break;
      case 2:  // Half a preface, then the write side closed (half-open).
        connection->Send("PRI * HTTP/2.0\r\n");
        connection->ShutdownWrite();
        break;
    }
    idle.push_back(std::move(connection));
  }
  // While they sit there, real clients are served.
  ExpectStillServing();
  ExpectStillServing(channel_);
  // Nor do they hold up a graceful shutdown.
  const absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> stopped = server_->Stop(SIGTERM);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->exit_code, 0) << stopped->stderr_text;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  server_ = nullptr;
}

}  // namespace
}  // namespace testing
}  // namespace workflows
