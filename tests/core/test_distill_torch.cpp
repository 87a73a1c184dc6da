// The trainer against PyTorch: tests/tools/make_distill_fixtures.sh ran the same
// runs (same student, corpus, example order, losses, AdamW schedule, clipping,
// QAT, Group-Lasso) with autograd in Debian's python3-torch; here the engine runs
// them and every step's loss terms and gradient norm, and the final weights, are
// compared.
#include <QTest>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/distill/trainer.h"
#include "core/io/safetensors.h"
#include "core/model/model.h"
#include "test_helpers.h"

using namespace attn;
using namespace attn::distill;
using Json = nlohmann::json;

namespace {

// Float32 in both; the sums run in different orders, so per-step losses agree to
// ~1e-7 relative. Adam moves each weight by up to ~lr per step whatever the size of
// its gradient, so a weight whose gradient is tiny (rounding-sized) can move
// differently: weights are compared to 2 % of one step's size, 0.02·lr.
constexpr double kLossRelTol = 2e-5;
constexpr double kGradNormRelTol = 1e-4;
constexpr double kWeightStepFraction = 0.02;
constexpr double kGroupLassoRelTol = 1e-4;

Json readJson(const std::filesystem::path& p) {
  std::ifstream in(p);
  return Json::parse(in);
}

bool close(double a, double b, double rel) {
  return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)) + 1e-9;
}

// A key bias only shifts every score of a query row by the same amount, which the
// softmax removes: its true gradient is 0, and what both programs compute is float
// noise that Adam's normalisation blows up. Those tensors are not compared.
bool keyBias(const std::string& name) {
  return name.find("attention.self.key.bias") != std::string::npos;
}

}  // namespace

class TestDistillTorch : public QObject {
  Q_OBJECT

 private slots:
  void matchesPyTorch_data() {
    QTest::addColumn<QString>("name");
    for (const char* c :
         {"bert_kl_value_hidden", "bert_mse_qat_lasso", "gpt2_relation_logits", "gpt2_pretrain"})
      QTest::newRow(c) << c;
  }

