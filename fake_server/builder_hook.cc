#include "fake_server/builder_hook.h"

#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>

#include <memory>
#include <mutex>  // NOLINT: std::call_once for the one-time plugin install.
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace workflows {
namespace fake {
namespace {

struct HookSlot {
  absl::Mutex mu;
  std::function<void(grpc::ServerBuilder&)> hook ABSL_GUARDED_BY(mu);
};

HookSlot& Slot() {
  static HookSlot* const slot = new HookSlot;  // Never destroyed.
  return *slot;
}

class HookPlugin : public grpc::ServerBuilderPlugin {
 public:
  std::string name() override { return "workflows_fake_builder_hook"; }
  void UpdateServerBuilder(grpc::ServerBuilder* builder) override {
    std::function<void(grpc::ServerBuilder&)> hook;
    {
      absl::MutexLock lock(&Slot().mu);
      hook = Slot().hook;
    }
    if (hook) hook(*builder);
  }
  void InitServer(grpc::ServerInitializer* /*si*/) override {}
  void Finish(grpc::ServerInitializer* /*si*/) override {}
  void ChangeArguments(const std::string& /*name*/, void* /*value*/) override {}
};

std::unique_ptr<grpc::ServerBuilderPlugin> CreateHookPlugin() {
  return std::make_unique<HookPlugin>();
}

}  // namespace

void SetServerBuilderHook(std::function<void(grpc::ServerBuilder&)> hook) {
  static std::once_flag installed;
  std::call_once(installed, [] {
    grpc::ServerBuilder::InternalAddPluginFactory(&CreateHookPlugin);
  });
  absl::MutexLock lock(&Slot().mu);
  Slot().hook = std::move(hook);
}

}  // namespace fake
}  // namespace workflows
