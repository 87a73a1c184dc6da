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

// The original model's forward pass on the report's text — what the report
// compares against. Computed first and passed in, the original weights need not
// stay resident while the plan is applied (a lower peak for large exports).
Result<ForwardResult> reportReference(const Model& base, const std::string& text,
                                      ThreadPool* pool = nullptr);

// text empty: a fixed sentence. Returns the JSON text (2-space indented).
// reference: reportReference(base, text) when already computed.
Result<std::string> reportJson(const Model& base, const AppliedPlan& applied,
                               const CompressionPlan& plan, const std::string& text,
                               ThreadPool* pool = nullptr, const ForwardResult* reference = nullptr);
// The same numbers as CSV, from the JSON report.
std::string reportCsv(const std::string& json);

// What the one-page PDF report shows (drawn by widgets/report_pdf.h), computed on
// the same text as the JSON report.
struct ReportFigures {
  std::string planText;  // the weight plan in the plan grammar (+ heads, attention rule)
  int64_t bytesBefore = 0, bytesAfter = 0;
  double bitsPerWeight = 32.0;  // over the quantized matrices (32 when none)
  double klMean = 0.0, jsMean = 0.0, hiddenCosine = 1.0;
  std::vector<std::string> tokens;  // of the text
  int layers = 0, heads = 0;
  std::vector<double> layerKl;  // [L] mean attention KL of each layer's heads
  struct Head {
    int layer = 0, head = 0;
    double kl = 0.0;
    bool removed = false;  // one of the plan's removed heads
    std::vector<float> before, after;  // [S, S] original and compressed model
  };
  std::vector<Head> mostChanged;  // up to 3 heads, largest KL first
  struct ErrorHistogram {
    std::string tensor, method;
    double sqnrDb = 0.0;
    quant::Histogram errors;  // of w − ŵ
  };
  std::vector<ErrorHistogram> errors;  // up to 2 quantized matrices, lowest SQNR first
  struct Pattern {
    std::string tensor;
    double sparsity = 0.0;
    sparse::BlockDensity density;
  };
  std::vector<Pattern> patterns;  // up to 2 pruned matrices, sparsest first
};
Result<ReportFigures> reportFigures(const Model& base, const AppliedPlan& applied,
                                    const CompressionPlan& plan, const std::string& text,
                                    ThreadPool* pool = nullptr,
                                    const ForwardResult* reference = nullptr);

// Both from one pair of forward passes (the explorer's export with a report shows
// the figures and writes the JSON): equal to reportJson and reportFigures.
struct ReportOutputs {
  std::string json;
  ReportFigures figures;
};
Result<ReportOutputs> reportJsonAndFigures(const Model& base, const AppliedPlan& applied,
                                           const CompressionPlan& plan, const std::string& text,
                                           ThreadPool* pool = nullptr,
                                           const ForwardResult* reference = nullptr);

}  // namespace attn::compress
