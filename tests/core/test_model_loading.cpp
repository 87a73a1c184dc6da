// Loading whole models: every fixture architecture, zero-copy F32, parameter
// counts from the config's own arithmetic, and every way a model directory can
// be broken (each a clear error naming the file/tensor and numbers; no crash).
#include <QTest>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/model/hf_writer.h"
#include "core/model/model.h"
#include "tests/core/test_helpers.h"

using namespace attn;
using attn::test::TempDir;
namespace fs = std::filesystem;

namespace {
fs::path fixture(const std::string& name) { return attn::test::dataDir() / "models" / name; }

// Copies a fixture directory so a test can break it.
fs::path copyFixture(const TempDir& tmp, const std::string& name) {
  const fs::path dst = tmp / name;
  fs::copy(fixture(name), dst, fs::copy_options::recursive);
  return dst;
}

void editConfig(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(attn::test::readBytes(dir / "config.json"));
  edit(j);
  attn::test::writeBytes(dir / "config.json", j.dump());
}

// Rewrites model.safetensors after `edit` changed its tensor list.
void editTensors(const fs::path& dir,
                 const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
  auto ck = openCheckpoint(dir);
  QVERIFY(ck.ok());
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const auto& [name, item] : ck->tensors) ts.emplace_back(name, item.tensor.toF32());
  // Copy values out of the mapping before the file is replaced.
  for (auto& [name, t] : ts) {
    std::vector<float> v(t.f32(), t.f32() + t.numel());
    t = Tensor::fromF32(t.shape(), std::move(v));
  }
  edit(ts);
  QVERIFY(writeSafetensors(dir / "model.safetensors", ts).ok());
}

void expectError(const fs::path& path, const std::string& part) {
  auto m = loadModel(path);
  QVERIFY2(!m.ok(), ("loaded although broken; expected: " + part).c_str());
  QVERIFY2(m.message().find(part) != std::string::npos,
           ("message was: " + m.message() + "\nexpected: " + part).c_str());
}
}  // namespace

class TestModelLoading : public QObject {
  Q_OBJECT

