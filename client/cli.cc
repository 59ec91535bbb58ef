#include "client/cli.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace workflows {
namespace {

constexpr char kUsage[] =
    "usage: workflows_cli [flags] COMMAND [ARGS]\n"
    "commands:\n"
    "  health                      exit 0 when the server is SERVING (exit\n"
    "                              codes as grpc_health_probe: 1 usage, 2\n"
    "                              connection, 3 RPC failure, 4 not SERVING)\n"
    "  get-workflow ID\n"
    "  search-workflows            --request='email: \"...\" name_prefix: "
    "\"...\"'\n"
    "  create-job                  --request='<CreateJobRequest as text>' "
    "[--num_retries=N]\n"
    "  get-job ID\n"
    "  watch-job ID                print every state until the stream ends\n"
    "  cancel-job ID\n";

// Writes one response: protobuf text ending in a "---" line (so a stream's
// messages stay apart), or one line of JSON. JSON can fail (e.g. a Timestamp
// out of range): the caller reports it; nothing is printed in its place.
absl::Status Print(const google::protobuf::Message& message, bool json,
                   std::ostream& out) {
  std::string text;
  if (json) {
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = false;
    options.preserve_proto_field_names = true;
    // protobuf's own util::Status (not absl::Status in Debian's 3.21).
    const auto status =
        google::protobuf::util::MessageToJsonString(message, &text, options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot print the ", message.GetDescriptor()->name(),
                       " as JSON: ", status.ToString()));
    }
    out << text << "\n";
  } else {
    google::protobuf::TextFormat::PrintToString(message, &text);
    out << text << "---\n";
  }
  return absl::OkStatus();
}

int Fail(const absl::Status& status, absl::string_view what,
         std::ostream& err) {
  err << "workflows_cli: " << what
      << " failed: " << absl::StatusCodeToString(status.code()) << ": "
      << status.message() << "\n";
  return kExitFailure;
}

int PrintResponse(const google::protobuf::Message& message, bool json,
                  std::ostream& out, std::ostream& err) {
  absl::Status printed = Print(message, json, out);
  if (!printed.ok()) return Fail(printed, "printing the response", err);
  return kExitOk;
}

template <typename Request>
bool ParseRequest(const std::string& text, Request* request,
                  std::ostream& err) {
  if (text.empty()) return true;
  if (!google::protobuf::TextFormat::ParseFromString(text, request)) {
    err << "workflows_cli: --request is not a valid "
        << request->GetDescriptor()->full_name()
        << " in protobuf text format\n";
    return false;
  }
  return true;
}

CallOptions MakeCallOptions(const CliConfig& config) {
  CallOptions options;
  options.timeout = config.timeout;
  return options;
}

// `health` reports bad usage as grpc_health_probe does (1); the other
// commands keep 2.
int UsageExit(const std::vector<std::string>& args) {
  return !args.empty() && args[0] == "health" ? kHealthInvalidArguments
                                              : kExitUsage;
}

const char* ChannelStateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE:
      return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
      return "CONNECTING";
    case GRPC_CHANNEL_READY:
      return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN:
      return "SHUTDOWN";
  }
  return "UNKNOWN";
}

