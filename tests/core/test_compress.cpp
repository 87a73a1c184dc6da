// The compression plan: JSON round trip, errors that name the key, and applying a
// plan (prune, then quantize) equals doing the two steps by hand.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTest>
#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <thread>

#include <unistd.h>

#include <cstring>

#include "core/compress/compressed.h"
#include "core/compress/export.h"
#include "core/compress/hdf5_model.h"
#include "core/compress/plan.h"
#include "core/compress/report.h"
#include "core/attention/compare.h"
#include "core/io/safetensors.h"
#include "core/model/hf_writer.h"
#include "core/model/model.h"
#include "test_helpers.h"
#include "weight_helpers.h"

using namespace attn;
using namespace attn::compress;

namespace {
// HDF5 spends up to this many bytes on the object header and B-tree entry of each
// group and dataset (measured: ~0.5-1.5 KiB with the library's default settings).
constexpr int64_t kHdf5BytesPerObject = 2048;

CompressionPlan samplePlan() {
  CompressionPlan p;
  p.student = "models/bert_tiny";
  if (!quant::applyPlanText("q,k,v,o=uniform:8:channel; ffn_in,ffn_out=uniform:4:group:16:asym; "
                            "layer 1 q=kmeans:3",
                            p.quant))
    qFatal("plan text");
  p.quant.attention.kind = quant::AttentionQuant::Kind::Log2;
  p.quant.attention.bits = 4;
  sparse::PruneSpec nm;
  nm.method = sparse::PruneMethod::NM;
  p.prune.targets[int(Target::FfnIn)] = nm;
  sparse::PruneSpec mag;
  mag.sparsity = 0.3;
  p.prune.targets[int(Target::O)] = mag;
  p.prune.heads = {{0, 1}, {1, 3}};
  p.prune.attention.all.kind = sparse::AttentionRule::Kind::Threshold;
  p.prune.attention.all.tau = 0.02;
  p.prune.attention.all.renormalize = true;
  sparse::AttentionRule top;
  top.kind = sparse::AttentionRule::Kind::TopK;
  top.k = 3;
  p.prune.attention.overrides.push_back({1, -1, top});
  return p;
}
}  // namespace

class TestCompress : public QObject {
  Q_OBJECT

 private slots:
  void jsonRoundTrip() {
    const CompressionPlan p = samplePlan();
    const std::string text = planJson(p);
    auto back = parsePlanJson(text, "plan.json");
    QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
    QCOMPARE(planJson(*back), text);  // every field survives
    QCOMPARE(back->student, p.student);
    QCOMPARE(quant::planText(back->quant), quant::planText(p.quant));
    QVERIFY(back->quant.attention.kind == quant::AttentionQuant::Kind::Log2);
    QCOMPARE(back->quant.attention.bits, 4);
    QVERIFY(back->prune.targets[int(Target::FfnIn)]->method == sparse::PruneMethod::NM);
    QCOMPARE(back->prune.targets[int(Target::O)]->sparsity, 0.3);
    QVERIFY(!back->prune.targets[int(Target::Q)]);
    QCOMPARE(back->prune.heads, (std::vector<std::pair<int, int>>{{0, 1}, {1, 3}}));
    QCOMPARE(back->prune.attention.all.tau, 0.02);
    QVERIFY(back->prune.attention.all.renormalize);
    QCOMPARE(back->prune.attention.overrides.size(), size_t(1));
    QCOMPARE(back->prune.attention.overrides[0].rule.k, 3);
    QVERIFY(CompressionPlan{}.empty());
    QVERIFY(!p.empty());
    // Saved atomically and read back.
    test::TempDir tmp;
    QVERIFY(savePlan(tmp / "p.json", p).ok());
    auto loaded = loadPlan(tmp / "p.json");
    QVERIFY(loaded.ok());
    QCOMPARE(planJson(*loaded), text);
  }

