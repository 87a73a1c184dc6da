// Helpers the subcommands share: JSON output, errors, loading, id lists, inputs.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/compress/plan.h"
#include "core/model/model.h"
#include "core/util/result.h"

namespace attn::cli {

using Json = nlohmann::ordered_json;

// Invalid UTF-8 (a Latin-1 file name, a vocabulary entry) is replaced, not thrown.
void printJson(const Json& j);
// Prints "error: msg" on stderr and returns exit code 1.
int fail(const std::string& msg);
// loadModel with its warnings printed on stderr.
Result<std::shared_ptr<const Model>> load(const std::string& path);
int threadCount(int requested);  // 0: all cores
double peakRssMb();
// "1,2,3" → ids; `what` names the option in errors.
Result<std::vector<int32_t>> parseIntList(const std::string& s, const char* what);
// The inputs a command runs on: --ids, --text, every example of --corpus, or a
// fixed sentence; examples longer than the model allows are cut (counted).
Result<std::vector<std::vector<int32_t>>> inputsFor(const Model& m, const std::string& ids,
                                                    const std::string& text,
                                                    const std::string& corpus,
                                                    const std::string& column, int* truncated);

// --out of quantize / sparsify / distill in --format hf | compressed | h5: the
// applied plan written by compress::exportModel (hf: dequantized float32).
Status writeModelAs(const std::string& out, const std::string& format, const Model& source,
                    const compress::AppliedPlan& applied, compress::CompressionPlan plan,
                    const std::string& sourcePath);

}  // namespace attn::cli
