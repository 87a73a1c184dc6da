// One entry point for writing a compressed model in any of the three formats.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/compress/plan.h"
#include "core/model/hf_writer.h"

namespace attn::compress {

enum class ExportFormat {
  Hf,          // HF directory, dequantized weights (F32 / F16 / BF16), model_side files
  Compressed,  // HF-style directory, codes + parameters in model.safetensors (compressed.h)
  Hdf5,        // one .h5 file (hdf5_model.h)
};
std::optional<ExportFormat> exportFormatFromName(std::string_view name);  // hf | compressed | h5
const char* exportFormatName(ExportFormat f);

struct ExportOptions {
  ExportFormat format = ExportFormat::Hf;
  DType dtype = DType::F32;  // hf only; the others store codes and keep float32 parameters
  std::string reportJson;    // stored inside HDF5 files (/report); ignored otherwise
  const CancelToken* cancel = nullptr;  // checked between tensors; nothing is left behind
  // hf and compressed: called once the files are written and flushed, before they
  // are moved into place; an error there leaves nothing behind. The CLI joins the
  // report's computation, run alongside the write, here.
  std::function<Status()> beforeCommit;
  // h5: instead of reportJson, called once the tensors are written (the CLI's
  // report, computed alongside the write); its text is stored as /report.
  std::function<Result<std::string>()> lateReport;
};

// applied: applyPlan(source, plan). plan.student should name the source. Atomic.
Status exportModel(const std::filesystem::path& out, const Model& source, const AppliedPlan& applied,
                   const CompressionPlan& plan, const ExportOptions& options);

// The hf format written while the plan is still being applied: the weights come
// from `feed` as they become final (applyPlan's `stored` publishes them; publish
// the result once it is complete, fail() the feed if applying fails), so the disk
// writes the early layers while later ones are quantized. The file equals
// exportModel's tensor for tensor (laid out in layer order). The other formats
// need the whole result (codes, masks) and are written by exportModel.
Status exportHfWhileApplying(const std::filesystem::path& out, const Model& source,
                             WeightFeed& feed, const CompressionPlan& plan,
                             const ExportOptions& options);

}  // namespace attn::compress
