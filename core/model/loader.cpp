#include <system_error>

#include "core/compress/compressed.h"
#include "core/compress/hdf5_model.h"
#include "core/model/model.h"
#include "core/model/pruned_heads.h"
#include "core/sparse/model_sparse.h"

namespace attn {

Result<std::shared_ptr<const Model>> loadModel(const std::filesystem::path& path,
                                               const LoadOptions& options) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return makeError("'" + path.string() + "' does not exist");
  const bool isDir = std::filesystem::is_directory(path, ec);
  const std::filesystem::path dir = isDir ? path : path.parent_path();
  Result<ModelConfig> config = makeError("no config");
  Result<Checkpoint> ck = makeError("no checkpoint");
  std::map<std::string, std::string> sideFiles;  // when they come from inside the file
  if (!isDir && compress::isHdf5File(path)) {
    auto h5 = compress::readHdf5Model(path);
    if (!h5) return h5.error();
    sideFiles = std::move(h5->sideFiles);
    config = parseConfigJson(sideFiles["config.json"], path.string() + ":/config");
    ck = std::move(h5->checkpoint);
  } else {
    const auto configPath = (dir.empty() ? std::filesystem::path(".") : dir) / "config.json";
    if (!std::filesystem::exists(configPath, ec))
      return makeError("no config.json " + std::string(isDir ? "in '" : "beside '") +
                       path.string() + "'");
    config = readConfigJson(configPath);
    if (config) ck = openCheckpoint(path);
  }
  if (!config) return config.error();
  if (!ck) return ck.error();
  std::vector<std::pair<int, int>> removedHeads;  // of a compressed file's plan
  if (compress::isCompressed(*ck)) {  // codes and parameters: dequantized on load
    if (auto it = ck->metadata.find("attnstudio_plan"); it != ck->metadata.end()) {
      auto plan = compress::parsePlanJson(it->second, path.string() + " (attnstudio_plan)");
      if (!plan) return plan.error();
      removedHeads = plan->prune.heads;
    }
    auto plain = compress::decompressCheckpoint(*config, *ck);
    if (!plain) return makeError(path.string() + ": " + plain.message());
    ck = std::move(*plain);
  }
  if (Status st = expandPrunedHeads(*config, *ck); !st)  // pruned heads back as zeros
    return makeError(path.string() + ": " + st.message());

  auto m = std::make_shared<Model>();
  m->config = *config;
  m->checkpoint = std::move(*ck);
  m->source = path;
  m->fileBytes = m->checkpoint.totalFileBytes;
  auto w = bindWeights(m->config, m->checkpoint, m->warnings, options);
  if (!w && isCancelled(options.cancel)) return makeError("cancelled");
  if (!w) return makeError(path.string() + ": " + w.message());
  m->weights = std::move(*w);
  // Removed heads stay zero whatever their codes decode to (as applyPlan leaves them).
  if (Status st = sparse::zeroHeads(m->config, m->weights, removedHeads); !st)
    return makeError(path.string() + ": " + st.message());
  m->parameters = countParameters(m->checkpoint);
  auto tok = sideFiles.empty()
                 ? text::loadTokenizer(dir.empty() ? std::filesystem::path(".") : dir,
                                       {architectureName(m->config.arch)})
                 : text::loadTokenizer(sideFiles, path.string() + ":/tokenizer",
                                       {architectureName(m->config.arch)});
  m->sideFiles = std::move(sideFiles);
  if (tok) {
    m->tokenizer = *tok;
  } else {  // the weights are still usable with token ids
    m->warnings.push_back("tokenizer not loaded: " + tok.message());
  }
  if (m->tokenizer && m->tokenizer->vocabSize() > m->config.vocabSize)
    m->warnings.push_back("the tokenizer has " + std::to_string(m->tokenizer->vocabSize()) +
                          " tokens but the model only " + std::to_string(m->config.vocabSize));
  if (isCancelled(options.cancel)) return makeError("cancelled");
  if (options.progress) options.progress(1.0);
  return std::shared_ptr<const Model>(std::move(m));
}

std::shared_ptr<Model> derivedModel(const Model& base) {
  auto m = std::make_shared<Model>();
  m->config = base.config;
  m->weights = base.weights;
  m->tokenizer = base.tokenizer;
  m->source = base.source;
  m->sideFiles = base.sideFiles;
  m->parameters = base.parameters;
  m->fileBytes = base.fileBytes;
  m->warnings = base.warnings;
  return m;
}

}  // namespace attn