 private slots:
  void everyFixtureLoads_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<QString>("arch");
    QTest::addColumn<QString>("tokenizer");
    QTest::addColumn<int>("layers");
    QTest::newRow("bert_tiny") << "bert_tiny"
                               << "bert"
                               << "wordpiece" << 2;
    QTest::newRow("bert_mlm_f16") << "bert_mlm_f16"
                                  << "bert"
                                  << "wordpiece" << 3;
    QTest::newRow("bert_sharded") << "bert_sharded"
                                  << "bert"
                                  << "wordpiece" << 2;
    QTest::newRow("roberta_tiny") << "roberta_tiny"
                                  << "roberta"
                                  << "bpe" << 2;
    QTest::newRow("distilbert_tiny") << "distilbert_tiny"
                                     << "distilbert"
                                     << "wordpiece" << 2;
    QTest::newRow("gpt2_tiny") << "gpt2_tiny"
                               << "gpt2"
                               << "bpe" << 2;
    QTest::newRow("gpt2_bf16") << "gpt2_bf16"
                               << "gpt2"
                               << "bpe" << 3;
    QTest::newRow("bert_bare") << "bert_bare/bert.safetensors"
                               << "bert"
                               << "none" << 1;
  }

  void everyFixtureLoads() {
    QFETCH(QString, name);
    QFETCH(QString, arch);
    QFETCH(QString, tokenizer);
    QFETCH(int, layers);
    auto m = loadModel(fixture(name.toStdString()));
    QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
    QCOMPARE(QString::fromStdString(architectureName((*m)->config.arch)), arch);
    QCOMPARE((*m)->config.layers, layers);
    QCOMPARE(QString::fromStdString((*m)->tokenizer ? (*m)->tokenizer->kind() : "none"), tokenizer);
    QVERIFY2((*m)->warnings.empty(), (*m)->warnings.empty() ? "" : (*m)->warnings[0].c_str());
  }

  void f32IsUsedInPlace() {
    auto m = loadModel(fixture("bert_tiny"));
    QVERIFY(m.ok());
    const Tensor* stored = (*m)->checkpoint.find("embeddings.word_embeddings.weight");
    QVERIFY(stored != nullptr && stored->borrowed());
    QCOMPARE((*m)->weights.wordEmb.raw(), stored->raw());  // no copy
    auto h = loadModel(fixture("bert_mlm_f16"));
    QVERIFY(h.ok());
    QCOMPARE((*h)->weights.wordEmb.dtype(), DType::F32);  // upcast copy
  }

  void progressAndCancel() {
    std::vector<double> seen;
    LoadOptions opt;
    opt.progress = [&](double f) { seen.push_back(f); };
    auto m = loadModel(fixture("bert_mlm_f16"), opt);
    QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
    QVERIFY(seen.size() > 10);  // one report per bound tensor, then 1
    for (size_t i = 1; i < seen.size(); ++i) QVERIFY(seen[i] >= seen[i - 1]);
    QVERIFY(seen.front() > 0.0);
    QCOMPARE(seen.back(), 1.0);

    CancelToken cancel;
    int calls = 0;
    opt.cancel = &cancel;
    opt.progress = [&](double) {
      if (++calls == 3) cancel.cancel();  // cancelled half-way through binding
    };
    auto c = loadModel(fixture("bert_mlm_f16"), opt);
    QVERIFY(!c.ok());
    QCOMPARE(QString::fromStdString(c.message()), QString("cancelled"));
    QCOMPARE(calls, 3);
  }

  void writtenModelsReopenIdentically_data() {
    QTest::addColumn<QString>("name");
    for (const char* n :
         {"bert_mlm_f16", "gpt2_bf16", "distilbert_tiny", "roberta_tiny", "bert_sharded"})
      QTest::newRow(n) << n;
  }

  void writtenModelsReopenIdentically() {
    QFETCH(QString, name);
    auto m = loadModel(fixture(name.toStdString()));
    QVERIFY(m.ok());
    TempDir tmp;
    const fs::path out = tmp / "copy";
    const Status st = writeHfModel(out, **m, (*m)->weights);
    QVERIFY2(st.ok(), st.ok() ? "" : st.message().c_str());
    auto again = loadModel(out);
    QVERIFY2(again.ok(), again.ok() ? "" : again.message().c_str());
    // Every tensor of the source is there under its own name (task heads, buffers too).
    QCOMPARE((*again)->checkpoint.tensors.size(), (*m)->checkpoint.tensors.size());
    for (const auto& [n, item] : (*m)->checkpoint.tensors)
      QVERIFY2((*again)->checkpoint.find(n) != nullptr, n.c_str());
    QVERIFY((*again)->tokenizer != nullptr);
    const std::vector<int32_t> ids = {1, 5, 7, 2, 9, 3};
    auto a = forward((*m)->config, (*m)->weights, ids, {});
    auto b = forward((*again)->config, (*again)->weights, ids, {});
    QVERIFY(a.ok() && b.ok());
    QVERIFY(a->attention == b->attention);
    QVERIFY(a->lastHidden == b->lastHidden);
    // No second write over it, and nothing left behind by the refusal.
    const Status twice = writeHfModel(out, **m, (*m)->weights);
    QVERIFY(!twice.ok());
    QVERIFY(QString::fromStdString(twice.message()).contains("exists and is not empty"));
    int entries = 0;
    for (auto it = fs::directory_iterator(tmp.path()); it != fs::directory_iterator(); ++it)
      ++entries;
    QCOMPARE(entries, 1);
  }

  void parameterCounts() {
    // BERT: embeddings + L layers + pooler, from the config's sizes.
    auto b = loadModel(fixture("bert_tiny"));
    QVERIFY(b.ok());
    const auto& c = (*b)->config;
    const int64_t D = c.hidden, F = c.intermediate;
    const int64_t emb = (c.vocabSize + c.maxPositions + c.typeVocabSize) * D + 2 * D;
    const int64_t layer = 4 * (D * D + D) + 4 * D + (D * F + F) + (F * D + D);
    QCOMPARE((*b)->parameters, emb + c.layers * layer + (D * D + D));
    // GPT-2: lm_head tied (absent), attn.bias / masked_bias buffers not counted.
    auto g = loadModel(fixture("gpt2_tiny"));
    QVERIFY(g.ok());
    const auto& k = (*g)->config;
    const int64_t d = k.hidden, f = k.intermediate;
    const int64_t block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d);
    QCOMPARE((*g)->parameters,
             (int64_t(k.vocabSize) + k.maxPositions) * d + k.layers * block + 2 * d);
  }

  void configErrors() {
    TempDir tmp;
    {
      auto dir = copyFixture(tmp, "bert_tiny");
      editConfig(dir, [](auto& j) { j["hidden_size"] = 48; });
      expectError(
          dir,
          "tensor 'embeddings.word_embeddings.weight' has shape [110,32], config says [110,48]");
    }
    TempDir t2;
    auto dir = copyFixture(t2, "bert_tiny");
    editConfig(dir, [](auto& j) { j["num_attention_heads"] = 5; });
    expectError(dir, "hidden size 32 is not divisible by 5 heads");
    editConfig(dir, [](auto& j) {
      j["num_attention_heads"] = 4;
      j["hidden_act"] = "swish";
    });
    expectError(dir, "activation \"swish\" is not supported");
    editConfig(dir, [](auto& j) {
      j["hidden_act"] = "gelu";
      j["model_type"] = "t5";
    });
    expectError(dir, "model type \"t5\" is not supported");
    editConfig(dir, [](auto& j) {
      j["model_type"] = "bert";
      j["num_hidden_layers"] = 3;
    });
    expectError(dir, "tensor 'encoder.layer.2.attention.self.query.weight' is missing");
    editConfig(dir, [](auto& j) {
      j["num_hidden_layers"] = 2;
      j["position_embedding_type"] = "relative_key";
    });
    expectError(dir, "position_embedding_type \"relative_key\" is not supported");
    editConfig(dir, [](auto& j) {
      j.erase("position_embedding_type");
      j["is_decoder"] = true;
    });
    expectError(dir, "\"is_decoder\": true");
    editConfig(dir, [](auto& j) {
      j.erase("is_decoder");
      j["hidden_size"] = 1 << 25;
    });
    expectError(dir, "\"hidden_size\" is not a sensible non-negative integer");
    editConfig(dir, [](auto& j) {
      j["hidden_size"] = 32;
      j["num_hidden_layers"] = "two";
    });
    expectError(dir, "\"num_hidden_layers\" is not a sensible non-negative integer");
    editConfig(dir, [](auto& j) {
      j["num_hidden_layers"] = 2;
      j["layer_norm_eps"] = "tiny";
    });
    expectError(dir, "\"layer_norm_eps\" is not a number");
    attn::test::writeBytes(dir / "config.json", "{not json");
    expectError(dir, "config.json: not a JSON object");
    fs::remove(dir / "config.json");
    expectError(dir, "no config.json in");
  }

  void tensorErrors() {
    TempDir tmp;
    auto dir = copyFixture(tmp, "bert_tiny");
    editTensors(dir, [](auto& ts) {
      std::erase_if(ts, [](auto& p) { return p.first == "encoder.layer.1.output.dense.bias"; });
    });
    expectError(dir, "tensor 'encoder.layer.1.output.dense.bias' is missing from the checkpoint");

    TempDir t2;
    auto dir2 = copyFixture(t2, "bert_tiny");
    editTensors(dir2, [](auto& ts) {
      for (auto& [name, t] : ts)
        if (name == "encoder.layer.0.attention.self.key.weight") {
          std::vector<int32_t> ints(size_t(t.numel()), 1);
          auto buf = std::make_shared<std::vector<int32_t>>(ints);
          t = Tensor(DType::I32, t.shape(), buf->data(), buf);
        }
    });
    expectError(dir2, "tensor 'encoder.layer.0.attention.self.key.weight' has dtype I32");
  }

  void nanWeightsWarn() {
    TempDir tmp;
    auto dir = copyFixture(tmp, "bert_tiny");
    editTensors(dir, [](auto& ts) {
      for (auto& [name, t] : ts)
        if (name == "encoder.layer.1.intermediate.dense.weight") {
          t.mutableF32()[3] = std::numeric_limits<float>::quiet_NaN();
          t.mutableF32()[7] = std::numeric_limits<float>::infinity();
        }
    });
    auto m = loadModel(dir);
    QVERIFY(m.ok());
    QCOMPARE((*m)->warnings.size(), size_t(1));
    QCOMPARE(
        (*m)->warnings[0],
        std::string("tensor 'encoder.layer.1.intermediate.dense.weight' has 2 NaN/Inf values"));
  }

  void shardErrors() {
    TempDir tmp;
    auto dir = copyFixture(tmp, "bert_sharded");
    const auto index = dir / "model.safetensors.index.json";
    auto j = nlohmann::json::parse(attn::test::readBytes(index));
    // A tensor mapped to the wrong shard.
    auto wrong = j;
    const std::string name = "encoder.layer.0.attention.self.query.weight";
    const std::string was = wrong["weight_map"][name];
    wrong["weight_map"][name] = was == "model-00001-of-00002.safetensors"
                                    ? "model-00002-of-00002.safetensors"
                                    : "model-00001-of-00002.safetensors";
    attn::test::writeBytes(index, wrong.dump());
    expectError(dir, "tensor '" + name + "' is mapped to");
    // A shard that is missing.
    attn::test::writeBytes(index, j.dump());
    fs::remove(dir / "model-00002-of-00002.safetensors");
    expectError(dir, "cannot open");
    // A shard name that leaves the folder.
    auto escape = j;
    escape["weight_map"][name] = "../evil.safetensors";
    attn::test::writeBytes(index, escape.dump());
    expectError(dir, "leaves the model folder");
    attn::test::writeBytes(index, "[]");
    expectError(dir, "not a JSON object");
  }

  void gpt2VariantsAreRefused() {
    TempDir tmp;
    auto dir = copyFixture(tmp, "gpt2_tiny");
    editConfig(dir, [](auto& j) { j["scale_attn_weights"] = false; });
    expectError(dir, "\"scale_attn_weights\": false is not supported");
    editConfig(dir, [](auto& j) {
      j.erase("scale_attn_weights");
      j["reorder_and_upcast_attn"] = true;
    });
    expectError(dir, "\"reorder_and_upcast_attn\": true is not supported");
  }

  void brokenTokenizerIsAWarning() {
    TempDir tmp;
    auto dir = copyFixture(tmp, "gpt2_tiny");
    attn::test::writeBytes(dir / "merges.txt", "#version: 0.2\nnot-a-token another-one\n");
    auto m = loadModel(dir);
    QVERIFY2(m.ok(), m.ok() ? "" : m.message().c_str());
    QVERIFY((*m)->tokenizer == nullptr);
    QCOMPARE((*m)->warnings.size(), size_t(1));
    QVERIFY((*m)->warnings[0].starts_with("tokenizer not loaded: "));
  }

  void writerRefusesDuplicateNames() {
    TempDir tmp;
    std::vector<std::pair<std::string, Tensor>> ts = {{"a", Tensor::fromF32({1}, {1.f})},
                                                      {"a", Tensor::fromF32({1}, {2.f})}};
    auto st = writeSafetensors(tmp / "x.safetensors", ts);
    QVERIFY(!st.ok());
    QVERIFY(st.message().find("used twice") != std::string::npos);
    QVERIFY(!std::filesystem::exists(tmp / "x.safetensors"));
  }

  void missingThings() {
    expectError("/nonexistent/model", "does not exist");
    TempDir tmp;
    fs::copy(fixture("bert_tiny") / "config.json", tmp / "config.json");
    expectError(tmp.path(), "has no model.safetensors");
  }
};

QTEST_APPLESS_MAIN(TestModelLoading)
#include "test_model_loading.moc"
