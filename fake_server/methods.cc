#include "fake_server/methods.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.pb.h"
#include "proto/discover.pb.h"
#include "proto/job.pb.h"
#include "proto/workflow.pb.h"
#include "proto/xyz.pb.h"

namespace workflows {
namespace fake {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

// The generated pool only knows files whose .pb.cc is linked in and
// initialized. Asking each file for a descriptor both forces the link and
// makes the services findable by name.
std::vector<const FileDescriptor*> ServingFiles() {
  return {
      descarteslabs::workflows::Workflow::descriptor()->file(),
      descarteslabs::workflows::Job::descriptor()->file(),
      descarteslabs::workflows::XYZ::descriptor()->file(),
      descarteslabs::discover::v0alpha::CreateAccessGrantRequest::descriptor()
          ->file(),
      grpc::health::v1::HealthCheckRequest::descriptor()->file(),
  };
}

constexpr const char* kServices[] = {
    "descarteslabs.workflows.WorkflowAPI",
    "descarteslabs.workflows.JobAPI",
    "descarteslabs.workflows.XYZAPI",
    "descarteslabs.discover.v0alpha.AccessGrantApi",
    "grpc.health.v1.Health",
};

std::vector<MethodInfo> BuildMethods() {
  ServingFiles();
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  std::vector<MethodInfo> methods;
  for (const char* service_name : kServices) {
    const ServiceDescriptor* service = pool->FindServiceByName(service_name);
    if (service == nullptr) {
      // Only a broken build gets here (a proto dependency not linked).
      absl::FPrintF(stderr, "fake_server: service %s missing from pool\n",
                    service_name);
      std::abort();
    }
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      // The fake serves unary and server-streaming RPCs only; the Workflows
      // and health APIs have no client-streaming ones.
      MethodInfo info;
      info.full_name =
          absl::StrCat("/", service->full_name(), "/", method->name());
      info.bare_name = method->name();
      info.service = service->full_name();
      info.server_streaming = method->server_streaming();
      info.request_type = method->input_type();
      info.response_type = method->output_type();
      methods.push_back(std::move(info));
    }
  }
  return methods;
}

struct MethodIndex {
  std::vector<MethodInfo> methods;
  // Every accepted spelling -> method; bare names map only when unique.
  absl::flat_hash_map<std::string, const MethodInfo*> by_name;
  std::string valid_bare_names;  // "CancelJob, Check, CreateAccessGrant..."
};

const MethodIndex& Index() {
  static const MethodIndex* const index = [] {
    auto* index = new MethodIndex;
    index->methods = BuildMethods();
    absl::flat_hash_map<std::string, int> bare_count;
    for (const MethodInfo& m : index->methods) ++bare_count[m.bare_name];
    std::vector<std::string> bare_names;
    for (const MethodInfo& m : index->methods) {
      index->by_name[m.full_name] = &m;
      index->by_name[m.full_name.substr(1)] = &m;  // "pkg.Service/Method"
      const std::string short_service(
          m.service.substr(m.service.rfind('.') + 1));
      index->by_name[absl::StrCat(short_service, "/", m.bare_name)] = &m;
      if (bare_count[m.bare_name] == 1) {
        index->by_name[m.bare_name] = &m;
        bare_names.push_back(m.bare_name);
      } else {
        bare_names.push_back(absl::StrCat(short_service, "/", m.bare_name));
      }
    }
    std::sort(bare_names.begin(), bare_names.end());
    index->valid_bare_names = absl::StrJoin(bare_names, ", ");
    return index;
  }();
  return *index;
}

// Levenshtein distance, case-insensitive; names are short so O(n*m) is fine.
int EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const int above = row[j];
      const bool same =
          absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]);
      row[j] =
          std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The bare part of whatever the user typed: "x.JobAPI/GetJob" -> "GetJob".
absl::string_view BarePart(absl::string_view name) {
  const size_t slash = name.rfind('/');
  return slash == absl::string_view::npos ? name : name.substr(slash + 1);
}

std::string Suggestion(absl::string_view name) {
  const absl::string_view bare = BarePart(name);
  const MethodInfo* best = nullptr;
  int best_distance = 0;
  for (const MethodInfo& m : Index().methods) {
    const int distance = EditDistance(bare, m.bare_name);
    if (best == nullptr || distance < best_distance) {
      best = &m;
      best_distance = distance;
    }
  }
  // Beyond a third of the name, a "suggestion" is noise.
  if (best == nullptr ||
      best_distance > std::max<int>(2, best->bare_name.size() / 3)) {
    return "";
  }
  return absl::StrCat(" did you mean \"", best->bare_name, "\"?");
}

}  // namespace

const std::vector<MethodInfo>& AllMethods() { return Index().methods; }

absl::StatusOr<const MethodInfo*> FindMethod(absl::string_view name) {
  const MethodIndex& index = Index();
  auto it = index.by_name.find(name);
  if (it != index.by_name.end()) return it->second;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown method \"", name, "\";", Suggestion(name),
                   " valid: ", index.valid_bare_names));
}

bool IsHealthMethod(const MethodInfo& method) {
  return method.service == "grpc.health.v1.Health";
}

}  // namespace fake
}  // namespace workflows
