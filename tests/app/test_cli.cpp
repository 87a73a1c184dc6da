// attnstudio-cli contract: JSON keys, .npy / .h5 outputs that match the
// PyTorch reference, exit codes and one-line errors on bad input.
#include <hdf5.h>
#include <unistd.h>

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <cmath>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QTest>

#include "core/attention/compare.h"
#include "core/compress/evaluate.h"
#include "core/compress/plan.h"
#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "core/model/model.h"
#include "core/quant/model_quant.h"
#include "core/sparse/model_sparse.h"
#include "tests/core/test_helpers.h"
#include "tests/core/weight_helpers.h"

using attn::test::TempDir;

namespace {
constexpr double kAttentionTol = 1.5e-5;  // as in test_forward (float32 vs float64 reference)

struct Run {
  int code = -1;
  QByteArray out, err;
};

Run cli(const QStringList& args) {
  QProcess p;
  p.start(ATTN_CLI, args);
  p.waitForFinished(120000);
  return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
          p.readAllStandardError()};
}

QString model(const char* name) {
  return QString::fromStdString((attn::test::dataDir() / "models" / name).string());
}

QJsonObject json(const Run& r) { return QJsonDocument::fromJson(r.out).object(); }

// "1,2,3" from a reference .npy (what = "ids" or "mask").
QString listOf(const char* name, const char* kase, const char* what = "ids") {
  auto a = attn::readNpy(attn::test::dataDir() / "models" / name / "reference" /
                         (std::string(kase) + "_" + what + ".npy"));
  QStringList s;
  for (double v : a->values) s << QString::number(qint64(v));
  return s.join(',');
}
}  // namespace

class TestCli : public QObject {
  Q_OBJECT

