#include "bench/bench_env.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "fake_server/certificates.h"
#include "fake_server/in_memory_backend.h"
#include "fake_server/scenario.pb.h"
#include "gmock/gmock.h"
#include "testing/mock_workflows_backend.h"

namespace workflows {
namespace bench {
namespace {

namespace dw = descarteslabs::workflows;
using fake::FakeServerOptions;
using fake::FakeWorkflowsServer;
using fake::Transport;

std::vector<dw::Job::State> WatchStates() {
  std::vector<dw::Job::State> states;
  for (int i = 0; i < kWatchMessages; ++i) {
    dw::Job::State state;
    state.set_stage(i + 1 == kWatchMessages ? dw::Job::SUCCEEDED
                                            : dw::Job::RUNNING);
    state.mutable_tasks_progress()->mutable_finished()->set_value(i);
    state.set_timestamp(1700000000000 + i);
    states.push_back(state);
  }
  return states;
}

// One certificate authority for every TLS subject.
const fake::CertificateAuthority& Ca() {
  static const auto* ca = new fake::CertificateAuthority(
      fake::CertificateAuthority::Create().value());
  return *ca;
}
const fake::CertificateAndKey& ServerCert() {
  static const auto* cert = [] {
    fake::CertificateOptions options;
    options.dns_names = {"localhost"};
    options.ip_addresses = {"127.0.0.1"};
    return new fake::CertificateAndKey(Ca().Issue(options).value());
  }();
  return *cert;
}

absl::StatusOr<Env> MakeBareEnv(Net net) {
  Env env;
  BareServer::Options options;
  options.tcp = net != kInProcess;
  if (net == kTls) {
    options.tls_cert_pem = ServerCert().cert_pem;
    options.tls_key_pem = ServerCert().key_pem;
  }
  options.watch_states = WatchStates();
  absl::StatusOr<std::unique_ptr<BareServer>> bare =
      BareServer::Start(std::move(options));
  if (!bare.ok()) return bare.status();
  env.bare = *std::move(bare);
  env.job_id = env.bare->backend().PutJob(SampleJob());
  if (net == kInProcess) {
    env.channel = env.bare->InProcessChannel();
  } else if (net == kTcp) {
    env.channel = grpc::CreateChannel(env.bare->address(),
                                      grpc::InsecureChannelCredentials());
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Ca().ca_pem();
    grpc::ChannelArguments arguments;
    arguments.SetSslTargetNameOverride("localhost");
    env.channel = grpc::CreateCustomChannel(
        env.bare->address(), grpc::SslCredentials(ssl), arguments);
  }
  return env;
}

}  // namespace

dw::Job SampleJob() {
  dw::Job job;
  job.set_serialized_graft("{\"x\": [\"code\", 1]}");
  job.set_channel("v0-20");
  job.set_client_version("0.0.0");
  job.set_user("user-1");
  job.set_org("org-1");
  (*job.mutable_arguments())["x"] = "1";
  return job;
}

absl::string_view SideName(Side side) {
  switch (side) {
    case kBare:
      return "bare";
    case kFake:
      return "fake";
    case kFakeScripted:
      return "fake_scripted";
    case kFakeNoJournal:
      return "fake_nojournal";
    case kFakeGmock:
      return "fake_gmock";
  }
  return "unknown";
}

std::optional<Side> ParseSide(absl::string_view name) {
  for (Side side : {kBare, kFake, kFakeScripted, kFakeNoJournal, kFakeGmock}) {
    if (SideName(side) == name) return side;
  }
  return std::nullopt;
}

absl::StatusOr<Env> MakeEnv(Side side, Net net, fake::JournalOptions journal) {
  if (side == kBare) return MakeBareEnv(net);
  Env env;
  FakeServerOptions options;
  options.transport = net == kInProcess ? Transport::kInProcess
                      : net == kTcp     ? Transport::kInsecureTcp
                                        : Transport::kTls;
  if (net == kTls) {
    options.tls.cert_pem = ServerCert().cert_pem;
    options.tls.key_pem = ServerCert().key_pem;
  }
  options.journal = journal;
  if (side == kFakeNoJournal) options.journal.enabled = false;
  if (side == kFakeGmock) {
    // As WorkflowsTest does: a NiceMock falling through to the in-memory
    // backend, no expectations set.
    options.wrap_backend = [](std::shared_ptr<fake::Backend> in_memory) {
      return std::make_shared<
          ::testing::NiceMock<testing::MockWorkflowsBackend>>(
          std::move(in_memory));
    };
  }
  absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> fake =
      FakeWorkflowsServer::Start(std::move(options));
  if (!fake.ok()) return fake.status();
  env.fake = *std::move(fake);
  env.job_id = env.fake->in_memory_backend()->PutJob(SampleJob());
  if (side == kFakeScripted) {
    // A scripted reply: the script decides, the backend is never asked.
    fake::Rule rule;
    rule.set_method("GetJob");
    dw::Job job = SampleJob();
    job.set_id(env.job_id);
    rule.mutable_behavior()->mutable_reply()->PackFrom(job);
    absl::Status added = env.fake->script().AddRule(rule);
    if (!added.ok()) return added;
  }
  fake::Rule watch;
  watch.set_method("WatchJob");
  for (const dw::Job::State& state : WatchStates()) {
    watch.mutable_behavior()->mutable_stream()->add_messages()->PackFrom(state);
  }
  absl::Status added = env.fake->script().AddRule(watch);
  if (!added.ok()) return added;
  fake::ChannelOptions channel_options;
  if (net == kTls) {
    channel_options.root_pem = Ca().ca_pem();
    channel_options.target_name_override = "localhost";
  }
  env.channel = env.fake->CreateChannel(channel_options);
  return env;
}

bool GetJobOnce(dw::JobAPI::Stub& stub, const std::string& id,
                std::string* error) {
  grpc::ClientContext context;
  dw::GetJobRequest request;
  request.set_id(id);
  dw::Job job;
  grpc::Status status = stub.GetJob(&context, request, &job);
  if (!status.ok() || job.id() != id) {
    *error = absl::StrCat("GetJob: ", status.error_message(), " id=", job.id());
    return false;
  }
  return true;
}

}  // namespace bench
}  // namespace workflows
