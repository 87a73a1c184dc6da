#include "core/compress/export.h"

#include "core/compress/compressed.h"
#include "core/compress/hdf5_model.h"
#include "core/model/hf_writer.h"

namespace attn::compress {

std::optional<ExportFormat> exportFormatFromName(std::string_view name) {
  if (name == "hf") return ExportFormat::Hf;
  if (name == "compressed") return ExportFormat::Compressed;
  if (name == "h5" || name == "hdf5") return ExportFormat::Hdf5;
  return std::nullopt;
}

const char* exportFormatName(ExportFormat f) {
  switch (f) {
    case ExportFormat::Hf: return "hf";
    case ExportFormat::Compressed: return "compressed";
    case ExportFormat::Hdf5: return "h5";
  }
  return "hf";
}

Status exportModel(const std::filesystem::path& out, const Model& source, const AppliedPlan& applied,
                   const CompressionPlan& plan, const ExportOptions& options) {
  if (options.format != ExportFormat::Hf && options.dtype != DType::F32)
    return makeError("the weight dtype (f16, bf16) applies to the hf format only; " +
                     std::string(exportFormatName(options.format)) +
                     " stores codes with float32 parameters");
  switch (options.format) {
    case ExportFormat::Hf: {
      WeightFeed feed;
      feed.publish(*applied.model, applied.model->config.layers);
      return exportHfWhileApplying(out, source, feed, plan, options);
    }
    case ExportFormat::Compressed:
      return writeCompressedModel(out, source, applied, plan, options.cancel, options.beforeCommit);
    case ExportFormat::Hdf5:
      return writeCompressedHdf5(out, source, applied, plan, options.reportJson, options.cancel,
                                 options.lateReport);
  }
  return makeError("unknown format");
}

Status exportHfWhileApplying(const std::filesystem::path& out, const Model& source,
                             WeightFeed& feed, const CompressionPlan& plan,
                             const ExportOptions& options) {
  if (options.format != ExportFormat::Hf)
    return makeError("only the hf format can be written while the plan is applied");
  HfWriteOptions wo;
  wo.dtype = options.dtype;
  wo.extraMetadata["attnstudio_plan"] = planJson(plan);
  wo.extraMetadata["attnstudio_version"] = ATTN_VERSION;
  wo.cancel = options.cancel;
  wo.removedHeads = plan.prune.heads;
  wo.beforeCommit = options.beforeCommit;
  return writeHfModel(out, source, feed, wo);
}

}  // namespace attn::compress