 private slots:
  void inspectJson() {
    const Run r = cli({"inspect", model("gpt2_tiny"), "--json"});
    QCOMPARE(r.code, 0);
    const QJsonObject j = json(r);
    for (const char* key : {"architecture", "layers", "heads", "hidden", "intermediate",
                            "vocab_size", "max_positions", "parameters", "tokenizer", "tensors"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j["architecture"].toString(), QString("gpt2"));
    QCOMPARE(j["layers"].toInt(), 2);
    QCOMPARE(j["heads"].toInt(), 4);
    QCOMPARE(j["hidden"].toInt(), 32);
    QCOMPARE(j["intermediate"].toInt(), 128);  // n_inner null -> 4 * n_embd
    QCOMPARE(j["tokenizer"].toString(), QString("bpe"));
    const QJsonArray ts = j["tensors"].toArray();
    QVERIFY(!ts.isEmpty());
    bool sawConv = false;
    for (const auto& t : ts) {
      const auto o = t.toObject();
      QVERIFY(o.contains("name") && o.contains("dtype") && o.contains("shape"));
      if (o["name"].toString() == "transformer.h.0.attn.c_attn.weight") {
        sawConv = true;
        QCOMPARE(o["shape"].toArray(), (QJsonArray{32, 96}));  // Conv1D [in, out]
      }
    }
    QVERIFY(sawConv);
  }

  void tokenizeRealVocabulary() {
    // The demo model ships bert-base-uncased's vocabulary.
    const Run r = cli({"tokenize", ATTN_DEMO_DIR "/bert-demo", "--text", "Hello world", "--json"});
    QCOMPARE(r.code, 0);
    const QJsonObject j = json(r);
    QCOMPARE(j["ids"].toArray(), (QJsonArray{101, 7592, 2088, 102}));
    QCOMPARE(j["tokens"].toArray(), (QJsonArray{"[CLS]", "hello", "world", "[SEP]"}));
    QCOMPARE(j["offsets"].toArray()[2].toArray(), (QJsonArray{6, 11}));
  }

  void attentionNpyMatchesReference() {
    TempDir tmp;
    const QString out = QString::fromStdString((tmp / "a.npy").string());
    const Run r = cli({"attention", model("roberta_tiny"), "--ids", listOf("roberta_tiny", "plain"),
                       "--out", out, "--threads", "2"});
    QVERIFY2(r.code == 0, r.err.constData());
    auto got = attn::readNpy(out.toStdString());
    QVERIFY2(got.ok(), got.ok() ? "" : got.message().c_str());
    auto want =
        attn::readNpy(attn::test::dataDir() / "models/roberta_tiny/reference/plain_attentions.npy");
    QVERIFY(want.ok());
    QCOMPARE(got->shape, want->shape);  // [L, H, S, S]
    ATTN_CHECK_CLOSE(got->values.data(), want->values.data(), got->values.size(), kAttentionTol,
                     "attention from .npy");
  }

  void attentionHdf5() {
    TempDir tmp;
    const auto path = tmp / "a.h5";
    const Run r = cli({"attention", model("bert_tiny"), "--ids", listOf("bert_tiny", "padded"),
                       "--mask", listOf("bert_tiny", "padded", "mask"), "--out",
                       QString::fromStdString(path.string())});
    QVERIFY2(r.code == 0, r.err.constData());
    auto want =
        attn::readNpy(attn::test::dataDir() / "models/bert_tiny/reference/padded_attentions.npy");
    QVERIFY(want.ok());
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    QVERIFY(f >= 0);
    const int64_t H = want->shape[1], S = want->shape[2];
    for (int l = 0; l < int(want->shape[0]); ++l) {
      const std::string name = "/attention/layer_" + std::to_string(l);
      const hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
      QVERIFY(d >= 0);
      const hid_t sp = H5Dget_space(d);
      hsize_t dims[3] = {0, 0, 0};
      QCOMPARE(H5Sget_simple_extent_ndims(sp), 3);
      H5Sget_simple_extent_dims(sp, dims, nullptr);
      QCOMPARE(dims[0], hsize_t(H));
      QCOMPARE(dims[1], hsize_t(S));
      std::vector<float> buf(size_t(H * S * S));
      QVERIFY(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0);
      ATTN_CHECK_CLOSE(buf.data(), want->values.data() + l * H * S * S, buf.size(), kAttentionTol,
                       "attention from .h5");
      H5Sclose(sp);
      H5Dclose(d);
    }
    const hid_t ids = H5Dopen2(f, "/ids", H5P_DEFAULT);
    QVERIFY(ids >= 0);
    H5Dclose(ids);
    const hid_t toks = H5Dopen2(f, "/tokens", H5P_DEFAULT);
    QVERIFY(toks >= 0);
    H5Dclose(toks);
    H5Fclose(f);
  }

  void attentionJson() {
    const Run r = cli({"attention", model("distilbert_tiny"), "--text", "the brown fox", "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject j = json(r);
    QVERIFY(j.contains("ids") && j.contains("tokens") && j.contains("entropy"));
    const QJsonArray ent = j["entropy"].toArray();
    QCOMPARE(ent.size(), 2);
    QCOMPARE(ent[0].toArray().size(), 4);
    const double maxEntropy = std::log(double(j["ids"].toArray().size()));
    for (const auto& row : ent)
      for (const auto& e : row.toArray())
        QVERIFY(e.toDouble() >= 0 && e.toDouble() <= maxEntropy + 1e-9);
  }

  void benchSynthetic() {
    const Run r = cli({"bench", "--synthetic", "gpt2-small", "--seq", "8", "--runs", "1",
                       "--threads", "1", "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject j = json(r);
    for (const char* key : {"forward_ms_median", "forward_ms_min", "peak_rss_mb", "threads"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j["threads"].toInt(), 1);
    QVERIFY(j["forward_ms_median"].toDouble() > 0);
    QVERIFY(j["peak_rss_mb"].toDouble() > 400);  // 124M float32 parameters live in memory
  }

  void quantizeWritesWhatItMeasured() {
    TempDir tmp;
    const QString out = QString::fromStdString((tmp / "int8").string());
    const QString dump = QString::fromStdString((tmp / "codes.safetensors").string());
    const QString ids = listOf("bert_tiny", "plain");
    const Run r = cli({"quantize", model("bert_tiny"), "--targets", "all", "--ids", ids, "--json",
                       "--out", out, "--dump", dump, "--threads", "1"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject j = json(r);
    const QJsonArray tensors = j["tensors"].toArray();
    QCOMPARE(tensors.size(), 2 * 6 + 3);
    for (const char* key : {"name", "mse", "sqnr_db", "max_abs_err", "bits_per_weight"})
      QVERIFY2(tensors[0].toObject().contains(key), key);
    QVERIFY(j["bytes_after"].toDouble() < j["bytes_before"].toDouble());

    // The same numbers as the engine computes in process.
    using namespace attn;
    const auto base = loadModel(attn::test::dataDir() / "models" / "bert_tiny").value();
    quant::ModelQuantPlan plan;
    for (auto& t : plan.targets) t = quant::Spec{};  // uniform 8-bit symmetric per channel
    quant::QuantizeModelOptions keep;
    keep.keepCodes = true;
    const auto q = quant::quantizeModel(*base, plan, keep).value();
    std::vector<int32_t> idv;
    for (const QString& x : ids.split(',')) idv.push_back(x.toInt());
    const auto ref = forward(base->config, base->weights, idv, {}).value();
    const auto got = forward(q.model->config, q.model->weights, idv, {}).value();
    const Fidelity fid = fidelity(ref, got);
    QCOMPARE(j["attention_kl_mean"].toDouble(), fid.klMean);
    QCOMPARE(j["hidden_cosine"].toDouble(), fid.hiddenCosine);
    QCOMPARE(tensors[3].toObject()["name"].toString(),
             QString("encoder.layer.0.attention.self.query.weight"));
    QCOMPARE(tensors[3].toObject()["sqnr_db"].toDouble(), q.tensors[3].stats.sqnrDb);

    // --out reopens as a model with exactly those weights, and its attention is
    // PyTorch's for the same int8 quantization.
    auto reopened = loadModel(out.toStdString());
    QVERIFY2(reopened.ok(), reopened.ok() ? "" : reopened.message().c_str());
    const auto& a = (*reopened)->weights.layers[1].ffnIn.w;
    const auto& b = q.model->weights.layers[1].ffnIn.w;
    QCOMPARE(a.numel(), b.numel());
    QVERIFY(std::equal(a.f32(), a.f32() + a.numel(), b.f32()));
    const auto again = forward((*reopened)->config, (*reopened)->weights, idv, {}).value();
    QVERIFY(again.attention == got.attention);  // bit for bit
    const auto torch = readNpy(attn::test::dataDir() / "quant" / "bert_tiny_int8_attentions.npy");
    ATTN_CHECK_CLOSE(again.attention.data(), torch->values.data(), again.attention.size(),
                     kAttentionTol, "reopened int8 model vs PyTorch");
    QVERIFY(std::filesystem::exists(std::filesystem::path(out.toStdString()) / "vocab.txt"));

    // --dump: packed codes and scales per tensor, the spec in the metadata.
    auto ck = openCheckpoint(dump.toStdString());
    QVERIFY(ck.ok());
    const std::string n = "encoder.layer.0.attention.self.query.weight";
    const Tensor* codes = ck->find(n + ".codes");
    const Tensor* scales = ck->find(n + ".scales");
    QVERIFY(codes != nullptr && scales != nullptr);
    QCOMPARE(codes->dtype(), DType::U8);
    QCOMPARE(codes->numel(), int64_t(base->config.hidden) * base->config.hidden);
    QCOMPARE(scales->numel(), int64_t(base->config.hidden));
    QVERIFY(std::equal(scales->f32(), scales->f32() + scales->numel(), q.codes[3].scales.data()));
    const auto* packed = static_cast<const uint8_t*>(codes->raw());
    QVERIFY(std::equal(packed, packed + codes->numel(), q.codes[3].packed.data()));
    QVERIFY(QString::fromStdString(ck->metadata.at(n)).contains("\"bits\":8"));
    // Per-layer overrides from the command line.
    const Run o = cli({"quantize", model("bert_tiny"), "--json", "--override",
                       "layer 0 q=none; ffn_in=uniform:4:group:8", "--ids", ids});
    QVERIFY2(o.code == 0, o.err.constData());
    const QJsonArray ot = json(o)["tensors"].toArray();
    QCOMPARE(ot.size(), 2 * 6 - 1);
    for (const auto& t : ot) {
      const QString name = t.toObject()["name"].toString();
      QVERIFY(name != "encoder.layer.0.attention.self.query.weight");
      if (name.contains("intermediate.dense"))  // 4 bits + a float32 scale per 8 weights
        QCOMPARE(t.toObject()["bits_per_weight"].toDouble(), 4.0 + 32.0 / 8);
    }
    // A second run refuses to write over the output.
    const Run again2 = cli({"quantize", model("bert_tiny"), "--out", out});
    QCOMPARE(again2.code, 1);
    QVERIFY(again2.err.contains("exists and is not empty"));
  }

  void sparsifyWritesWhatItMeasured() {
    TempDir tmp;
    const QString out = QString::fromStdString((tmp / "pruned").string());
    const QString dump = QString::fromStdString((tmp / "masks.safetensors").string());
    const QString ids = listOf("bert_tiny", "plain");
    const Run r = cli({"sparsify",
                       model("bert_tiny"),
                       "--prune",
                       "nm:2:4",
                       "--attn-threshold",
                       "0.05",
                       "--renormalize",
                       "--prune-heads",
                       "2",
                       "--importance",
                       "confidence",
                       "--ids",
                       ids,
                       "--json",
                       "--out",
                       out,
                       "--dump",
                       dump,
                       "--threads",
                       "1"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject j = json(r);
    for (const char* key : {"tensors", "weight_sparsity", "layer_sparsity", "attention_sparsity",
                            "attention_sparsity_per_layer", "retained_mass", "attention_kl_mean",
                            "hidden_cosine", "pruned_heads"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j["pruned_heads"].toArray().size(), 2);

    // The same plan in process gives the same numbers.
    using namespace attn;
    const auto base = loadModel(attn::test::dataDir() / "models" / "bert_tiny").value();
    std::vector<int32_t> idv;
    for (const QString& x : ids.split(',')) idv.push_back(x.toInt());
    sparse::ModelPrunePlan plan;
    sparse::PruneSpec nm;
    nm.method = sparse::PruneMethod::NM;
    for (Target t : {Target::Q, Target::K, Target::V, Target::O, Target::FfnIn, Target::FfnOut})
      plan.targets[size_t(t)] = nm;
    const auto scores =
        sparse::headImportance(*base, {idv}, sparse::Importance::Confidence).value();
    const auto rank = scores.ranking();
    plan.heads = {rank[0], rank[1]};
    plan.attention.all = {sparse::AttentionRule::Kind::Threshold, 0.05, 1, 1, true};
    const auto pruned = sparse::pruneModel(*base, plan).value();
    const auto ref = forward(base->config, base->weights, idv, {}).value();
    const auto got = forward(pruned.model->config, pruned.model->weights, idv, {},
                             sparse::withAttentionSparsity({}, plan.attention))
                         .value();
    const Fidelity fid = fidelity(ref, got);
    QCOMPARE(j["attention_kl_mean"].toDouble(), fid.klMean);
    QCOMPARE(j["hidden_cosine"].toDouble(), fid.hiddenCosine);
    QCOMPARE(j["weight_sparsity"].toDouble(), pruned.sparsity());
    const QJsonArray heads = j["pruned_heads"].toArray();
    QCOMPARE(heads[0].toArray()[0].toInt(), rank[0].first);
    QCOMPARE(heads[0].toArray()[1].toInt(), rank[0].second);

    // --out reopens with the pruned weights; --dump holds the masks.
    auto reopened = loadModel(out.toStdString());
    QVERIFY(reopened.ok());
    const Tensor& a = (*reopened)->weights.layers[1].ffnIn.w;
    QVERIFY(
        std::equal(a.f32(), a.f32() + a.numel(), pruned.model->weights.layers[1].ffnIn.w.f32()));
    auto ck = openCheckpoint(dump.toStdString());
    QVERIFY(ck.ok());
    const Tensor* mask = ck->find("encoder.layer.1.intermediate.dense.weight.mask");
    QVERIFY(mask != nullptr && mask->dtype() == DType::U8);
    QCOMPARE(mask->shape(), (Shape{base->config.intermediate, base->config.hidden}));
    const auto* bits = static_cast<const uint8_t*>(mask->raw());
    for (int64_t g = 0; g < mask->numel() / 4; ++g)
      QCOMPARE(bits[4 * g] + bits[4 * g + 1] + bits[4 * g + 2] + bits[4 * g + 3], 2);
  }

  // ------------------------------------------------------------------ distillation
  void compareJson() {
    const QString teacher = model("bert_mlm_f16"), student = model("bert_tiny");
    const QString text = "the quick brown fox jumps over the lazy dog";
    const Run r = cli({"compare", teacher, student, "--text", text, "--loss", "kl", "--json"});
    QCOMPARE(r.code, 0);
    const QJsonObject j = json(r);
    for (const char* key : {"loss_matrix", "mapping", "mapped_losses", "total"}) QVERIFY2(j.contains(key), key);
    const QJsonArray m = j["loss_matrix"].toArray();
    QCOMPARE(m.size(), 3);                   // teacher layers
    QCOMPARE(m[0].toArray().size(), 2);      // student layers
    QCOMPARE(j["mapping"].toArray(), (QJsonArray{1, 2}));  // uniform
    // The numbers are the engine's loss matrix of the same forward passes.
    auto tm = attn::loadModel(teacher.toStdString());
    auto sm = attn::loadModel(student.toStdString());
    const auto ids = (*sm)->tokenizer->encode(text.toStdString()).ids;
    auto tr = attn::forward((*tm)->config, (*tm)->weights, ids, {});
    auto sr = attn::forward((*sm)->config, (*sm)->weights, ids, {});
    const attn::LossMatrix lm = attn::lossMatrix(*tr, *sr);
    double total = 0;
    for (int t = 0; t < 3; ++t)
      for (int s = 0; s < 2; ++s)
        QCOMPARE(m[t].toArray()[s].toDouble(), lm.at(lm.kl, t, s));
    for (int s = 0; s < 2; ++s) {
      const int t = j["mapping"].toArray()[s].toInt();
      QCOMPARE(j["mapped_losses"].toArray()[s].toDouble(), lm.at(lm.kl, t, s));
      total += lm.at(lm.kl, t, s);
    }
    QCOMPARE(j["total"].toDouble(), total);
    const QJsonArray heads = j["mapped_head_losses"].toArray();
    QCOMPARE(heads.size(), 2);
    for (int s = 0; s < 2; ++s) {
      const int t = j["mapping"].toArray()[s].toInt();
      QCOMPARE(heads[s].toArray().size(), 4);
      for (int h = 0; h < 4; ++h)
        QCOMPARE(heads[s].toArray()[h].toDouble(), lm.headAt(lm.headKl, t, s, h));
    }
    // auto: the least total over monotone mappings; explicit pairs as given.
    const QJsonObject a = json(cli({"compare", teacher, student, "--text", text, "--loss", "kl", "--map", "auto", "--json"}));
    QVERIFY(a["total"].toDouble() <= total + 1e-12);
    const auto best = attn::bestMonotoneMap(lm.kl, 3, 2);
    QCOMPARE(a["mapping"].toArray(), (QJsonArray{best[0], best[1]}));
    const QJsonObject e = json(cli({"compare", teacher, student, "--text", text, "--map", "1:0", "--json"}));
    QCOMPARE(e["mapping"].toArray(), (QJsonArray{-1, 0}));
    QVERIFY(e["mapped_losses"].toArray()[0].isNull());
    // Different tokenizers: the maps are compared on aligned token groups.
    const QJsonObject g = json(cli({"compare", model("gpt2_tiny"), student, "--text", text, "--json"}));
    QVERIFY(g["aligned_tokens"].toBool());
    QCOMPARE(g["loss_matrix"].toArray().size(), 2);
    // A corpus: the mean over its examples.
    const QString corpus = QString::fromStdString((attn::test::dataDir() / "distill" / "corpus.txt").string());
    const QJsonObject c = json(cli({"compare", teacher, student, "--corpus", corpus, "--json"}));
    QCOMPARE(c["examples"].toInt(), 7);
  }

  void distillTrainsLogsAndResumes() {
    TempDir tmp;
    const QString dir = QString::fromStdString(tmp.path().string());
    const QString corpus = QString::fromStdString((attn::test::dataDir() / "distill" / "corpus.txt").string());
    const QString student = QString::fromStdString((attn::test::dataDir() / "distill" / "bert_kl_value_hidden" / "student").string());
    const Run r = cli({"distill", model("bert_tiny"), student, "--corpus", corpus, "--steps", "4",
                       "--batch", "3", "--lr", "1e-2", "--loss", "kl+value", "--log", dir + "/log.jsonl",
                       "--checkpoint-every", "2", "--out", dir + "/out", "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject j = json(r);
    for (const char* key : {"steps", "mapping", "first_step_loss", "last_step_loss", "before", "after", "examples_per_s"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j["steps"].toInt(), 4);
    QVERIFY(j["after"].toObject()["loss"].toDouble() < j["before"].toObject()["loss"].toDouble());
    QFile log(dir + "/log.jsonl");
    QVERIFY(log.open(QIODevice::ReadOnly));
    const QList<QByteArray> lines = log.readAll().trimmed().split('\n');
    QCOMPARE(lines.size(), 4);
    for (int i = 0; i < lines.size(); ++i) {
      const QJsonObject l = QJsonDocument::fromJson(lines[i]).object();
      QCOMPARE(l["step"].toInt(), i + 1);
      for (const char* key : {"loss", "attention", "value", "lr", "grad_norm", "examples_per_s"})
        QVERIFY2(l.contains(key), key);
      QCOMPARE(l["attention"].toArray().size(), 2);  // per student layer
    }
    QVERIFY(attn::loadModel((dir + "/out").toStdString()).ok());
    QVERIFY(attn::loadModel((dir + "/out.checkpoints/step-000002").toStdString()).ok());
    // Resume at step 2 and run to 4: the same weights as the straight run.
    const QString ck = dir + "/out.checkpoints/step-000002";
    const Run r2 = cli({"distill", model("bert_tiny"), ck, "--corpus", corpus, "--steps", "4",
                        "--batch", "3", "--lr", "1e-2", "--loss", "kl+value", "--resume", ck,
                        "--out", dir + "/resumed"});
    QVERIFY2(r2.code == 0, r2.err.constData());
    auto a = attn::openCheckpoint((dir + "/out/model.safetensors").toStdString());
    auto b = attn::openCheckpoint((dir + "/resumed/model.safetensors").toStdString());
    QVERIFY(a.ok() && b.ok());
    for (const auto& [name, item] : a->tensors) {
      const auto& t = b->tensors.at(name).tensor;
      QVERIFY2(std::equal(item.tensor.f32(), item.tensor.f32() + item.tensor.numel(), t.f32()), name.c_str());
    }
  }

  void recipeRunsOneStepInPyTorch() {
    if (QProcess::execute("/usr/bin/python3", {"-c", "import torch"}) != 0)
      QSKIP("python3-torch is not installed");
    TempDir tmp;
    const QString dir = QString::fromStdString(tmp.path().string());
    const QString corpus = QString::fromStdString((attn::test::dataDir() / "distill" / "corpus.txt").string());
    const QString student = QString::fromStdString((attn::test::dataDir() / "distill" / "bert_kl_value_hidden" / "student").string());
    const Run r = cli({"distill", model("bert_tiny"), student, "--corpus", corpus, "--steps", "10",
                       "--batch", "4", "--lr", "1e-3", "--loss", "kl+value", "--hidden-weight", "0.3",
                       "--emit-recipe", dir + "/recipe", "--out", dir + "/out", "--log", dir + "/ours.jsonl"});
    QVERIFY2(r.code == 0, r.err.constData());
    for (const char* f : {"train.py", "config.json", "corpus_ids.jsonl", "projections.safetensors"})
      QVERIFY2(QFile::exists(dir + "/recipe/" + f), f);
    QProcess py;
    py.start("/usr/bin/python3", {dir + "/recipe/train.py", "--config", dir + "/recipe/config.json",
                                  "--max-steps", "1", "--device", "cpu", "--log", dir + "/torch.jsonl",
                                  "--out", dir + "/torch-out"});
    QVERIFY(py.waitForFinished(300000));
    QVERIFY2(py.exitCode() == 0, py.readAllStandardError().constData());
    auto first = [](const QString& path) {
      QFile f(path);
      f.open(QIODevice::ReadOnly);
      return QJsonDocument::fromJson(f.readLine()).object();
    };
    const QJsonObject ours = first(dir + "/ours.jsonl"), theirs = first(dir + "/torch.jsonl");
    QCOMPARE(theirs["step"].toInt(), 1);
    QVERIFY2(std::abs(ours["loss"].toDouble() - theirs["loss"].toDouble()) <= 1e-5 * ours["loss"].toDouble(),
             qPrintable(QString("%1 vs %2").arg(ours["loss"].toDouble()).arg(theirs["loss"].toDouble())));
    QVERIFY(std::abs(ours["grad_norm"].toDouble() - theirs["grad_norm"].toDouble()) <= 1e-4 * ours["grad_norm"].toDouble());
    QVERIFY(attn::loadModel((dir + "/torch-out").toStdString()).ok());  // the script's output loads here
  }

  void tokenizerInitAndPretrain() {
    TempDir tmp;
    const QString dir = QString::fromStdString(tmp.path().string());
    const QString corpus = QString::fromStdString((attn::test::dataDir() / "distill" / "corpus.txt").string());
    const Run r0 = cli({"build-tokenizer", "--corpus", corpus, "--vocab-size", "300", "--out", dir + "/tok"});
    QVERIFY2(r0.code == 0, r0.err.constData());
    Run r;
    QFile cfg(dir + "/config.json");
    QVERIFY(cfg.open(QIODevice::WriteOnly));
    cfg.write(R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 16, "n_layer": 1,
      "n_head": 2, "n_positions": 32, "vocab_size": 300, "activation_function": "gelu_new"})");
    cfg.close();
    r = cli({"init-model", "--config", dir + "/config.json", "--tokenizer", dir + "/tok", "--out", dir + "/init"});
    QVERIFY2(r.code == 0, r.err.constData());
    auto m = attn::loadModel((dir + "/init").toStdString());
    QVERIFY(m.ok());
    QVERIFY((*m)->tokenizer);
    // This small corpus runs out of pairs seen twice before 300 tokens: the
    // trainer stops there and says how many it made.
    const int made = (*m)->tokenizer->vocabSize();
    QVERIFY(made > 256 && made <= 300);
    QVERIFY2(r0.out.contains(QByteArray::number(made) + " tokens"), r0.out.constData());
    // The learned merges make frequent words single tokens; every byte stays encodable.
    const auto enc = (*m)->tokenizer->encode("the cat sat on the mat");
    QVERIFY(enc.ids.size() < 12);
    QCOMPARE(QString::fromStdString(enc.tokens[0]), QString("the"));
    QVERIFY(!(*m)->tokenizer->encode("zebra ✓").ids.empty());
    r = cli({"pretrain", dir + "/init", "--corpus", corpus, "--steps", "30", "--batch", "4", "--lr",
             "1e-2", "--out", dir + "/lm", "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject j = json(r);
    QVERIFY(j["after"].toObject()["lm"].toDouble() < j["before"].toObject()["lm"].toDouble() - 0.5);
  }

  // ------------------------------------------------------------------ export
  void exportReopensToTheSameAttention_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("dtype");
    QTest::addColumn<double>("tol");
    // F32: bit for bit. F16 / BF16 round each weight to 11 / 8 significant bits (unit
    // roundoff u = 2^-11 / 2^-8): a score q·k then moves by up to ~2u|s| (both factors
    // rounded), and a softmax probability by at most that much. The tolerance is
    // 2u · max|s| over the input's scores (measured below); "tol" holds u.
    QTest::newRow("bert f32") << "bert_tiny" << "f32" << 0.0;
    QTest::newRow("gpt2 f32") << "gpt2_tiny" << "f32" << 0.0;
    QTest::newRow("bert f16") << "bert_tiny" << "f16" << std::ldexp(1.0, -11);
    QTest::newRow("bert bf16") << "bert_tiny" << "bf16" << std::ldexp(1.0, -8);
  }
  void exportReopensToTheSameAttention() {
    QFETCH(QString, model);
    QFETCH(QString, dtype);
    QFETCH(double, tol);
    const QString path = ::model(model.toUtf8().constData());
    TempDir tmp;
    const QString dir = QString::fromStdString(tmp.path().string());
    attn::compress::CompressionPlan plan;
    QVERIFY(attn::quant::applyPlanText("all=uniform:4:channel; ffn_in=uniform:8:group:16", plan.quant).ok());
    attn::sparse::PruneSpec nm;
    nm.method = attn::sparse::PruneMethod::NM;
    plan.prune.targets[int(attn::Target::FfnOut)] = nm;
    plan.prune.heads = {{1, 2}};
    plan.prune.attention.all.kind = attn::sparse::AttentionRule::Kind::Threshold;
    plan.prune.attention.all.tau = 0.05;
    QVERIFY(attn::compress::savePlan((tmp / "plan.json"), plan).ok());
    const Run r = cli({"export", path, "--plan", dir + "/plan.json",
                       "--dtype", dtype, "--out", dir + "/out", "--report", dir + "/report.json",
                       "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject j = json(r);
    for (const char* key : {"plan", "tensors", "bytes_before", "bytes_after", "attention_kl_mean",
                            "attention_js_mean", "hidden_cosine", "heads", "version"})
      QVERIFY2(j.contains(key), key);
    QVERIFY(j["bytes_after"].toDouble() < j["bytes_before"].toDouble());
    QVERIFY(QFile::exists(dir + "/report.json"));
    // The reopened model runs to what the engine computes for the compressed model.
    auto base = attn::loadModel(path.toStdString());
    auto reopened = attn::loadModel((dir + "/out").toStdString());
    QVERIFY2(reopened.ok(), reopened.ok() ? "" : reopened.message().c_str());
    auto applied = attn::compress::applyPlan(**base, plan);
    QVERIFY(applied.ok());
    std::vector<int32_t> ids;
    for (int i = 0; i < 12; ++i) ids.push_back(3 + (i * 7) % 90);
    // The plan's attention rule (τ) is a step function: a probability next to τ that
    // F16 rounding moves across it is kept in one map and dropped in the other, so the
    // rounded exports are compared on the weights alone.
    attn::ForwardOptions fo = tol == 0.0 ? attn::compress::forwardOptions(plan) : attn::ForwardOptions{};
    fo.captureScores = true;
    auto a = attn::forward(applied->model->config, applied->model->weights, ids, {}, fo);
    auto b = attn::forward((*reopened)->config, (*reopened)->weights, ids, {}, fo);
    QVERIFY(a.ok() && b.ok());
    if (tol == 0.0) {
      QVERIFY(a->attention == b->attention);
      QVERIFY(a->lastHidden == b->lastHidden);
    } else {
      double maxScore = 0.0;
      for (float x : a->scores) maxScore = std::max(maxScore, double(std::abs(x)));
      const double bound = 2.0 * tol * maxScore;
      const auto d = attn::test::maxAbsDiff(b->attention.data(), a->attention.data(), a->attention.size());
      qInfo("%s: max |attention difference| %.3g, bound 2u·max|s| = %.3g (max|s| %.1f)",
            qPrintable(dtype), d.value, bound, maxScore);
      ATTN_CHECK_CLOSE(b->attention.data(), a->attention.data(), a->attention.size(), bound, "attention");
    }
    // The plan travels in the file's metadata.
    auto ck = attn::openCheckpoint((dir + "/out/model.safetensors").toStdString());
    QVERIFY(ck.ok());
    QVERIFY(ck->metadata.count("attnstudio_plan") == 1);
    auto recorded = attn::compress::parsePlanJson(ck->metadata.at("attnstudio_plan"), "metadata");
    QVERIFY(recorded.ok());
    QCOMPARE(attn::quant::planText(recorded->quant), attn::quant::planText(plan.quant));
    // CSV report.
    const Run csv = cli({"export", path, "--plan", dir + "/plan.json",
                         "--out", dir + "/out2", "--report", dir + "/report.csv"});
    QVERIFY2(csv.code == 0, csv.err.constData());
    QFile f(dir + "/report.csv");
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray header = f.readLine();
    QVERIFY(header.startsWith("kind,name,layer,head,method,bits_per_weight"));
  }

  void exportCompressedReopens() {
    TempDir tmp;
    const QString dir = QString::fromStdString(tmp.path().string());
    attn::compress::CompressionPlan plan;
    QVERIFY(attn::quant::applyPlanText("q,k,v,o=uniform:4:group:16; ffn_in,ffn_out=kmeans:3", plan.quant).ok());
    plan.prune.heads = {{0, 1}};
    QVERIFY(attn::compress::savePlan(tmp / "plan.json", plan).ok());
    const Run r = cli({"export", model("bert_tiny"), "--plan", dir + "/plan.json", "--format",
                       "compressed", "--out", dir + "/c"});
    QVERIFY2(r.code == 0, r.err.constData());
    auto base = attn::loadModel(model("bert_tiny").toStdString());
    auto applied = attn::compress::applyPlan(**base, plan);
    auto back = attn::loadModel((dir + "/c").toStdString());
    QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
    std::vector<int32_t> ids = {2, 16, 50, 51, 52, 7, 3};
    auto a = attn::forward(applied->model->config, applied->model->weights, ids, {});
    auto b = attn::forward((*back)->config, (*back)->weights, ids, {});
    QVERIFY(a->attention == b->attention);
    // Smaller than the F32 file: the linear weights (two thirds of it) shrink to 3-4 bits plus
    // parameters; embeddings, biases and norms stay F32 (exact size accounting: test_compress).
    const auto size = QFileInfo(dir + "/c/model.safetensors").size();
    const auto f32 = QFileInfo(model("bert_tiny") + "/model.safetensors").size();
    QVERIFY2(size < f32 * 6 / 10, qPrintable(QString("%1 vs %2").arg(size).arg(f32)));
    // The CLI reads it like any model.
    const Run att = cli({"attention", dir + "/c", "--ids", "2,16,50,3", "--json"});
    QCOMPARE(att.code, 0);
  }

  void exportHdf5ReadableWithH5py() {
    TempDir tmp;
    const QString dir = QString::fromStdString(tmp.path().string());
    attn::compress::CompressionPlan plan;
    QVERIFY(attn::quant::applyPlanText("q,k,v,o=uniform:4:group:16:asym; ffn_in=kmeans:3; ffn_out=log2:4:channel",
                                       plan.quant).ok());
    attn::sparse::PruneSpec nm;
    nm.method = attn::sparse::PruneMethod::NM;
    plan.prune.targets[int(attn::Target::FfnIn)] = nm;
    QVERIFY(attn::compress::savePlan(tmp / "plan.json", plan).ok());
    const Run r = cli({"export", model("bert_tiny"), "--plan", dir + "/plan.json", "--format", "h5",
                       "--out", dir + "/m.h5"});
    QVERIFY2(r.code == 0, r.err.constData());
    const Run hf = cli({"export", model("bert_tiny"), "--plan", dir + "/plan.json", "--out", dir + "/hf"});
    QVERIFY2(hf.code == 0, hf.err.constData());
    // The app's reader: the same attention as the F32 export, bit for bit.
    auto a = attn::loadModel((dir + "/m.h5").toStdString());
    auto b = attn::loadModel((dir + "/hf").toStdString());
    QVERIFY2(a.ok(), a.ok() ? "" : a.message().c_str());
    std::vector<int32_t> ids = {2, 16, 50, 51, 52, 7, 3};
    QVERIFY(attn::forward((*a)->config, (*a)->weights, ids, {})->attention ==
            attn::forward((*b)->config, (*b)->weights, ids, {})->attention);
    const Run att = cli({"attention", dir + "/m.h5", "--text", "the cat", "--json"});
    QVERIFY2(att.code == 0, att.err.constData());
    // An independent reader: h5py decodes the documented layout (codes LSB-first,
    // (code - zero) · scale, codebook lookup, ±2^(e - k + 1)) and gets the
    // dequantized weights of the hf export exactly.
    if (QProcess::execute("/usr/bin/python3", {"-c", "import h5py"}) != 0)
      QSKIP("python3-h5py is not installed");
    const char* script = R"PY(
import h5py, json, struct, sys
import numpy as np
h5, st = sys.argv[1], sys.argv[2]
raw = open(st, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
def hf(name):
    e = header[name]; a, b = e['data_offsets']
    return np.frombuffer(raw[8 + n + a:8 + n + b], dtype='<f4').reshape(e['shape'])
def codes(packed, bits, count):
    stream = np.unpackbits(packed, bitorder='little')[:count * bits].reshape(count, bits)
    return (stream.astype(np.int64) << np.arange(bits)).sum(axis=1)
f = h5py.File(h5, 'r')
assert f.attrs['format'] == 'attnstudio-compressed'
checked = 0
for name, g in f['tensors'].items():
    if g.attrs['encoding'] != 'quantized': continue
    rows, cols, bits = int(g.attrs['rows']), int(g.attrs['cols']), int(g.attrs['bits'])
    c = codes(g['codes'][()], bits, rows * cols)
    method = g.attrs['method']
    blocks = len(g['scales']) if 'scales' in g else len(g['codebook']) if 'codebook' in g else len(g['exponents'])
    per = rows * cols // blocks
    blk = np.arange(rows * cols) // per
    if method == 'uniform':
        zero = g['zeros'][()].astype(np.int64)[blk] if not g.attrs['symmetric'] else 1 << (bits - 1)
        w = g['scales'][()][blk] * (c - zero).astype(np.float32)
    elif method == 'kmeans':
        w = g['codebook'][()][blk, c]
    elif method == 'log2':
        sign, k = c >> (bits - 1), c & ((1 << (bits - 1)) - 1)
        mag = np.ldexp(np.float32(1), (g['exponents'][()].astype(np.int64)[blk] - (k - 1)).astype(np.int32))
        w = np.where(k == 0, np.float32(0), np.where(sign == 1, -mag, mag)).astype(np.float32)
    else:
        continue
    ref = hf(g.attrs['hf_name']).reshape(-1)
    if not np.array_equal(w.astype(np.float32), ref):
        print(name, 'differs by', np.abs(w - ref).max()); sys.exit(1)
    checked += 1
print(checked)
)PY";
    QProcess py;
    py.start("/usr/bin/python3", {"-c", script, dir + "/m.h5", dir + "/hf/model.safetensors"});
    QVERIFY(py.waitForFinished(120000));
    const QByteArray out = py.readAllStandardOutput();
    QVERIFY2(py.exitCode() == 0, (out + py.readAllStandardError()).constData());
    QVERIFY2(out.trimmed().toInt() >= 2 * 6, out.constData());  // every quantized matrix of both layers
  }

  void quantizeSparsifyDistillWriteEveryFormat() {
    TempDir tmp;
    const QString dir = QString::fromStdString(tmp.path().string());
    auto base = attn::loadModel(model("bert_tiny").toStdString());
    QVERIFY(base.ok());
    // quantize --format compressed / h5: reopened, the engine's quantized weights exactly.
    attn::quant::ModelQuantPlan qp;
    QVERIFY(attn::quant::applyPlanText("q,k,v,o,ffn_in,ffn_out=uniform:4:group:16", qp).ok());
    auto q = attn::quant::quantizeModel(**base, qp);
    QVERIFY(q.ok());
    for (const QString format : {"compressed", "h5"}) {
      const QString out = dir + "/q-" + format + (format == "h5" ? ".h5" : "");
      const Run r = cli({"quantize", model("bert_tiny"), "--bits", "4", "--granularity", "group:16",
                         "--ids", "2,16,50,3", "--format", format, "--out", out});
      QVERIFY2(r.code == 0, r.err.constData());
      auto back = attn::loadModel(out.toStdString());
      QVERIFY2(back.ok(), back.ok() ? "" : back.message().c_str());
      QCOMPARE(attn::test::firstDifferentWeight((*base)->config, q->model->weights, (*back)->weights),
               std::string());
    }
    // sparsify --format h5: the engine's pruned weights exactly.
    attn::sparse::ModelPrunePlan pp;
    attn::sparse::PruneSpec nm;
    nm.method = attn::sparse::PruneMethod::NM;
    using attn::Target;  // sparsify's default --targets
    for (Target t : {Target::Q, Target::K, Target::V, Target::O, Target::FfnIn, Target::FfnOut})
      pp.targets[size_t(t)] = nm;
    auto pr = attn::sparse::pruneModel(**base, pp);
    QVERIFY(pr.ok());
    const Run s = cli({"sparsify", model("bert_tiny"), "--prune", "nm:2:4", "--ids", "2,16,50,3",
                       "--format", "h5", "--out", dir + "/s.h5"});
    QVERIFY2(s.code == 0, s.err.constData());
    auto sback = attn::loadModel((dir + "/s.h5").toStdString());
    QVERIFY2(sback.ok(), sback.ok() ? "" : sback.message().c_str());
    QCOMPARE(attn::test::firstDifferentWeight((*base)->config, pr->model->weights, (*sback)->weights),
             std::string());
    // distill --qat … --format h5: the trained weights (the same seeded run written as
    // hf) quantized with the QAT plan, which is what training's forward pass saw.
    const QString corpus = QString::fromStdString((attn::test::dataDir() / "distill" / "corpus.txt").string());
    const QString student = QString::fromStdString((attn::test::dataDir() / "distill" / "bert_kl_value_hidden" / "student").string());
    const QStringList train = {"distill", model("bert_tiny"), student, "--corpus", corpus, "--steps", "2",
                               "--batch", "3", "--lr", "1e-2", "--loss", "kl", "--qat", "all=uniform:4:channel",
                               "--threads", "1"};
    const Run hf = cli(train + QStringList{"--out", dir + "/d-hf"});
    QVERIFY2(hf.code == 0, hf.err.constData());
    const Run h5 = cli(train + QStringList{"--format", "h5", "--out", dir + "/d.h5"});
    QVERIFY2(h5.code == 0, h5.err.constData());
    auto trained = attn::loadModel((dir + "/d-hf").toStdString());
    auto coded = attn::loadModel((dir + "/d.h5").toStdString());
    QVERIFY2(coded.ok(), coded.ok() ? "" : coded.message().c_str());
    attn::quant::ModelQuantPlan qat;
    QVERIFY(attn::quant::applyPlanText("all=uniform:4:channel", qat).ok());
    auto expected = attn::quant::quantizeModel(**trained, qat);
    QVERIFY(expected.ok());
    QCOMPARE(attn::test::firstDifferentWeight((*trained)->config, expected->model->weights,
                                              (*coded)->weights),
             std::string());
    // An unknown format is refused by the parser.
    const Run bad = cli({"quantize", model("bert_tiny"), "--format", "onnx", "--out", dir + "/x"});
    QCOMPARE(bad.code, 2);
  }

  // An independent reading of a pruned export: transformers' BERT with pruned heads
  // (tests/tools/pruned_heads_reference.py, torch) gives the kept heads' attention.
  void prunedHeadsExportRunsInTorchLikeTransformers() {
    if (QProcess::execute("/usr/bin/python3", {"-c", "import torch"}) != 0)
      QSKIP("python3-torch is not installed");
    TempDir tmp;
    const QString dir = QString::fromStdString(tmp.path().string());
    attn::compress::CompressionPlan plan;
    QVERIFY(attn::quant::applyPlanText("all=uniform:8:channel", plan.quant).ok());
    plan.prune.heads = {{0, 1}, {1, 0}, {1, 3}};
    QVERIFY(attn::compress::savePlan(tmp / "plan.json", plan).ok());
    const Run r = cli({"export", model("bert_tiny"), "--plan", dir + "/plan.json", "--out", dir + "/hf"});
    QVERIFY2(r.code == 0, r.err.constData());
    const std::vector<int32_t> ids = {2, 16, 50, 51, 52, 7, 3};
    QStringList args = {QStringLiteral(ATTN_SOURCE_DIR "/tests/tools/pruned_heads_reference.py"), dir + "/hf"};
    for (int id : ids) args << QString::number(id);
    QProcess py;
    py.start("/usr/bin/python3", args);
    QVERIFY(py.waitForFinished(120000));
    QVERIFY2(py.exitCode() == 0, py.readAllStandardError().constData());
    const QJsonArray layers = QJsonDocument::fromJson(py.readAllStandardOutput()).object()["layers"].toArray();
    QCOMPARE(layers.size(), 2);
    auto back = attn::loadModel((dir + "/hf").toStdString());
    QVERIFY(back.ok());
    auto f = attn::forward((*back)->config, (*back)->weights, ids, {});
    QVERIFY(f.ok());
    const int S = int(ids.size());
    const std::vector<std::vector<int>> kept = {{0, 2, 3}, {1, 2}};
    constexpr double kTol = 1e-5;  // float32 engine against the float64 reference
    double worst = 0.0;
    for (int l = 0; l < 2; ++l) {
      const QJsonArray heads = layers[l].toArray();
      QCOMPARE(heads.size(), qsizetype(kept[size_t(l)].size()));
      for (int i = 0; i < heads.size(); ++i) {
        const float* ours = f->attentionMap(l, kept[size_t(l)][size_t(i)]);
        const QJsonArray rows = heads[i].toArray();
        for (int q = 0; q < S; ++q)
          for (int k = 0; k < S; ++k)
            worst = std::max(worst, std::abs(rows[q].toArray()[k].toDouble() - double(ours[q * S + k])));
      }
    }
    qInfo("max |engine - torch reference| over the kept heads: %.3g", worst);
    QVERIFY2(worst < kTol, qPrintable(QString::number(worst)));
  }

  void exportFailsCleanly() {
    TempDir tmp;
    const QString dir = QString::fromStdString(tmp.path().string());
    attn::compress::CompressionPlan plan;
    QVERIFY(attn::quant::applyPlanText("all=uniform:8", plan.quant).ok());
    QVERIFY(attn::compress::savePlan(tmp / "plan.json", plan).ok());
    // A folder without write permission: an error, nothing written, the input intact.
    QDir().mkpath(dir + "/locked");
    QFile::setPermissions(dir + "/locked", QFile::ReadOwner | QFile::ExeOwner);
    const auto before = attn::test::readBytes(attn::test::dataDir() / "models" / "bert_tiny" / "model.safetensors");
    const Run r = cli({"export", model("bert_tiny"), "--plan", dir + "/plan.json", "--out", dir + "/locked/out"});
    QFile::setPermissions(dir + "/locked", QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
    if (::geteuid() != 0) {  // root writes anywhere
      QCOMPARE(r.code, 1);
      QVERIFY(QDir(dir + "/locked").isEmpty());
    }
    // Where no folder can be made (a file is in the way) — also as root.
    attn::test::writeBytes(tmp / "blocker", "x");
    const Run blocked = cli({"export", model("bert_tiny"), "--plan", dir + "/plan.json", "--out", dir + "/blocker/out"});
    QCOMPARE(blocked.code, 1);
    QCOMPARE(blocked.err.count('\n'), 1);
    QCOMPARE(attn::test::readBytes(tmp / "blocker"), std::string("x"));
    QVERIFY(attn::test::readBytes(attn::test::dataDir() / "models" / "bert_tiny" / "model.safetensors") == before);
    // A corrupted plan: one line naming the file.
    attn::test::writeBytes(tmp / "bad.json", "{\"format\": \"attnstudio-compression-plan\", \"version\": 1, \"pruning\": {\"heads\": [[0]]}}");
    const Run bad = cli({"export", model("bert_tiny"), "--plan", dir + "/bad.json", "--out", dir + "/x"});
    QCOMPARE(bad.code, 1);
    QVERIFY(bad.err.contains("bad.json: pruning.heads"));
    QVERIFY(!QDir(dir + "/x").exists());
    // An existing, non-empty target is refused: the writer's own error (applying the
    // plan, stopped by it, does not report "cancelled" instead), one line.
    const Run exists = cli({"export", model("bert_tiny"), "--plan", dir + "/plan.json", "--out", dir});
    QCOMPARE(exists.code, 1);
    QVERIFY(exists.err.contains("exists and is not empty"));
    QVERIFY2(!exists.err.contains("cancelled") && exists.err.trimmed().count('\n') == 0,
             qPrintable(exists.err));
  }

  // The sweep command's points and per-head numbers are the engine's, exactly.
  void sweepPointsAreTheEngines() {
    TempDir tmp;
    const std::vector<std::string> lines = {"the cat sat on the mat", "a dog barked at the mailman",
                                            "birds sang in the trees"};
    const QString corpus = QString::fromStdString((tmp / "corpus.txt").string());
    {
      QFile f(corpus);
      QVERIFY(f.open(QIODevice::WriteOnly));
      for (const auto& l : lines) f.write((l + "\n").c_str());
    }
    const QString student = ATTN_DEMO_DIR "/bert-demo-student", teacher = ATTN_DEMO_DIR "/bert-demo";
    const QString csv = QString::fromStdString((tmp / "points.csv").string());
    const Run r = cli({"sweep", student, "--teacher", teacher, "--corpus", corpus, "--vary", "bits=2,4,8",
                       "--vary", "tau=0.01", "--csv", csv, "--json"});
    QVERIFY2(r.code == 0, r.err.constData());
    const QJsonObject o = json(r);
    QCOMPARE(o["sentences"].toInt(), 3);
    const QJsonArray points = o["points"].toArray();
    QCOMPARE(points.size(), 3);
    auto s = attn::loadModel(student.toStdString());
    auto t = attn::loadModel(teacher.toStdString());
    QVERIFY(s.ok() && t.ok());
    const auto mapping = attn::uniformLayerMap((*s)->config.layers, (*t)->config.layers);
    auto ref = attn::compress::makeReference(**s, t->get(), lines, mapping);
    QVERIFY(ref.ok());
    std::vector<double> x, y;
    for (const auto& v : points) {
      const QJsonObject p = v.toObject();
      auto plan = attn::compress::parsePlanJson(
          QJsonDocument(p["plan"].toObject()).toJson().toStdString(), "point");
      QVERIFY(plan.ok());
      QCOMPARE(plan->quant.targets[0]->bits, p["bits"].toInt());
      QCOMPARE(plan->prune.attention.all.tau, 0.01);
      auto applied = attn::compress::applyPlan(**s, *plan);
      auto e = attn::compress::evaluatePlan(**s, *applied, *plan, *ref);
      QVERIFY(e.ok());
      QCOMPARE(p["attention_kl"].toDouble(), e->klMean);
      QCOMPARE(p["teacher_kl"].toDouble(), e->teacherKl);
      QCOMPARE(p["hidden_cosine"].toDouble(), e->hiddenCosine);
      QCOMPARE(qint64(p["bytes_after"].toDouble()), e->size.after);
      x.push_back(e->size.bitsPerWeight());
      y.push_back(e->teacherKl);
    }
    const auto front = attn::compress::paretoFront(x, y);
    for (int i = 0; i < points.size(); ++i)
      QCOMPARE(points[i].toObject()["pareto"].toBool(),
               std::find(front.begin(), front.end(), i) != front.end());
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QList<QByteArray> rows = f.readAll().trimmed().split('\n');
    QCOMPARE(rows.size(), 4);  // header + 3 points
    QVERIFY(rows[0].startsWith("bits,tau,bits_per_weight"));

    // No --vary: the plan alone with its per-head numbers.
    const QString planPath = QString::fromStdString((tmp / "plan.json").string());
    attn::compress::CompressionPlan plan;
    QVERIFY(attn::quant::applyPlanText("all=uniform:3:channel", plan.quant).ok());
    QVERIFY(attn::compress::savePlan(planPath.toStdString(), plan).ok());
    const Run h = cli({"sweep", student, "--plan", planPath, "--corpus", corpus, "--json"});
    QVERIFY2(h.code == 0, h.err.constData());
    const QJsonArray heads = json(h)["heads"].toArray();
    auto applied = attn::compress::applyPlan(**s, plan);
    auto e = attn::compress::evaluatePlan(**s, *applied, plan, *ref);
    QCOMPARE(heads.size(), qsizetype(e->headKl.size()));
    for (int k = 0; k < heads.size(); ++k) {
      QCOMPARE(heads[k].toObject()["kl"].toDouble(), e->headKl[size_t(k)]);
      QCOMPARE(heads[k].toObject()["js"].toDouble(), e->headJs[size_t(k)]);
    }
  }

  void errors_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("message");
    const QString bert = model("bert_tiny");
    QTest::newRow("missing model")
        << QStringList{"inspect", "/nonexistent"} << 1 << "does not exist";
    QTest::newRow("bad ids") << QStringList{"attention", bert, "--ids", "2,x,3"} << 1
                             << "'x' is not an integer";
    QTest::newRow("id outside vocab") << QStringList{"attention", bert, "--ids", "2,99999"} << 1
                                      << "token id 99999 at position 1";
    QTest::newRow("mask length") << QStringList{"attention", bert, "--ids", "2,3", "--mask", "1"}
                                 << 1 << "--mask has 1 entries for 2 tokens";
    QTest::newRow("mask not 0/1") << QStringList{"attention", bert, "--ids", "2,3", "--mask", "1,2"}
                                  << 1 << "--mask entries must be 0 or 1, not 2";
    QTest::newRow("id out of range") << QStringList{"attention", bert, "--ids", "2,99999999999"}
                                     << 1 << "99999999999 is out of range";
    QTest::newRow("bad out") << QStringList{"attention", bert, "--ids", "2,3", "--out", "x.txt"}
                             << 1 << "must end in .npy or .h5";
    QTest::newRow("no tokenizer") << QStringList{"tokenize", model("bert_bare/bert.safetensors"),
                                                 "--text", "hi"}
                                  << 1 << "has no tokenizer files";
    QTest::newRow("unknown option") << QStringList{"inspect", bert, "--frobnicate"} << 2 << "";
    QTest::newRow("no subcommand") << QStringList{} << 2 << "";
    QTest::newRow("text and ids") << QStringList{"attention", bert, "--text", "a", "--ids", "1"}
                                  << 2 << "";
    QTest::newRow("quantize group") << QStringList{"quantize", bert, "--granularity", "group:30"}
                                    << 1 << "group size 30 does not divide the input dimension";
    QTest::newRow("quantize bits") << QStringList{"quantize", bert, "--bits", "9"} << 1
                                   << "uniform quantization takes 2–8 bits, not 9";
    QTest::newRow("quantize target")
        << QStringList{"quantize", bert, "--targets", "q,mlp"} << 1 << "unknown target 'mlp'";
    QTest::newRow("quantize asym kmeans")
        << QStringList{"quantize", bert, "--method", "kmeans", "--asym"} << 1
        << "--asym applies to the uniform method only";
    QTest::newRow("quantize clip") << QStringList{"quantize", bert, "--clip", "max"} << 1
                                   << "--clip must be none, mse or percentile:P";
    QTest::newRow("quantize dump") << QStringList{"quantize", bert, "--dump", "x.bin"} << 1
                                   << "--dump must end in .safetensors";
    QTest::newRow("quantize override") << QStringList{"quantize", bert, "--override", "q=fp8:8"}
                                       << 1 << "--override: unknown quantization method 'fp8'";
    QTest::newRow("sparsify sparsity")
        << QStringList{"sparsify", bert, "--prune", "magnitude", "--sparsity", "1.5"} << 1
        << "sparsity must be in [0, 1), not 1.5";
    QTest::newRow("sparsify nm") << QStringList{"sparsify", bert, "--prune", "nm:2:5"} << 1
                                 << "M = 5 does not divide the input dimension";
    QTest::newRow("sparsify tau") << QStringList{"sparsify", bert, "--attn-threshold", "-0.1"} << 1
                                  << "τ must be in [0, 1]";
    QTest::newRow("sparsify heads") << QStringList{"sparsify", bert, "--prune-heads", "99"} << 1
                                    << "the model has only 8 heads";
    QTest::newRow("sparsify method") << QStringList{"sparsify", bert, "--prune", "random"} << 1
                                     << "unknown pruning method 'random'";
    QTest::newRow("quantize method") << QStringList{"quantize", bert, "--method", "fp4"} << 2 << "";
    const QString corpus = QString::fromStdString((attn::test::dataDir() / "distill" / "corpus.txt").string());
    const QString dstudent = QString::fromStdString((attn::test::dataDir() / "distill" / "bert_kl_value_hidden" / "student").string());
    QTest::newRow("distill map") << QStringList{"distill", bert, dstudent, "--corpus", corpus, "--steps", "1", "--map", "0:9", "--out", "/tmp/x"}
                                 << 1 << "teacher layer 9 is outside 0..1";
    QTest::newRow("distill vocab") << QStringList{"distill", model("gpt2_tiny"), dstudent, "--corpus", corpus, "--steps", "1", "--out", "/tmp/x"}
                                   << 1 << "tokenize the corpus differently";
    QTest::newRow("distill corpus") << QStringList{"distill", bert, dstudent, "--corpus", "/nonexistent.txt", "--steps", "1", "--out", "/tmp/x"}
                                    << 1 << "nonexistent.txt";
    QTest::newRow("distill no out") << QStringList{"distill", bert, dstudent, "--corpus", corpus, "--steps", "1"}
                                    << 1 << "give --out DIR";
    QTest::newRow("distill relation") << QStringList{"distill", bert, dstudent, "--corpus", corpus, "--steps", "1", "--heads", "relation", "--relation-heads", "3", "--out", "/tmp/x"}
                                      << 1 << "3 relation heads do not divide the widths";
    QTest::newRow("distill qat") << QStringList{"distill", bert, dstudent, "--corpus", corpus, "--steps", "1", "--qat", "q=fp8:8", "--out", "/tmp/x"}
                                 << 1 << "--qat: unknown quantization method 'fp8'";
    QTest::newRow("pretrain bert") << QStringList{"pretrain", bert, "--corpus", corpus, "--steps", "1", "--out", "/tmp/x"}
                                   << 1 << "needs a causal model";
    QTest::newRow("compare loss") << QStringList{"compare", bert, bert, "--loss", "js"} << 2 << "";
    QTest::newRow("tokenizer vocab") << QStringList{"build-tokenizer", "--corpus", corpus, "--vocab-size", "100", "--out", "/tmp/x"} << 2 << "";
    QTest::newRow("sweep param") << QStringList{"sweep", bert, "--vary", "depth=1,2"} << 1
                                 << "unknown sweep parameter 'depth'";
    QTest::newRow("sweep value") << QStringList{"sweep", bert, "--vary", "bits=2,x"} << 1
                                 << "'x' is not a number";
    QTest::newRow("sweep bits") << QStringList{"sweep", bert, "--vary", "bits=12"} << 1
                                << "bits must be a whole number from 1 to 8";
    QTest::newRow("sweep same axis") << QStringList{"sweep", bert, "--vary", "tau=0.1", "--vary", "tau=0.2"}
                                     << 1 << "both axes vary tau";
    QTest::newRow("sweep plan") << QStringList{"sweep", bert, "--plan", "/nonexistent.json"} << 1
                                << "nonexistent.json";
    QTest::newRow("bench both") << QStringList{"bench",     bert,    "--synthetic",
                                               "bert-base", "--seq", "4"}
                                << 2 << "";
  }

  void errors() {
    QFETCH(QStringList, args);
    QFETCH(int, code);
    QFETCH(QString, message);
    const Run r = cli(args);
    QCOMPARE(r.code, code);
    QVERIFY2(QString(r.err).contains(message), r.err.constData());
    if (code == 1) QCOMPARE(r.err.count('\n'), 1);  // one line
  }

  void helpEverywhere() {
    for (const char* sub : {"inspect", "tokenize", "attention", "bench", "quantize", "sparsify",
                            "compare", "distill", "pretrain", "init-model", "build-tokenizer",
                            "export", "sweep"}) {
      const Run r = cli({sub, "--help"});
      QCOMPARE(r.code, 0);
      QVERIFY(r.out.contains("Usage") || r.out.contains("USAGE") || r.out.contains("usage"));
    }
  }
};

QTEST_APPLESS_MAIN(TestCli)
#include "test_cli.moc"
