// Pins the wire contract of the Workflows API to a golden file: every full
// method path with its streaming shape, and every field of every message with
// its number and type. Any edit that could break compatibility with the real
// backend changes this listing and fails the test.

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "grpc/health/v1/health.pb.h"
#include "proto/discover.pb.h"
#include "proto/job.pb.h"
#include "proto/rpc_status.pb.h"
#include "proto/workflow.pb.h"
#include "proto/xyz.pb.h"

namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::FileDescriptor;
using ::google::protobuf::MethodDescriptor;
using ::google::protobuf::ServiceDescriptor;

std::string FieldType(const FieldDescriptor& field) {
  std::string type;
  if (field.is_map()) {
    return "map<" + FieldType(*field.message_type()->map_key()) + "," +
           FieldType(*field.message_type()->map_value()) + ">";
  }
  if (field.is_repeated()) type = "repeated ";
  switch (field.type()) {
    case FieldDescriptor::TYPE_MESSAGE:
      return type + field.message_type()->full_name();
    case FieldDescriptor::TYPE_ENUM:
      return type + field.enum_type()->full_name();
    default:
      return type + field.type_name();
  }
}

void DescribeEnum(const EnumDescriptor& e, std::vector<std::string>* out) {
  for (int i = 0; i < e.value_count(); ++i) {
    out->push_back("enum " + e.full_name() + "." + e.value(i)->name() + " = " +
                   std::to_string(e.value(i)->number()));
  }
}

void DescribeMessage(const Descriptor& m, std::vector<std::string>* out) {
  if (m.options().map_entry()) return;
  for (int i = 0; i < m.field_count(); ++i) {
    const FieldDescriptor& f = *m.field(i);
    std::string line = "field " + m.full_name() + "." + f.name() + " = " +
                       std::to_string(f.number()) + " " + FieldType(f);
    if (f.real_containing_oneof() != nullptr) {
      line += " oneof " + f.real_containing_oneof()->name();
    }
    out->push_back(line);
  }
  for (int i = 0; i < m.nested_type_count(); ++i) {
    DescribeMessage(*m.nested_type(i), out);
  }
  for (int i = 0; i < m.enum_type_count(); ++i) DescribeEnum(*m.enum_type(i), out);
}

void DescribeService(const ServiceDescriptor& s, std::vector<std::string>* out) {
  for (int i = 0; i < s.method_count(); ++i) {
    const MethodDescriptor& m = *s.method(i);
    out->push_back("rpc /" + s.full_name() + "/" + m.name() + " " +
                   (m.client_streaming() ? "stream " : "") +
                   m.input_type()->full_name() + " -> " +
                   (m.server_streaming() ? "stream " : "") +
                   m.output_type()->full_name());
  }
}

void DescribeFile(const FileDescriptor& file, std::vector<std::string>* out) {
  for (int i = 0; i < file.service_count(); ++i) DescribeService(*file.service(i), out);
  for (int i = 0; i < file.message_type_count(); ++i) {
    DescribeMessage(*file.message_type(i), out);
  }
  for (int i = 0; i < file.enum_type_count(); ++i) DescribeEnum(*file.enum_type(i), out);
  for (int i = 0; i < file.extension_count(); ++i) {
    const FieldDescriptor& ext = *file.extension(i);
    out->push_back("extend " + ext.containing_type()->full_name() + "." +
                   ext.full_name() + " = " + std::to_string(ext.number()) + " " +
                   FieldType(ext));
  }
}

// The contract as currently generated, one line per method, field and enum value.
std::set<std::string> CurrentContract() {
  std::set<const FileDescriptor*> files;
  std::vector<const FileDescriptor*> pending = {
      descarteslabs::workflows::Workflow::descriptor()->file(),
      descarteslabs::workflows::Job::descriptor()->file(),
      descarteslabs::workflows::XYZ::descriptor()->file(),
      descarteslabs::discover::v0alpha::AccessGrant::descriptor()->file(),
      google::rpc::Status::descriptor()->file(),
      grpc::health::v1::HealthCheckRequest::descriptor()->file(),
  };
  while (!pending.empty()) {  // Follow imports, skipping well-known types.
    const FileDescriptor* file = pending.back();
    pending.pop_back();
    if (file->package() == "google.protobuf" || !files.insert(file).second) continue;
    for (int i = 0; i < file->dependency_count(); ++i) {
      pending.push_back(file->dependency(i));
    }
  }
  std::vector<std::string> lines;
  for (const FileDescriptor* file : files) DescribeFile(*file, &lines);
  return std::set<std::string>(lines.begin(), lines.end());
}

std::set<std::string> GoldenContract() {
  std::ifstream in("proto/testdata/wire_contract.txt");
  EXPECT_TRUE(in.good()) << "cannot read proto/testdata/wire_contract.txt";
  std::set<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') lines.insert(line);
  }
  return lines;
}

TEST(WireContractTest, MatchesGolden) {
  const std::set<std::string> current = CurrentContract();
  const std::set<std::string> golden = GoldenContract();
  std::ostringstream diff;
  for (const std::string& line : golden) {
    if (!current.count(line)) diff << "- " << line << "\n";
  }
  for (const std::string& line : current) {
    if (!golden.count(line)) diff << "+ " << line << "\n";
  }
  EXPECT_TRUE(diff.str().empty())
      << "The generated descriptors no longer match the pinned wire contract "
         "(- pinned, + generated). Changing a field number, type, method path "
         "or streaming shape breaks compatibility with the Workflows backend:\n"
      << diff.str();
}

// A few facts stated explicitly, so they read as documentation too.
TEST(WireContractTest, KeyMethodsAndFields) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const MethodDescriptor* watch =
      pool->FindMethodByName("descarteslabs.workflows.JobAPI.WatchJob");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->server_streaming());
  EXPECT_FALSE(watch->client_streaming());
  EXPECT_EQ(watch->output_type()->full_name(), "descarteslabs.workflows.Job.State");
  EXPECT_NE(pool->FindMethodByName("grpc.health.v1.Health.Watch"), nullptr);
  EXPECT_EQ(descarteslabs::workflows::Job::descriptor()->FindFieldByName("state")->number(),
            10);
  EXPECT_EQ(descarteslabs::workflows::Workflow::descriptor()
                ->FindFieldByName("versioned_grafts")
                ->number(),
            26);
}

}  // namespace