// The `health` command, with grpc_health_probe's exit codes.
int RunHealth(Client& client, const CliConfig& config, std::ostream& out,
              std::ostream& err) {
  absl::Duration timeout = config.timeout.value_or(Client::kDefaultTimeout);
  if (client.options().channel == nullptr) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = client.channel();
    if (!channel.ok()) {
      err << "workflows_cli: " << channel.status().message() << "\n";
      return kHealthInvalidArguments;
    }
    // Connect first, as grpc_health_probe does, so that "cannot connect"
    // (2) is told apart from a check that fails (3). Waits past a year are
    // cut: a chrono deadline that far out could overflow.
    const absl::Time start = absl::Now();
    const absl::Duration wait = std::min(timeout, absl::Hours(24 * 365));
    if (!(*channel)->WaitForConnected(std::chrono::system_clock::now() +
                                      absl::ToChronoNanoseconds(wait))) {
      err << "workflows_cli: failed to connect to "
          << client.target().value_or("the server") << " within "
          << absl::FormatDuration(timeout) << " (channel "
          << ChannelStateName((*channel)->GetState(false)) << ")\n";
      return kHealthConnectionFailure;
    }
    timeout -= absl::Now() - start;
    if (timeout <= absl::ZeroDuration()) {
      err << "workflows_cli: connecting used up the "
          << absl::FormatDuration(
                 config.timeout.value_or(Client::kDefaultTimeout))
          << " timeout\n";
      return kHealthConnectionFailure;
    }
  }
  absl::StatusOr<health::HealthCheckResponse::ServingStatus> status =
      client.Health(timeout);
  if (!status.ok()) {
    Fail(status.status(), "health check", err);
    return kHealthRpcFailure;
  }
  const std::string name =
      health::HealthCheckResponse::ServingStatus_Name(*status);
  if (*status != health::HealthCheckResponse::SERVING) {
    err << "workflows_cli: service unhealthy (responded with " << name << ")\n";
    return kHealthUnhealthy;
  }
  if (!config.json) {
    out << "status: " << name << "\n";  // one line, like grpc_health_probe
    return kHealthServing;
  }
  health::HealthCheckResponse response;
  response.set_status(*status);
  // Printing a SERVING status cannot fail; were it to, it is no RPC error.
  return PrintResponse(response, /*json=*/true, out, err) == kExitOk
             ? kHealthServing
             : kHealthRpcFailure;
}

}  // namespace

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    return absl::NotFoundError(
        absl::StrCat("--token_file: cannot read \"", path, "\""));
  }
  // Read one byte past the limit, so that a huge file (or /dev/zero) costs
  // no more than that.
  std::string token(kMaxTokenFileBytes + 1, '\0');
  file.read(token.data(), static_cast<std::streamsize>(token.size()));
  if (file.bad()) {
    return absl::NotFoundError(
        absl::StrCat("--token_file: cannot read \"", path, "\""));
  }
  token.resize(static_cast<size_t>(file.gcount()));
  if (token.size() > kMaxTokenFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--token_file: \"", path, "\" is larger than ",
                     kMaxTokenFileBytes, " bytes; is it the token?"));
  }
  if (absl::EndsWith(token, "\r\n")) {
    token.resize(token.size() - 2);
  } else if (absl::EndsWith(token, "\n")) {
    token.resize(token.size() - 1);
  }
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--token_file: \"", path, "\" is empty"));
  }
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--token_file: \"%s\" has a character not allowed in a token "
          "(byte 0x%02x at offset %d); it must hold the token alone, on "
          "one line",
          path, c, i));
    }
  }
  return token;
}

absl::Status ParseTarget(const std::string& target, ClientOptions* options) {
  size_t colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == target.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--target=\"", target, "\" is not HOST:PORT (e.g. localhost:8000)"));
  }
  std::string host = target.substr(0, colon);
  int port = 0;
  if (!absl::SimpleAtoi(target.substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--target=\"", target, "\" has an invalid port (expected 1..65535)"));
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--target=\"", target, "\": write IPv6 addresses as [ADDRESS]:PORT"));
  }
  options->host = host;
  options->port = port;
  return absl::OkStatus();
}

absl::StatusOr<ClientOptions> MakeClientOptions(const CliConfig& config) {
  ClientOptions options;
  if (!config.target.empty()) {
    absl::Status parsed = ParseTarget(config.target, &options);
    if (!parsed.ok()) return parsed;
  }
  options.use_insecure_channel = config.insecure;
  if (!config.ca_cert.empty()) {
    std::ifstream file(config.ca_cert, std::ios::binary);
    if (!file.is_open()) {
      return absl::NotFoundError(
          absl::StrCat("--ca_cert: cannot read \"", config.ca_cert, "\""));
    }
    std::stringstream contents;
    contents << file.rdbuf();
    options.certificate = contents.str();
    if (options.certificate.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--ca_cert: \"", config.ca_cert, "\" is empty"));
    }
  }
  if (!config.token.empty() && !config.token_file.empty()) {
    return absl::InvalidArgumentError(
        "--token and --token_file both give the token; pass only one");
  }
  if (!config.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(config.token_file);
    if (!token.ok()) return token.status();
    options.auth = std::make_shared<StaticTokenAuth>(*std::move(token));
  } else if (!config.token.empty()) {
    options.auth = std::make_shared<StaticTokenAuth>(config.token);
  }  // else the client's default: $DESCARTESLABS_TOKEN.
  if (config.timeout.has_value() && *config.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout must be positive, got ",
                     absl::FormatDuration(*config.timeout)));
  }
  return options;
}

