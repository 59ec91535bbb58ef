// Runs every file of the given corpus directories (or files) through
// LLVMFuzzerTestOneInput once: the fuzz targets' regression tests under the
// normal build, where libFuzzer (and its main) is not linked in.
//
//   bazel test //fuzz:scenario_fuzzer_regression_test

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// Reads `path` whole; false if it cannot be read.
bool ReadFile(const std::filesystem::path& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  contents->assign(std::istreambuf_iterator<char>(in),
                   std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " CORPUS_DIR_OR_FILE...\n";
    return 2;
  }
  std::vector<std::filesystem::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code error;
    if (std::filesystem::is_directory(arg, error)) {
      for (const auto& entry :
           std::filesystem::recursive_directory_iterator(arg)) {
        if (entry.is_regular_file()) inputs.push_back(entry.path());
      }
    } else if (std::filesystem::is_regular_file(arg, error)) {
      inputs.push_back(arg);
    } else {
      std::cerr << "no such corpus file or directory: " << arg << "\n";
      return 2;
    }
  }
  if (inputs.empty()) {
    // A test that runs nothing must not pass silently.
    std::cerr << "the corpus is empty\n";
    return 2;
  }
  std::sort(inputs.begin(), inputs.end());
  for (const std::filesystem::path& path : inputs) {
    std::string data;
    if (!ReadFile(path, &data)) {
      std::cerr << "cannot read " << path << "\n";
      return 2;
    }
    std::cerr << "running " << path << " (" << data.size() << " bytes)\n";
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()),
                           data.size());
  }
  std::cerr << "ran " << inputs.size() << " inputs\n";
  return 0;
}
