#include "core/distill/init.h"

#include <fstream>

#include "core/distill/network.h"
#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"
#include "core/model/config.h"

namespace attn::distill {

namespace fs = std::filesystem;

Status writeInitialModel(const fs::path& dir, const std::string& configJson,
                         const fs::path& tokenizerDir, uint64_t seed) {
  auto config = parseConfigJson(configJson, "config.json");
  if (!config) return config.error();
  if (config->layers < 1 || config->heads < 1 || config->hidden % config->heads != 0)
    return makeError("config.json: the hidden size must be a multiple of the head count");
  std::error_code ec;
  return writeDirectoryAtomically(dir, [&](const fs::path& tmp) -> Status {
    {
      std::ofstream out(tmp / "config.json", std::ios::binary);
      out << configJson;
      if (!out) return makeError("cannot write config.json");
    }
    for (const char* f : {"vocab.txt", "tokenizer_config.json", "vocab.json", "merges.txt",
                          "tokenizer.json", "special_tokens_map.json"})
      if (!tokenizerDir.empty() && fs::exists(tokenizerDir / f, ec)) {
        fs::copy_file(tokenizerDir / f, tmp / f, ec);
        if (ec) return makeError("cannot copy " + (tokenizerDir / f).string() + ": " + ec.message());
      }
    const ModelWeights w = networkWeights(randomNetwork(*config, seed));
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& [name, t] : namedWeights(*config, w)) tensors.emplace_back(name, *t);
    return writeSafetensors(tmp / "model.safetensors", tensors, {{"format", "pt"}});
  });
}

}  // namespace attn::distill