int RunCli(const CliConfig& config, const std::vector<std::string>& args,
           std::ostream& out, std::ostream& err) {
  absl::StatusOr<ClientOptions> options = MakeClientOptions(config);
  if (!options.ok()) {
    err << "workflows_cli: " << options.status().message() << "\n";
    return UsageExit(args);
  }
  Client client(*options);
  return RunCliWithClient(client, config, args, out, err);
}

int RunCliWithClient(Client& client, const CliConfig& config,
                     const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err) {
  if (args.empty()) {
    err << "workflows_cli: no command given\n" << kUsage;
    return kExitUsage;
  }
  const std::string& command = args[0];
  auto want_args = [&](size_t n) {
    if (args.size() == n + 1) return true;
    err << "workflows_cli: " << command << " takes " << n
        << (n == 1 ? " argument" : " arguments") << ", got " << args.size() - 1
        << "\n"
        << kUsage;
    return false;
  };
  if (config.num_retries.has_value() && command != "create-job") {
    err << "workflows_cli: --num_retries applies only to create-job\n";
    return UsageExit(args);
  }
  CallOptions call = MakeCallOptions(config);

  if (command == "health") {
    if (!want_args(0)) return kHealthInvalidArguments;
    return RunHealth(client, config, out, err);
  }
  if (command == "get-workflow") {
    if (!want_args(1)) return kExitUsage;
    wf::GetWorkflowRequest request;
    request.set_id(args[1]);
    CallResult<wf::Workflow> result = client.GetWorkflow(request, call);
    if (!result.ok()) return Fail(result.status(), "GetWorkflow", err);
    return PrintResponse(*result, config.json, out, err);
  }
  if (command == "search-workflows") {
    if (!want_args(0)) return kExitUsage;
    wf::SearchWorkflowsRequest request;
    if (!ParseRequest(config.request, &request, err)) return kExitUsage;
    absl::Status printed;
    absl::Status status = client.SearchWorkflows(
        request,
        [&](const wf::Workflow& workflow) {
          printed = Print(workflow, config.json, out);
          return printed.ok();  // stop the stream on a print failure
        },
        call);
    if (!printed.ok()) return Fail(printed, "printing SearchWorkflows", err);
    if (!status.ok()) return Fail(status, "SearchWorkflows", err);
    return kExitOk;
  }
  if (command == "create-job") {
    if (!want_args(0)) return kExitUsage;
    wf::CreateJobRequest request;
    if (!ParseRequest(config.request, &request, err)) return kExitUsage;
    if (config.num_retries.has_value() && *config.num_retries < 0) {
      err << "workflows_cli: --num_retries must be >= 0\n";
      return kExitUsage;
    }
    call.num_retries = config.num_retries;
    CallResult<wf::Job> result = client.CreateJob(request, call);
    if (!result.ok()) return Fail(result.status(), "CreateJob", err);
    return PrintResponse(*result, config.json, out, err);
  }
  if (command == "get-job" || command == "cancel-job" ||
      command == "watch-job") {
    if (!want_args(1)) return kExitUsage;
    if (command == "get-job") {
      wf::GetJobRequest request;
      request.set_id(args[1]);
      CallResult<wf::Job> result = client.GetJob(request, call);
      if (!result.ok()) return Fail(result.status(), "GetJob", err);
      return PrintResponse(*result, config.json, out, err);
    } else if (command == "cancel-job") {
      wf::CancelJobRequest request;
      request.set_id(args[1]);
      CallResult<wf::CancelJobResponse> result =
          client.CancelJob(request, call);
      if (!result.ok()) return Fail(result.status(), "CancelJob", err);
      return PrintResponse(*result, config.json, out, err);
    } else {
      wf::WatchJobRequest request;
      request.set_id(args[1]);
      absl::Status printed;
      absl::Status status = client.WatchJob(
          request,
          [&](const wf::Job::State& state) {
            printed = Print(state, config.json, out);
            return printed.ok();  // stop the stream on a print failure
          },
          call);
      if (!printed.ok()) return Fail(printed, "printing WatchJob", err);
      if (!status.ok()) return Fail(status, "WatchJob", err);
    }
    return kExitOk;
  }
  err << "workflows_cli: unknown command \"" << command << "\"\n" << kUsage;
  return kExitUsage;
}

}  // namespace workflows