  void matchesPyTorch() {
    QFETCH(QString, name);
    const auto dir = test::dataDir() / "distill" / name.toStdString();
    const Json cfg = readJson(dir / "config.json");
    auto student = loadModel(dir / "student");
    QVERIFY2(student.ok(), student.ok() ? "" : student.message().c_str());
    std::shared_ptr<const Model> teacher;
    if (!cfg["teacher"].is_null()) {
      auto t = loadModel(test::dataDir() / cfg["teacher"].get<std::string>());
      QVERIFY(t.ok());
      teacher = *t;
    }
    TokenizedCorpus corpus;
    {
      std::ifstream in(dir / "corpus_ids.jsonl");
      std::string line;
      while (std::getline(in, line))
        if (!line.empty()) corpus.examples.push_back(Json::parse(line).get<std::vector<int32_t>>());
    }
    TrainOptions o;
    o.steps = cfg["steps"];
    o.batch = cfg["batch"];
    o.seq = cfg["max_tokens"];
    o.seed = cfg["seed"];
    o.threads = 2;
    const Json& opt = cfg["optimizer"];
    o.lr = opt["lr"];
    o.beta1 = opt["beta1"];
    o.beta2 = opt["beta2"];
    o.adamEps = opt["eps"];
    o.weightDecay = opt["weight_decay"];
    o.warmup = opt["warmup"];
    o.clip = opt["clip"];
    const Json& L = cfg["loss"];
    o.loss.mapping = L["mapping"].get<std::vector<int>>();
    o.loss.attention = *parseAttentionLoss(L["attention"]);
    o.loss.attentionWeight = L["attention_weight"];
    o.loss.heads = *parseHeadMode(L["heads"]);
    o.loss.relationHeads = L["relation_heads"];
    o.loss.valueWeight = L["value_weight"];
    o.loss.hiddenWeight = L["hidden_weight"];
    o.loss.logitWeight = L["logit_weight"];
    o.loss.temperature = L["temperature"];
    o.loss.lmWeight = L["lm_weight"];
    if (!cfg["group_lasso"].is_null()) {
      o.groupLasso.groups = cfg["group_lasso"]["groups"] == "heads" ? GroupLasso::Groups::Heads
                                                                     : GroupLasso::Groups::Ffn;
      o.groupLasso.lambda = cfg["group_lasso"]["lambda"];
    }
    if (!cfg["qat"].is_null()) {
      quant::ModelQuantPlan plan;
      QVERIFY(quant::applyPlanText(cfg["qat"]["plan"], plan).ok());
      o.qat = plan;
    }
    auto trainer = Trainer::create(*student, teacher, corpus, o);
    QVERIFY2(trainer.ok(), trainer.ok() ? "" : trainer.message().c_str());

    std::ifstream log(dir / "torch_log.jsonl");
    std::string line;
    int step = 0;
    while (std::getline(log, line)) {
      if (line.empty()) continue;
      const Json ref = Json::parse(line);
      auto r = (*trainer)->step();
      QVERIFY(r.ok());
      ++step;
      const QString at = QString("step %1: ").arg(step);
      QVERIFY2(close(r->loss.total, ref["loss"], kLossRelTol),
               qPrintable(at + QString("loss %1 vs torch %2").arg(r->loss.total, 0, 'g', 10).arg(ref["loss"].get<double>(), 0, 'g', 10)));
      const auto att = ref["attention"].get<std::vector<double>>();
      for (size_t l = 0; l < att.size(); ++l)
        QVERIFY2(close(r->loss.attention[l], att[l], kLossRelTol), qPrintable(at + "attention"));
      for (const auto& [key, mine] : {std::pair<const char*, double>{"value", r->loss.value},
                                      {"hidden", r->loss.hidden},
                                      {"logit", r->loss.logit},
                                      {"lm", r->loss.lm}})
        QVERIFY2(close(mine, ref[key], kLossRelTol),
                 qPrintable(at + QString("%1 %2 vs torch %3").arg(key).arg(mine).arg(ref[key].get<double>())));
      // The penalty is a function of the weights alone, which carry the Adam noise
      // described above (kWeightStepFraction).
      QVERIFY2(close(r->groupLasso, ref["group_lasso"], kGroupLassoRelTol),
               qPrintable(at + QString("group lasso %1 vs torch %2").arg(r->groupLasso).arg(ref["group_lasso"].get<double>())));
      QVERIFY2(close(r->gradNorm, ref["grad_norm"], kGradNormRelTol),
               qPrintable(at + QString("gradient norm %1 vs torch %2").arg(r->gradNorm).arg(ref["grad_norm"].get<double>())));
      QVERIFY(close(r->lr, ref["lr"], 1e-12));
    }
    QCOMPARE(step, o.steps);

    auto torchWeights = openCheckpoint(dir / "torch_student.safetensors");
    QVERIFY(torchWeights.ok());
    const ModelWeights mine = networkWeights((*trainer)->network());
    const double kWeightAbsTol = kWeightStepFraction * o.lr;
    int compared = 0;
    for (const auto& [n, t] : namedWeights((*student)->config, mine)) {
      const auto it = torchWeights->tensors.find(n);
      QVERIFY2(it != torchWeights->tensors.end(), n.c_str());
      const Tensor& ref = it->second.tensor;
      QCOMPARE(ref.numel(), t->numel());
      if (keyBias(n)) continue;
      if ((*student)->config.arch == Architecture::Gpt2 && n.find("c_attn.bias") != std::string::npos) {
        // The key third of the fused bias: see keyBias().
        const int D = (*student)->config.hidden;
        ATTN_CHECK_CLOSE(t->f32(), ref.f32(), size_t(D), kWeightAbsTol, n.c_str());
        ATTN_CHECK_CLOSE(t->f32() + 2 * D, ref.f32() + 2 * D, size_t(D), kWeightAbsTol, n.c_str());
      } else {
        ATTN_CHECK_CLOSE(t->f32(), ref.f32(), size_t(t->numel()), kWeightAbsTol, n.c_str());
      }
      ++compared;
    }
    QVERIFY(compared > 10);
  }
};

QTEST_GUILESS_MAIN(TestDistillTorch)
#include "test_distill_torch.moc"