  void badPlansNameTheKey_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("message");
    QTest::newRow("not json") << "{" << "not valid JSON";
    QTest::newRow("format") << R"({"format": "x"})" << "not a compression plan";
    QTest::newRow("version") << R"({"format": "attnstudio-compression-plan", "version": 2})"
                             << "version must be 1";
    QTest::newRow("weights") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "quantization": {"weights": "q=fp8:8"}})" << "quantization.weights";
    QTest::newRow("attention method") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "quantization": {"attention": {"method": "fp8"}}})" << "quantization.attention.method";
    QTest::newRow("target") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "pruning": {"targets": {"mlp": {"method": "magnitude"}}}})" << "pruning.targets.mlp";
    QTest::newRow("sparsity") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "pruning": {"targets": {"q": {"method": "magnitude", "sparsity": 1.5}}}})"
                              << "pruning.targets.q.sparsity";
    QTest::newRow("heads") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "pruning": {"heads": [[0]]}})" << "pruning.heads";
    QTest::newRow("rule") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "attention_sparsity": {"rule": {"kind": "random"}}})" << "attention_sparsity.rule.kind";
    QTest::newRow("tau") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "attention_sparsity": {"rule": {"kind": "threshold", "tau": 2}}})"
                         << "attention_sparsity.rule";
    QTest::newRow("type") << R"({"format": "attnstudio-compression-plan", "version": 1,
        "attention_sparsity": {"rule": {"kind": "topk", "k": "three"}}})" << "wrong type";
  }
  void badPlansNameTheKey() {
    QFETCH(QString, json);
    QFETCH(QString, message);
    auto r = parsePlanJson(json.toStdString(), "p.json");
    QVERIFY(!r.ok());
    QVERIFY2(QString::fromStdString(r.message()).contains(message), r.message().c_str());
    QVERIFY(QString::fromStdString(r.message()).startsWith("p.json"));
  }

  // ------------------------------------------------------------------ compressed format
  void compressedRoundTrip_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("weights");  // quantization plan text
    QTest::addColumn<bool>("prune");
    QTest::newRow("uniform channel") << "bert_tiny" << "all=uniform:8:channel" << false;
    QTest::newRow("uniform asym group") << "bert_tiny" << "all=uniform:4:group:16:asym" << false;
    QTest::newRow("kmeans") << "bert_tiny" << "q,k,v,o,ffn_in,ffn_out=kmeans:3" << false;
    QTest::newRow("log2") << "bert_tiny" << "q,k,v,o=log2:4:channel" << false;
    QTest::newRow("binary") << "bert_tiny" << "ffn_in,ffn_out=binary:1" << false;
    QTest::newRow("ternary") << "bert_tiny" << "ffn_in=ternary:2:channel" << false;
    QTest::newRow("pruned only") << "bert_tiny" << "" << true;
    QTest::newRow("pruned + quantized") << "bert_tiny" << "o,ffn_out=uniform:4" << true;
    QTest::newRow("gpt2 q third only") << "gpt2_tiny" << "q=uniform:4; ffn_out=kmeans:2" << false;
    QTest::newRow("gpt2 prefixed, pruned") << "gpt2_tiny" << "all=uniform:6" << true;
    QTest::newRow("bert mlm f16 prefix") << "bert_mlm_f16" << "all=uniform:8" << false;
  }
  void compressedRoundTrip() {
    QFETCH(QString, model);
    QFETCH(QString, weights);
    QFETCH(bool, prune);
    auto m = loadModel(test::dataDir() / "models" / model.toStdString());
    QVERIFY(m.ok());
    CompressionPlan p;
    QVERIFY(quant::applyPlanText(weights.toStdString(), p.quant).ok());
    if (prune) {
      sparse::PruneSpec nm;
      nm.method = sparse::PruneMethod::NM;
      p.prune.targets[int(Target::FfnIn)] = nm;
      sparse::PruneSpec rows;
      rows.method = sparse::PruneMethod::Rows;
      rows.sparsity = 0.25;
      p.prune.targets[int(Target::O)] = rows;
      p.prune.heads = {{0, 2}};
    }
    auto applied = applyPlan(**m, p);
    QVERIFY2(applied.ok(), applied.ok() ? "" : applied.message().c_str());
    test::TempDir tmp;
    const Status st = writeCompressedModel(tmp / "c", **m, *applied, p);
    QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
    auto ck = openCheckpoint(tmp / "c");
    QVERIFY(ck.ok());
    QVERIFY(isCompressed(*ck));
    // Reopened: the dequantized weights are the in-process compressed model's, bit for bit.
    auto back = loadModel(tmp / "c");
    QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
    QCOMPARE(test::firstDifferentWeight((*m)->config, applied->model->weights, (*back)->weights),
             std::string());
    std::vector<int32_t> ids;
    for (int i = 0; i < 10; ++i) ids.push_back(3 + (i * 5) % 100);
    auto fa = forward(applied->model->config, applied->model->weights, ids, {});
    auto fb = forward((*back)->config, (*back)->weights, ids, {});
    QVERIFY(fa->attention == fb->attention);
    QVERIFY((*back)->tokenizer != nullptr);
    // Size: the file is the codes and parameters, the unchanged tensors and the header.
    if (!prune) {
      int64_t codes = 0;
      for (const auto& q : applied->codes) codes += q->storageBytes();
      const std::string bytes = test::readBytes(tmp / "c" / "model.safetensors");
      uint64_t header = 0;
      std::memcpy(&header, bytes.data(), 8);
      int64_t stored = 0;
      for (const auto& [name, item] : ck->tensors)
        if (name.find(".qweight") == std::string::npos && name.find(".scales") == std::string::npos &&
            name.find(".zeros") == std::string::npos && name.find(".codebook") == std::string::npos &&
            name.find(".exponents") == std::string::npos && name.find(".values") == std::string::npos)
          stored += int64_t(item.tensor.nbytes());
      int64_t floats = 0;  // fused thirds left in float32
      for (const auto& [name, item] : ck->tensors)
        if (name.find(".values") != std::string::npos) floats += int64_t(item.tensor.nbytes());
      QCOMPARE(int64_t(bytes.size()) - 8 - int64_t(header) - stored - floats, codes);
    }

    // As a Hugging Face directory (F32, dequantized): the same weights and attention.
    ExportOptions hf;
    QVERIFY(exportModel(tmp / "hf", **m, *applied, p, hf).ok());
    auto fromHf = loadModel(tmp / "hf");
    QVERIFY2(fromHf.ok(), fromHf.ok() ? "" : fromHf.message().c_str());
    QCOMPARE(test::firstDifferentWeight((*m)->config, applied->model->weights, (*fromHf)->weights),
             std::string());
    QVERIFY(forward((*fromHf)->config, (*fromHf)->weights, ids, {})->attention == fa->attention);

    // beforeCommit (the CLI's report, computed alongside the write): called once,
    // when the files are complete; its error leaves nothing behind.
    for (ExportFormat f : {ExportFormat::Hf, ExportFormat::Compressed}) {
      ExportOptions eo;
      eo.format = f;
      int calls = 0;
      eo.beforeCommit = [&]() -> Status {
        ++calls;
        // The folder being written (beside the target) holds the whole model by now.
        for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
          if (e.path().filename().string().starts_with("late.partial-")) {
            auto partial = loadModel(e.path());
            if (!partial.ok()) return makeError("incomplete: " + partial.message());
          }
        return Ok{};
      };
      QVERIFY(exportModel(tmp / "late", **m, *applied, p, eo).ok());
      QCOMPARE(calls, 1);
      QVERIFY(loadModel(tmp / "late").ok());
      std::filesystem::remove_all(tmp / "late");
      eo.beforeCommit = [&]() -> Status { return makeError("the report failed"); };
      const Status st = exportModel(tmp / "late", **m, *applied, p, eo);
      QVERIFY(!st.ok());
      QCOMPARE(QString::fromStdString(st.message()), QString("the report failed"));
      QVERIFY(!std::filesystem::exists(tmp / "late"));
      for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
        QVERIFY2(!e.path().filename().string().starts_with("late"), e.path().c_str());
    }

    // The same as one HDF5 file: reopened weights and attention equal, bit for bit.
    const Status h5 = writeCompressedHdf5(tmp / "m.h5", **m, *applied, p, "{\"report\": 1}");
    QVERIFY2(h5.ok(), h5.ok() ? "" : h5.message().c_str());
    auto fromH5 = loadModel(tmp / "m.h5");
    QVERIFY2(fromH5.ok(), fromH5.ok() ? "" : fromH5.message().c_str());
    QCOMPARE(test::firstDifferentWeight((*m)->config, applied->model->weights, (*fromH5)->weights),
             std::string());
    auto fc = forward((*fromH5)->config, (*fromH5)->weights, ids, {});
    QVERIFY(fa->attention == fc->attention);
    QVERIFY((*fromH5)->tokenizer != nullptr);
    QCOMPARE((*fromH5)->tokenizer->encode("the cat").ids, (*back)->tokenizer->encode("the cat").ids);
    auto h5file = readHdf5Model(tmp / "m.h5");
    QVERIFY(h5file.ok());
    QCOMPARE(h5file->report, std::string("{\"report\": 1}"));
    QCOMPARE(parsePlanJson(h5file->checkpoint.metadata.at("attnstudio_plan"), "plan").ok(), true);
    // Its size: the same stored bytes as the safetensors file plus HDF5's object
    // headers (a bounded amount per group and dataset), never more codes.
    int64_t payload = 0;
    for (const auto& [name, item] : ck->tensors) payload += int64_t(item.tensor.nbytes());
    for (const auto& [name, text] : (*fromH5)->sideFiles) payload += int64_t(text.size());
    const int64_t objects = int64_t(ck->tensors.size()) * 2 + 8;
    const int64_t h5bytes = int64_t(std::filesystem::file_size(tmp / "m.h5"));
    QVERIFY2(h5bytes >= payload, std::to_string(h5bytes).c_str());
    QVERIFY2(h5bytes - payload <= objects * kHdf5BytesPerObject + int64_t(planJson(p).size()) + 4096,
             (std::to_string(h5bytes - payload) + " bytes of overhead").c_str());
    // An exported HDF5 model exports again (its side files travel inside it).
    auto again = writeCompressedHdf5(tmp / "again.h5", **fromH5, *applyPlan(**fromH5, {}), {});
    QVERIFY2(again.ok(), again.ok() ? "" : again.message().c_str());
    QVERIFY(loadModel(tmp / "again.h5").ok());
  }

  void hfWrittenWhileApplying_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("weights");  // quantization plan text
    QTest::addColumn<QString>("prune");    // "", "weights" or "heads"
    QTest::addColumn<QString>("dtype");
    QTest::newRow("bert int8") << "bert_tiny" << "all=uniform:8:channel" << "" << "f32";
    QTest::newRow("bert pruned + 4-bit, bf16") << "bert_tiny" << "o,ffn_out=uniform:4" << "weights" << "bf16";
    QTest::newRow("bert heads removed") << "bert_tiny" << "all=uniform:8" << "heads" << "f32";
    QTest::newRow("bert pruned only") << "bert_tiny" << "" << "weights" << "f32";
    QTest::newRow("gpt2 thirds") << "gpt2_tiny" << "q=uniform:4; ffn_out=kmeans:2" << "" << "f32";
    QTest::newRow("bert mlm f16, prefix") << "bert_mlm_f16" << "q,k,v,o,ffn_in,ffn_out=uniform:8" << "" << "f16";
  }
  void hfWrittenWhileApplying() {
    // The CLI writes the hf file on one thread while applyPlan quantizes on another,
    // each layer as soon as it is final. The file holds exportModel's tensors, bit
    // for bit; what was published was final; a failure on either side leaves nothing.
    QFETCH(QString, model);
    QFETCH(QString, weights);
    QFETCH(QString, prune);
    QFETCH(QString, dtype);
    auto m = loadModel(test::dataDir() / "models" / model.toStdString());
    QVERIFY(m.ok());
    CompressionPlan p;
    QVERIFY(quant::applyPlanText(weights.toStdString(), p.quant).ok());
    if (prune == "weights") {
      sparse::PruneSpec nm;
      nm.method = sparse::PruneMethod::NM;
      p.prune.targets[int(Target::FfnIn)] = nm;
    } else if (prune == "heads") {
      p.prune.heads = {{0, 1}};
    }
    ExportOptions eo;
    eo.dtype = dtype == "f16" ? DType::F16 : dtype == "bf16" ? DType::BF16 : DType::F32;
    test::TempDir tmp;

    WeightFeed feed;
    std::optional<Status> written;
    std::atomic<int> commits = 0;
    ExportOptions streamed = eo;
    streamed.beforeCommit = [&]() -> Status {
      ++commits;
      return Ok{};
    };
    std::thread writer([&] { written = exportHfWhileApplying(tmp / "s", **m, feed, p, streamed); });
    std::vector<int> upTos;
    std::map<std::string, const void*> published;  // name → data when it was published
    auto applied = applyPlan(**m, p, nullptr, nullptr, false, true, [&](const Model& partial, int upTo) {
      upTos.push_back(upTo);
      for (const auto& [name, t] : namedWeights(partial.config, partial.weights))
        if (weightLayer(partial.weights, t) <= upTo && !published.count(name)) published[name] = t->raw();
      feed.publish(partial, upTo);
    });
    QVERIFY(applied.ok());
    feed.publish(*applied->model, applied->model->config.layers);
    writer.join();
    QVERIFY(written.has_value());
    QVERIFY2(written->ok(), written->ok() ? "" : written->message().c_str());
    QCOMPARE(commits.load(), 1);

    // Layer by layer, in order, ending with all of them (not when heads are removed:
    // they are zeroed after quantizing; nor without quantization).
    const int layers = (*m)->config.layers;
    if (prune == "heads" || weights.isEmpty()) {
      QVERIFY(upTos.empty());
    } else {
      QVERIFY(std::is_sorted(upTos.begin(), upTos.end()));
      QCOMPARE(std::adjacent_find(upTos.begin(), upTos.end()), upTos.end());
      QCOMPARE(upTos.back(), layers);
      if (model != "gpt2_tiny") QVERIFY2(upTos.size() >= size_t(layers), "published in one go");
      for (const auto& [name, t] : namedWeights(applied->model->config, applied->model->weights))
        QVERIFY2(published.count(name) && published[name] == t->raw(), name.c_str());
    }

    // The same file as exportModel's (tensors, dtypes, shapes, metadata, side files).
    QVERIFY(exportModel(tmp / "ref", **m, *applied, p, eo).ok());
    auto a = openCheckpoint(tmp / "s"), b = openCheckpoint(tmp / "ref");
    QVERIFY(a.ok() && b.ok());
    QCOMPARE(a->tensors.size(), b->tensors.size());
    for (const auto& [name, item] : b->tensors) {
      QVERIFY2(a->tensors.count(name), name.c_str());
      const Tensor &x = a->tensors.at(name).tensor, &y = item.tensor;
      QVERIFY2(x.dtype() == y.dtype() && x.shape() == y.shape(), name.c_str());
      QVERIFY2(std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0, name.c_str());
    }
    QCOMPARE(a->metadata, b->metadata);
    if (prune != "heads") {
      // And, independently of the writer: every engine weight is the compressed
      // model's, rounded to the export dtype as torch's .half() / .bfloat16() do.
      const std::string prefix = checkpointPrefix(*a, (*m)->config.arch);
      for (const auto& [name, t] : namedWeights(applied->model->config, applied->model->weights)) {
        QVERIFY2(a->tensors.count(prefix + name), name.c_str());
        const Tensor& x = a->tensors.at(prefix + name).tensor;
        QVERIFY2(x.dtype() == eo.dtype && x.shape() == t->shape(), name.c_str());
        const auto* bits = static_cast<const uint16_t*>(x.raw());
        for (int64_t i = 0; i < t->numel(); ++i) {
          const float v = t->f32()[i];
          const bool same = eo.dtype == DType::F32  ? x.f32()[i] == v || (v != v && x.f32()[i] != x.f32()[i])
                            : eo.dtype == DType::F16 ? bits[i] == floatToHalf(v)
                                                     : bits[i] == floatToBf16(v);
          if (!same) QFAIL((name + " differs at " + std::to_string(i)).c_str());
        }
      }
    }
    QCOMPARE(test::readBytes(tmp / "s" / "config.json"), test::readBytes(tmp / "ref" / "config.json"));
    if (prune != "heads") {
      // Laid out as the layers become final: the first layer's query before the last's.
      const std::string prefix = checkpointPrefix(*a, (*m)->config.arch);
      const std::string first = prefix + linearWeightName((*m)->config.arch, 0, "q"),
                        last = prefix + linearWeightName((*m)->config.arch, layers - 1, "q");
      QVERIFY(a->tensors.at(first).tensor.raw() < a->tensors.at(last).tensor.raw());
    }
    if (eo.dtype == DType::F32) {
      auto back = loadModel(tmp / "s");
      QVERIFY(back.ok());
      if (prune != "heads")
        QCOMPARE(test::firstDifferentWeight((*m)->config, applied->model->weights, (*back)->weights),
                 std::string());
    }

    // Applying fails after the first layer: the writer stops with that error, nothing is left.
    WeightFeed failing;
    std::thread second([&] { written = exportHfWhileApplying(tmp / "f", **m, failing, p, eo); });
    failing.publish(*applied->model, -1);
    failing.fail("cancelled while quantizing");
    second.join();
    QVERIFY(written && !written->ok());
    QCOMPARE(QString::fromStdString(written->message()), QString("cancelled while quantizing"));
    // A feed complete without a tensor the source has: an error, not a wait.
    WeightFeed incomplete;
    Model empty;
    empty.config = (*m)->config;
    incomplete.publish(empty, layers);
    written = exportHfWhileApplying(tmp / "f", **m, incomplete, p, eo);
    QVERIFY(!written->ok());
    QVERIFY2(QString::fromStdString(written->message()).contains("the compressed model has no tensor"),
             qPrintable(QString::fromStdString(written->message())));
    // A failed report (beforeCommit) after a complete write: nothing either.
    WeightFeed whole;
    whole.publish(*applied->model, layers);
    ExportOptions refused = eo;
    refused.beforeCommit = [] { return Status(makeError("the report failed")); };
    written = exportHfWhileApplying(tmp / "f", **m, whole, p, refused);
    QCOMPARE(QString::fromStdString(written->message()), QString("the report failed"));
    for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
      QVERIFY2(!e.path().filename().string().starts_with("f"), e.path().c_str());
  }

  void hdf5ReportWrittenLast() {
    // The CLI computes the report while the tensors are written: lateReport is
    // called after them and its text stored as /report; its error leaves nothing.
    auto m = loadModel(test::dataDir() / "models" / "bert_tiny");
    QVERIFY(m.ok());
    CompressionPlan p;
    QVERIFY(quant::applyPlanText("all=uniform:4:group:16", p.quant).ok());
    auto applied = applyPlan(**m, p);
    QVERIFY(applied.ok());
    test::TempDir tmp;
    int calls = 0;
    const Status st = writeCompressedHdf5(tmp / "m.h5", **m, *applied, p, {}, nullptr,
                                          [&]() -> Result<std::string> {
                                            ++calls;
                                            return std::string("{\"late\": true}");
                                          });
    QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
    QCOMPARE(calls, 1);
    auto back = readHdf5Model(tmp / "m.h5");
    QVERIFY(back.ok());
    QCOMPARE(back->report, std::string("{\"late\": true}"));
    auto reopened = loadModel(tmp / "m.h5");
    QVERIFY(reopened.ok());
    QCOMPARE(test::firstDifferentWeight((*m)->config, applied->model->weights, (*reopened)->weights),
             std::string());
    Status failed = writeCompressedHdf5(tmp / "f.h5", **m, *applied, p, {}, nullptr,
                                        []() -> Result<std::string> { return makeError("the report failed"); });
    QCOMPARE(QString::fromStdString(failed.message()), QString("the report failed"));
    failed = writeCompressedHdf5(tmp / "f.h5", **m, *applied, p, "{}", nullptr,
                                 []() -> Result<std::string> { return std::string("{}"); });
    QVERIFY(!failed.ok());
    for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
      QVERIFY2(e.path().filename().string().find("f.h5") == std::string::npos, e.path().c_str());
  }

  void corruptedHdf5FilesFailClearly() {
    auto m = loadModel(test::dataDir() / "models" / "bert_tiny");
    CompressionPlan p;
    QVERIFY(quant::applyPlanText("all=uniform:4:group:16:asym", p.quant).ok());
    auto applied = applyPlan(**m, p);
    test::TempDir tmp;
    QVERIFY(writeCompressedHdf5(tmp / "m.h5", **m, *applied, p).ok());
    const std::string bytes = test::readBytes(tmp / "m.h5");
    // Truncated at several points: an error, never a crash or a wrong model.
    for (double cut : {0.001, 0.1, 0.5, 0.9, 0.999}) {
      test::writeBytes(tmp / "t.h5", bytes.substr(0, size_t(double(bytes.size()) * cut)));
      auto r = loadModel(tmp / "t.h5");
      QVERIFY2(!r.ok(), std::to_string(cut).c_str());
      QVERIFY2(r.message().find("t.h5") != std::string::npos, r.message().c_str());
    }
    // Bytes flipped in the middle (the data region): an error or a model, never a crash.
    std::string flipped = bytes;
    for (size_t i = flipped.size() / 3; i < flipped.size() / 3 + 4096 && i < flipped.size(); ++i)
      flipped[i] = char(~flipped[i]);
    test::writeBytes(tmp / "f.h5", flipped);
    auto f = loadModel(tmp / "f.h5");
    if (!f.ok()) QVERIFY(!f.message().empty());
    // An HDF5 file that is not a model (an attention dump) is refused by name.
    test::writeBytes(tmp / "x.h5", "\x89HDF\r\n\x1a\n not really");
    auto x = loadModel(tmp / "x.h5");
    QVERIFY(!x.ok());
    QVERIFY2(x.message().find("x.h5") != std::string::npos, x.message().c_str());
    // Exporting into a folder without write permission fails cleanly; the input stays.
    std::filesystem::create_directories(tmp / "ro");
    std::filesystem::permissions(tmp / "ro", std::filesystem::perms::owner_read |
                                                 std::filesystem::perms::owner_exec);
    if (::geteuid() != 0) {  // root writes anywhere
      const Status st = writeCompressedHdf5(tmp / "ro" / "m.h5", **m, *applied, p);
      QVERIFY(!st.ok());
      QVERIFY2(st.message().find("ro") != std::string::npos, st.message().c_str());
      QVERIFY(std::filesystem::is_empty(tmp / "ro"));
      const Status dir = writeCompressedModel(tmp / "ro" / "c", **m, *applied, p);
      QVERIFY(!dir.ok());
      QVERIFY(std::filesystem::is_empty(tmp / "ro"));
    }
    std::filesystem::permissions(tmp / "ro", std::filesystem::perms::owner_all);
    QCOMPARE(test::readBytes(tmp / "m.h5"), bytes);
    QVERIFY(loadModel(test::dataDir() / "models" / "bert_tiny").ok());
  }

  void corruptedCompressedFilesFailClearly() {
    auto m = loadModel(test::dataDir() / "models" / "bert_tiny");
    CompressionPlan p;
    QVERIFY(quant::applyPlanText("all=uniform:4:group:16:asym", p.quant).ok());
    auto applied = applyPlan(**m, p);
    test::TempDir tmp;
    QVERIFY(writeCompressedModel(tmp / "c", **m, *applied, p).ok());
    auto ck = openCheckpoint(tmp / "c");
    // Rewrite the file without one part, with a wrong-sized part, with bad metadata.
    auto rewrite = [&](const std::string& drop, const std::string& shrink,
                       std::map<std::string, std::string> meta)
        -> Result<std::shared_ptr<const Model>> {
      std::vector<std::pair<std::string, Tensor>> ts;
      for (const auto& [name, item] : ck->tensors) {
        if (name == drop) continue;
        if (name == shrink) {
          std::vector<uint8_t> v(size_t(item.tensor.numel() - 1), 0);
          auto holder = std::make_shared<std::vector<uint8_t>>(v);
          ts.emplace_back(name, Tensor(DType::U8, {int64_t(v.size())}, holder->data(), holder));
          continue;
        }
        ts.emplace_back(name, item.tensor);
      }
      std::filesystem::remove_all(tmp / "d");
      std::filesystem::create_directories(tmp / "d");
      std::filesystem::copy_file(tmp / "c" / "config.json", tmp / "d" / "config.json");
      if (!writeSafetensors(tmp / "d" / "model.safetensors", ts, meta)) qFatal("write");
      return loadModel(tmp / "d");
    };
    const std::string q = "encoder.layer.0.attention.self.query.weight";
    auto r1 = rewrite(q + ".zeros", "", ck->metadata);
    QVERIFY(!r1.ok());
    QVERIFY2(r1.message().find(q + ".zeros' is missing") != std::string::npos, r1.message().c_str());
    auto r2 = rewrite("", q + ".qweight", ck->metadata);
    QVERIFY(!r2.ok());
    QVERIFY2(r2.message().find(q + ".qweight has") != std::string::npos, r2.message().c_str());
    auto meta = ck->metadata;
    meta["attnstudio_tensors"] = "{\"x\": 1";
    auto r3 = rewrite("", "", meta);
    QVERIFY(!r3.ok());
    QVERIFY2(r3.message().find("attnstudio_tensors") != std::string::npos, r3.message().c_str());
    // Truncated file: the safetensors checks catch it.
    const std::string bytes = test::readBytes(tmp / "c" / "model.safetensors");
    test::writeBytes(tmp / "c" / "model.safetensors", bytes.substr(0, bytes.size() / 2));
    auto r4 = loadModel(tmp / "c");
    QVERIFY(!r4.ok());
  }

  // Removed heads leave a Hugging Face export as transformers' prune_heads leaves a
  // model: slices cut out, config.json "pruned_heads"; reopened, the same attention.
  void hfExportCutsRemovedHeads_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("weights");
    QTest::newRow("bert, uniform") << "bert_tiny" << "all=uniform:4:channel";
    QTest::newRow("bert, binary ffn + q") << "bert_tiny" << "q,v,ffn_in=binary:1";
    QTest::newRow("gpt2, kmeans") << "gpt2_tiny" << "q,k,v,o=kmeans:3";
  }
  void hfExportCutsRemovedHeads() {
    QFETCH(QString, model);
    QFETCH(QString, weights);
    auto m = loadModel(test::dataDir() / "models" / model.toStdString());
    QVERIFY(m.ok());
    const ModelConfig& c = (*m)->config;
    CompressionPlan p;
    QVERIFY(quant::applyPlanText(weights.toStdString(), p.quant).ok());
    p.prune.heads = {{0, 1}, {1, 3}, {1, 0}};
    auto applied = applyPlan(**m, p);
    QVERIFY2(applied.ok(), applied.ok() ? "" : applied.message().c_str());
    // In the app the removed heads are zero, also after a quantizer without a zero level.
    const int Dh = c.headDim();
    const LayerWeights& l1 = applied->model->weights.layers[1];
    const Tensor& v = l1.fusedQkv() ? l1.qkv.w : l1.v.w;
    if (!l1.fusedQkv())
      for (int64_t i = 3 * Dh * c.hidden; i < 4 * Dh * c.hidden; ++i) QCOMPARE(v.f32()[i], 0.0f);
    test::TempDir tmp;
    ExportOptions eo;
    QVERIFY(exportModel(tmp / "hf", **m, *applied, p, eo).ok());
    // config.json: pruned_heads with the original indices; tensors without the slices.
    auto cfg = readConfigJson(tmp / "hf" / "config.json");
    QVERIFY2(cfg.ok(), cfg.ok() ? "" : cfg.message().c_str());
    QCOMPARE(cfg->prunedHeads.size(), size_t(2));
    QCOMPARE(cfg->prunedHeads.at(0), std::vector<int>({1}));
    QCOMPARE(cfg->prunedHeads.at(1), std::vector<int>({0, 3}));
    auto ck = openCheckpoint(tmp / "hf");
    QVERIFY(ck.ok());
    const std::string pre = checkpointPrefix(*ck, c.arch);
    if (c.arch == Architecture::Gpt2) {
      QCOMPARE(ck->find(pre + "h.1.attn.c_attn.weight")->shape(), Shape({c.hidden, 3 * (c.heads - 2) * Dh}));
      QCOMPARE(ck->find(pre + "h.1.attn.c_attn.bias")->shape(), Shape({3 * (c.heads - 2) * Dh}));
      QCOMPARE(ck->find(pre + "h.0.attn.c_proj.weight")->shape(), Shape({(c.heads - 1) * Dh, c.hidden}));
    } else {
      QCOMPARE(ck->find(pre + "encoder.layer.1.attention.self.query.weight")->shape(),
               Shape({(c.heads - 2) * Dh, c.hidden}));
      QCOMPARE(ck->find(pre + "encoder.layer.1.attention.self.value.bias")->shape(), Shape({(c.heads - 2) * Dh}));
      QCOMPARE(ck->find(pre + "encoder.layer.0.attention.output.dense.weight")->shape(),
               Shape({c.hidden, (c.heads - 1) * Dh}));
      // Kept head 0 of layer 1 in the file is original head 1 (transformers keeps the order).
      const Tensor* q = ck->find(pre + "encoder.layer.1.attention.self.query.weight");
      const Tensor& full = applied->model->weights.layers[1].q.w;
      QVERIFY(std::equal(q->f32(), q->f32() + Dh * c.hidden, full.f32() + 1 * Dh * c.hidden));
      QVERIFY(std::equal(q->f32() + Dh * c.hidden, q->f32() + 2 * Dh * c.hidden, full.f32() + 2 * Dh * c.hidden));
    }
    // Reopened: the heads come back as zeros; the attention is the app's, bit for bit.
    auto back = loadModel(tmp / "hf");
    QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
    QCOMPARE(test::firstDifferentWeight(c, applied->model->weights, (*back)->weights), std::string());
    std::vector<int32_t> ids;
    for (int i = 0; i < 9; ++i) ids.push_back(3 + (i * 11) % 90);
    auto fa = forward(applied->model->config, applied->model->weights, ids, {});
    auto fb = forward((*back)->config, (*back)->weights, ids, {});
    QVERIFY(fa->attention == fb->attention);
    QVERIFY(fa->lastHidden == fb->lastHidden);
    // Exported again with one more head removed: the union is recorded and cut.
    CompressionPlan more;
    more.prune.heads = {{0, 2}};
    auto again = applyPlan(**back, more);
    QVERIFY(again.ok());
    QVERIFY(exportModel(tmp / "hf2", **back, *again, more, eo).ok());
    auto cfg2 = readConfigJson(tmp / "hf2" / "config.json");
    QVERIFY(cfg2.ok());
    QCOMPARE(cfg2->prunedHeads.at(0), std::vector<int>({1, 2}));
    QCOMPARE(cfg2->prunedHeads.at(1), std::vector<int>({0, 3}));
    QVERIFY(loadModel(tmp / "hf2").ok());
    // The compressed formats keep full-size tensors; reopened, the heads are zero too.
    ExportOptions h5;
    h5.format = ExportFormat::Hdf5;
    QVERIFY(exportModel(tmp / "m.h5", **m, *applied, p, h5).ok());
    auto fromH5 = loadModel(tmp / "m.h5");
    QVERIFY(fromH5.ok());
    QCOMPARE(test::firstDifferentWeight(c, applied->model->weights, (*fromH5)->weights), std::string());
    // Removing every head of a layer is refused, with nothing written.
    CompressionPlan all;
    for (int h = 0; h < c.heads; ++h) all.prune.heads.push_back({0, h});
    auto allApplied = applyPlan(**m, all);
    QVERIFY(allApplied.ok());
    const Status refused = exportModel(tmp / "hf3", **m, *allApplied, all, eo);
    QVERIFY(!refused.ok());
    QVERIFY2(refused.message().find("at least one must stay") != std::string::npos, refused.message().c_str());
    QVERIFY(!std::filesystem::exists(tmp / "hf3"));
  }

  void badPrunedHeadsInConfig_data() {
    QTest::addColumn<QString>("value");
    QTest::addColumn<QString>("message");
    QTest::newRow("not an object") << "[1]" << "\"pruned_heads\" must be an object";
    QTest::newRow("bad layer") << "{\"7\": [0]}" << "pruned_heads: \"7\" is not a layer";
    QTest::newRow("bad head") << "{\"0\": [9]}" << "pruned_heads.0: 9 is not a head";
    QTest::newRow("every head") << "{\"0\": [0, 1, 2, 3]}" << "removes every head";
  }
  void badPrunedHeadsInConfig() {
    QFETCH(QString, value);
    QFETCH(QString, message);
    std::string text = test::readBytes(test::dataDir() / "models" / "bert_tiny" / "config.json");
    text.insert(text.find('{') + 1, "\"pruned_heads\": " + value.toStdString() + ",");
    auto c = parseConfigJson(text, "config.json");
    QVERIFY(!c.ok());
    QVERIFY2(c.message().find(message.toStdString()) != std::string::npos, c.message().c_str());
  }

  // The JSON report's numbers are the engine's: per-tensor statistics of the
  // quantizer, per-head KL / JS of a forward pass with the plan's attention settings.
  void reportNumbersAreTheEngines() {
    auto m = loadModel(test::dataDir() / "models" / "bert_tiny");
    QVERIFY(m.ok());
    CompressionPlan p = samplePlan();
    auto applied = applyPlan(**m, p);
    QVERIFY(applied.ok());
    const std::string text = "the cat sat on the mat";
    auto json = reportJson(**m, *applied, p, text);
    QVERIFY(json.ok());
    const QJsonObject r = QJsonDocument::fromJson(QByteArray::fromStdString(*json)).object();
    QCOMPARE(qint64(r["bytes_before"].toDouble()), qint64(applied->bytesBefore));
    QCOMPARE(qint64(r["bytes_after"].toDouble()), qint64(applied->bytesAfter));
    const QJsonArray tensors = r["tensors"].toArray();
    QCOMPARE(tensors.size(), qsizetype(applied->quantized.size()));
    for (qsizetype i = 0; i < tensors.size(); ++i) {
      const auto& t = applied->quantized[size_t(i)];
      const QJsonObject o = tensors[i].toObject();
      QCOMPARE(o["name"].toString().toStdString(), t.name);
      QCOMPARE(o["mse"].toDouble(), t.stats.mse);
      QCOMPARE(o["bits_per_weight"].toDouble(), t.stats.bitsPerWeight);
    }
    // An independent forward pass: the original against the compressed model with
    // the plan's attention quantization and sparsity.
    const auto ids = (*m)->tokenizer->encode(text).ids;
    auto ref = forward((*m)->config, (*m)->weights, ids, {});
    auto got = forward(applied->model->config, applied->model->weights, ids, {}, forwardOptions(p));
    QVERIFY(ref.ok() && got.ok());
    const Fidelity fid = fidelity(*ref, *got);
    QCOMPARE(r["attention_kl_mean"].toDouble(), fid.klMean);
    QCOMPARE(r["hidden_cosine"].toDouble(), fid.hiddenCosine);
    const QJsonArray heads = r["heads"].toArray();
    QCOMPARE(heads.size(), qsizetype(fid.kl.size()));
    for (qsizetype i = 0; i < heads.size(); ++i) {
      QCOMPARE(heads[i].toObject()["kl"].toDouble(), fid.kl[size_t(i)]);
      QCOMPARE(heads[i].toObject()["js"].toDouble(), fid.js[size_t(i)]);
    }
    // The CSV carries the same rows.
    const std::string csv = reportCsv(*json);
    QCOMPARE(qsizetype(std::count(csv.begin(), csv.end(), '\n')), 1 + tensors.size() + heads.size());
    // Both at once (one pair of forward passes) equal the two made separately.
    auto both = reportJsonAndFigures(**m, *applied, p, text);
    auto figures = reportFigures(**m, *applied, p, text);
    QVERIFY(both.ok() && figures.ok());
    QCOMPARE(both->json, *json);
    QCOMPARE(both->figures.klMean, figures->klMean);
    QCOMPARE(both->figures.klMean, fid.klMean);
    QCOMPARE(both->figures.layerKl, figures->layerKl);
    QCOMPARE(both->figures.tokens, figures->tokens);
    QCOMPARE(both->figures.mostChanged.size(), figures->mostChanged.size());
    for (size_t i = 0; i < figures->mostChanged.size(); ++i) {
      QCOMPARE(both->figures.mostChanged[i].kl, figures->mostChanged[i].kl);
      QVERIFY(both->figures.mostChanged[i].after == figures->mostChanged[i].after);
    }
    QCOMPARE(both->figures.errors.size(), figures->errors.size());
    QCOMPARE(both->figures.patterns.size(), figures->patterns.size());
  }

  // Re-applying after a change of weight specs re-quantizes only what changed and
  // gives exactly what applying the new plan from scratch gives.
  void reapplyEqualsApplyFromScratch_data() {
    QTest::addColumn<QString>("model");
    QTest::newRow("bert") << "bert_tiny";
    QTest::newRow("gpt2 (fused c_attn)") << "gpt2_tiny";
  }
  void reapplyEqualsApplyFromScratch() {
    QFETCH(QString, model);
    auto m = loadModel(test::dataDir() / "models" / model.toStdString());
    QVERIFY(m.ok());
    CompressionPlan plan;
    QVERIFY(quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:8:channel", plan.quant).ok());
    sparse::PruneSpec nm;
    nm.method = sparse::PruneMethod::NM;
    plan.prune.targets[int(Target::FfnIn)] = nm;
    plan.prune.heads = {{0, 1}};
    plan.prune.attention.all.kind = sparse::AttentionRule::Kind::Threshold;
    auto previous = applyPlan(**m, plan);
    QVERIFY(previous.ok());
    auto prune = [](sparse::PruneMethod method, double sparsity, int n = 2, int mm = 4) {
      sparse::PruneSpec p;
      p.method = method;
      p.sparsity = sparsity;
      p.n = n;
      p.m = mm;
      return std::optional<sparse::PruneSpec>(p);
    };
    using Step = std::function<void(CompressionPlan&)>;
    auto quantStep = [](const char* text) -> Step {
      return [text](CompressionPlan& p) { QVERIFY(quant::applyPlanText(text, p.quant).ok()); };
    };
    // Each step, and whether it may reuse matrices (most of the model changing, or a
    // Global spec, applies the whole plan).
    const std::pair<Step, bool> steps[] = {
        {quantStep("ffn_in=uniform:4:group:16"), true},        // one group: new bits and granularity
        {quantStep("layer 1 q=kmeans:3"), true},               // one matrix
        {quantStep("o=none"), true},                           // a group no longer quantized
        {quantStep("emb=uniform:8:channel"), true},            // embeddings added
        {quantStep("all=uniform:8:channel; emb=none"), true},  // back to int8 everywhere (6 of 13 change)
        // Pruning of one target changed: its matrices pruned and quantized again.
        {[&](CompressionPlan& p) { p.prune.targets[int(Target::FfnIn)] = prune(sparse::PruneMethod::NM, 0, 4, 8); }, true},
        {[&](CompressionPlan& p) { p.prune.targets[int(Target::FfnOut)] = prune(sparse::PruneMethod::Magnitude, 0.3); }, true},
        {[&](CompressionPlan& p) {  // o (where head (0, 1) is removed too) pruned, not quantized
           QVERIFY(quant::applyPlanText("o=none", p.quant).ok());
           p.prune.targets[int(Target::O)] = prune(sparse::PruneMethod::Block, 0.25);
         }, true},
        {[&](CompressionPlan& p) { p.prune.targets[int(Target::FfnIn)].reset(); }, true},  // dense again
        {[&](CompressionPlan& p) {  // a Global spec: the whole plan again
           p.prune.targets[int(Target::K)] = prune(sparse::PruneMethod::Global, 0.4);
         }, false},
    };
    for (const auto& [step, incremental] : steps) {
      CompressionPlan next = plan;
      step(next);
      next.prune.attention.all.tau = 0.05;  // attention settings never matter here
      for (bool histograms : {true, false}) {
        auto prevRun = histograms ? std::move(previous) : applyPlan(**m, plan, nullptr, nullptr, false, false);
        QVERIFY(prevRun.ok());
        auto got = reapplyPlan(**m, *prevRun, plan, next, nullptr, nullptr, histograms);
        auto want = applyPlan(**m, next, nullptr, nullptr, false, histograms);
        QVERIFY2(got.ok(), got.ok() ? "" : got.message().c_str());
        QVERIFY(want.ok());
        QCOMPARE(test::firstDifferentWeight(want->model->config, got->model->weights, want->model->weights),
                 std::string());
        QCOMPARE(got->quantized.size(), want->quantized.size());
        for (size_t k = 0; k < want->quantized.size(); ++k) {
          QCOMPARE(got->quantized[k].name, want->quantized[k].name);
          QCOMPARE(got->quantized[k].stats.mse, want->quantized[k].stats.mse);
          QCOMPARE(got->quantized[k].stats.errors.counts, want->quantized[k].stats.errors.counts);
          QCOMPARE(got->codes[k]->storageBytes(), want->codes[k]->storageBytes());
        }
        QCOMPARE(got->bytesAfter, want->bytesAfter);
        QCOMPARE(got->bytesBefore, want->bytesBefore);
        // Matrices taken over from the previous result are its very tensors.
        int shared = 0;
        for (size_t l = 0; l < got->model->weights.layers.size(); ++l) {
          const LayerWeights &a = got->model->weights.layers[l], &b = prevRun->model->weights.layers[l],
                             &c = (*m)->weights.layers[l];  // not the base's own (never edited)
          const Tensor* sets[][3] = {{&a.ffnOut.w, &b.ffnOut.w, &c.ffnOut.w},
                                     {&a.o.w, &b.o.w, &c.o.w},
                                     {&a.qkv.w, &b.qkv.w, &c.qkv.w},
                                     {&a.v.w, &b.v.w, &c.v.w}};
          for (const auto& t : sets)
            shared += !t[0]->empty() && t[0]->raw() == t[1]->raw() && t[0]->raw() != t[2]->raw();
        }
        QCOMPARE(shared > 0, incremental);
        QCOMPARE(got->pruned.size(), want->pruned.size());
        for (size_t k = 0; k < want->pruned.size(); ++k) {
          QCOMPARE(got->pruned[k].name, want->pruned[k].name);
          QCOMPARE(got->pruned[k].mask.size(), want->pruned[k].mask.size());
          for (int64_t i = 0; i < want->pruned[k].mask.size(); ++i)
            if (got->pruned[k].mask.get(i) != want->pruned[k].mask.get(i))
              QFAIL(qPrintable(QString("%1: mask differs at %2").arg(want->pruned[k].name.c_str()).arg(i)));
          QCOMPARE(got->pruned[k].bytes.csr, want->pruned[k].bytes.csr);
        }
        if (histograms) previous = std::move(got);
      }
      plan = next;
    }
    // A change of pruning: the whole plan again, still equal.
    CompressionPlan pruned = plan;
    pruned.prune.heads = {{1, 0}};
    auto got = reapplyPlan(**m, *previous, plan, pruned);
    auto want = applyPlan(**m, pruned);
    QVERIFY(got.ok() && want.ok());
    QCOMPARE(test::firstDifferentWeight(want->model->config, got->model->weights, want->model->weights),
             std::string());
  }

  // Without histograms each matrix is dequantized straight into a new tensor (read
  // where the base keeps it); with them through dequantize() + errorStats. The same
  // weights and statistics either way, for BERT ([out, in], read in place) and GPT-2
  // (Conv1D and fused c_attn thirds, copied), with and without pruning masks.
  void applyWithoutHistogramsEqualsWithThem_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<bool>("pruned");
    QTest::newRow("bert") << "bert_tiny" << false;
    QTest::newRow("bert, 2:4 on ffn_in") << "bert_tiny" << true;
    QTest::newRow("gpt2") << "gpt2_tiny" << false;
  }
  void applyWithoutHistogramsEqualsWithThem() {
    QFETCH(QString, model);
    QFETCH(bool, pruned);
    auto m = loadModel(test::dataDir() / "models" / model.toStdString());
    QVERIFY(m.ok());
    CompressionPlan plan;
    QVERIFY(quant::applyPlanText("all=uniform:4:group:16; emb=none; o=kmeans:3", plan.quant).ok());
    if (pruned) {
      sparse::PruneSpec nm;
      nm.method = sparse::PruneMethod::NM;
      plan.prune.targets[int(Target::FfnIn)] = nm;
    }
    ThreadPool pool(2);
    auto with = applyPlan(**m, plan, &pool, nullptr, false, /*histograms=*/true);
    auto without = applyPlan(**m, plan, &pool, nullptr, false, /*histograms=*/false);
    QVERIFY(with.ok() && without.ok());
    QCOMPARE(test::firstDifferentWeight((*m)->config, without->model->weights, with->model->weights),
             std::string());
    QCOMPARE(without->quantized.size(), with->quantized.size());
    for (size_t k = 0; k < with->quantized.size(); ++k) {
      QCOMPARE(without->quantized[k].stats.mse, with->quantized[k].stats.mse);
      QCOMPARE(without->quantized[k].stats.maxAbsError, with->quantized[k].stats.maxAbsError);
      QVERIFY(without->quantized[k].stats.errors.counts.empty());
      QVERIFY(!with->quantized[k].stats.errors.counts.empty());
    }
    // And the base is what it was (read in place, never written).
    auto again = loadModel(test::dataDir() / "models" / model.toStdString());
    QVERIFY(again.ok());
    QCOMPARE(test::firstDifferentWeight((*m)->config, (*m)->weights, (*again)->weights), std::string());
  }

  void applyEqualsPruneThenQuantize() {
    auto m = loadModel(test::dataDir() / "models" / "bert_tiny");
    QVERIFY(m.ok());
    CompressionPlan p = samplePlan();
    p.quant = {};
    QVERIFY(quant::applyPlanText("all=uniform:4:channel", p.quant).ok());
    auto applied = applyPlan(**m, p);
    QVERIFY2(applied.ok(), applied.ok() ? "" : applied.message().c_str());
    auto pruned = sparse::pruneModel(**m, p.prune);
    QVERIFY(pruned.ok());
    auto quantized = quant::quantizeModel(*pruned->model, p.quant);
    QVERIFY(quantized.ok());
    QCOMPARE(attn::test::firstDifferentWeight((*m)->config, applied->model->weights, quantized->model->weights), std::string());
    QCOMPARE(applied->pruned.size(), pruned->tensors.size());
    QVERIFY(applied->bytesAfter < applied->bytesBefore);
    // A removed head's Q rows stay zero after quantization (symmetric grid).
    const int Dh = (*m)->config.headDim();
    const Tensor& q0 = applied->model->weights.layers[0].q.w;
    for (int r = Dh; r < 2 * Dh; ++r)
      for (int c = 0; c < (*m)->config.hidden; ++c) QCOMPARE(q0.f32()[r * (*m)->config.hidden + c], 0.0f);
  }
};

QTEST_GUILESS_MAIN(TestCompress)
#include "test_compress.moc"
