// attnstudio-cli export: apply a compression plan and write the model.
#include <cmath>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <optional>
#include <thread>

#include "app/cli/cli_util.h"
#include "app/cli/commands.h"
#include "core/attention/compare.h"
#include "core/compress/export.h"
#include "core/compress/plan.h"
#include "core/compress/report.h"
#include "core/io/atomic_file.h"

namespace attn::cli {

namespace {

Status writeText(const std::string& path, const std::string& text) {
  return writeFileAtomically(path, [&](std::FILE* f) -> Status {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size())
      return makeError("cannot write " + path);
    return Ok{};
  });
}

// Runs fn when the scope ends, also through an exception.
struct OnExit {
  std::function<void()> fn;
  ~OnExit() { fn(); }
};

}  // namespace

int runExport(const ExportArgs& a) {
  auto model = load(a.model);
  if (!model) return fail(model.message());
  auto plan = compress::loadPlan(a.plan);
  if (!plan) return fail(plan.message());
  DType dtype = DType::F32;
  if (a.dtype == "f16")
    dtype = DType::F16;
  else if (a.dtype == "bf16")
    dtype = DType::BF16;
  else if (a.dtype != "f32")
    return fail("--dtype must be f32, f16 or bf16");
  if (!a.report.empty() && !(a.report.ends_with(".json") || a.report.ends_with(".csv")))
    return fail("--report must end in .json or .csv");
  const auto format = compress::exportFormatFromName(a.format);
  if (!format) return fail("--format must be hf, compressed or h5");
  if (*format != compress::ExportFormat::Hf && dtype != DType::F32)
    return fail("--dtype applies to --format hf");
  ThreadPool pool(threadCount(a.threads));
  // Peak memory: the original's forward pass for the report comes first; then its
  // mapped pages are let go, and each matrix's again once it is quantized, so the
  // source, its dequantized copy and the codes are not all resident at once.
  auto reference = compress::reportReference(**model, a.text, &pool);
  if (!reference) return fail(reference.message());
  (*model)->checkpoint.releaseAllPages();
  compress::CompressionPlan recorded = *plan;
  if (recorded.student.empty()) recorded.student = a.model;
  compress::ExportOptions eo;
  eo.format = *format;
  eo.dtype = dtype;

  // hf: the file is written on its own thread while the plan is applied, layer by
  // layer as the weights become final (the disk, ~0.5 GB/s here, is the slow part:
  // BERT-base's 436 MB take ~0.8 s), and the report's forward pass follows the
  // applying. The output is moved into place only once both succeeded.
  std::optional<WeightFeed> feed;
  std::promise<Status> reportDone;
  std::optional<Status> written;
  std::thread writer;
  CancelToken writerFailed;  // e.g. the output folder is not empty: stop applying at once
  if (*format == compress::ExportFormat::Hf) {
    feed.emplace();
    eo.beforeCommit = [done = reportDone.get_future().share()] { return done.get(); };
    writer = std::thread([&, eo] {
      try {
        written = compress::exportHfWhileApplying(a.out, **model, *feed, recorded, eo);
      } catch (const std::exception& e) {  // an escaping exception would end the process
        written = makeError(std::string("writing the model failed: ") + e.what());
      }
      if (!*written) writerFailed.cancel();
    });
  }
  auto finish = [&](const Status& st) {  // the writer's error, else st's, else Ok
    if (feed && !st) feed->fail(st.message());
    if (writer.joinable()) {
      reportDone.set_value(st);
      writer.join();
    }
    if (written && !*written) return *written;  // the writer's own error comes first
    if (!st) return st;
    return written ? *written : Status(Ok{});
  };
  // An exception below (out of memory while applying or reporting): the writer is
  // stopped and joined first — it removes its partial output — then main reports it.
  const OnExit stopWriter{[&] {
    if (writer.joinable()) (void)finish(makeError("the export was interrupted"));
  }};

  // No histograms: the command reports numbers only (the PDF report is the explorer's).
  auto applied = compress::applyPlan(
      **model, *plan, &pool, &writerFailed, /*releaseSource=*/true, /*histograms=*/false,
      [&](const Model& partial, int upTo) {
        if (feed) feed->publish(partial, upTo);
      });
  if (!applied) return fail(finish(applied.error()).message());
  if (feed) feed->publish(*applied->model, applied->model->config.layers);

  Json report;
  auto makeReport = [&]() -> Status {
    auto text = compress::reportJson(**model, *applied, recorded, a.text, &pool, &*reference);
    if (!text) return text.error();
    try {
      report = Json::parse(*text);
    } catch (const std::exception& e) {
      return makeError(std::string("report: ") + e.what());
    }
    report["model"] = a.model;
    report["out"] = a.out;
    report["format"] = compress::exportFormatName(*format);
    report["dtype"] = a.dtype;
    return Ok{};
  };
  if (feed) {
    if (Status st = finish(makeReport()); !st) return fail(st.message());
  } else {
    // compressed and h5: the codes are all there; the report's forward pass and
    // fidelity run alongside the write, joined before the output is moved into
    // place (h5: before /report, the file's last dataset, is written).
    std::optional<Status> reportStatus;
    std::thread reporter([&] {
      try {
        reportStatus = makeReport();
      } catch (const std::exception& e) {  // an escaping exception would end the process
        reportStatus = makeError(std::string("report: ") + e.what());
      }
    });
    auto join = [&] {
      if (reporter.joinable()) reporter.join();
    };
    const OnExit joinReporter{join};
    eo.beforeCommit = [&]() -> Status {
      join();
      return *reportStatus;
    };
    eo.lateReport = [&]() -> Result<std::string> {
      join();
      if (!*reportStatus) return reportStatus->error();
      return report.dump(2);
    };
    const Status st = compress::exportModel(a.out, **model, *applied, recorded, eo);
    join();
    if (!st) return fail(st.message());
    if (!*reportStatus) return fail(reportStatus->message());
  }
  if (a.report.ends_with(".json")) {
    if (Status st = writeText(a.report, report.dump(2) + "\n"); !st) return fail(st.message());
  } else if (a.report.ends_with(".csv")) {
    if (Status st = writeText(a.report, compress::reportCsv(report.dump())); !st)
      return fail(st.message());
  }
  if (a.json) {
    printJson(report);
  } else {
    std::printf("%s written (%s, %zu tensors quantized, %zu pruned); attention KL %.6f, hidden cosine %.6f\n",
                a.out.c_str(), a.dtype.c_str(), applied->quantized.size(), applied->pruned.size(),
                report["attention_kl_mean"].get<double>(), report["hidden_cosine"].get<double>());
  }
  return 0;
}

}  // namespace attn::cli
