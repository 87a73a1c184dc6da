// The report of an export: what was done to each tensor and what it cost.
//   JSON: tool, version, plan, bytes_before, bytes_after, tensors [{name, method,
//   bits_per_weight, mse, sqnr_db, sparsity}], text, attention_kl_mean,
//   attention_js_mean, hidden_cosine, heads [{layer, head, kl, js}] (the compressed
//   model with the plan's attention settings against the original on `text`).
//   CSV: one row per tensor and per head (kind,name,layer,head,method,…).
#pragma once

#include <string>

#include "core/compress/plan.h"

namespace attn::compress {

// text empty: a fixed sentence. Returns the JSON text (2-space indented).
Result<std::string> reportJson(const Model& base, const AppliedPlan& applied,
                               const CompressionPlan& plan, const std::string& text,
                               ThreadPool* pool = nullptr);
// The same numbers as CSV, from the JSON report.
std::string reportCsv(const std::string& json);

}  // namespace attn::compress
