#include "app/cli/recipe.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"
#include "core/model/targets.h"
#include "core/model/weights.h"
#include "recipe_train_py.h"

namespace attn::cli {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

Result<Json> specJson(const quant::Spec& s) {
  if (s.method != quant::Method::Uniform && s.method != quant::Method::Binary &&
      s.method != quant::Method::Ternary)
    return makeError("the recipe's quantization-aware training implements uniform, binary and "
                     "ternary formats");
  if (s.clip != quant::Clip::None)
    return makeError("the recipe's quantization-aware training uses the min/max range (no clipping)");
  const char* gran = s.granularity == quant::Granularity::Tensor    ? "tensor"
                     : s.granularity == quant::Granularity::Channel ? "channel"
                                                                     : "group";
  const char* method = s.method == quant::Method::Uniform  ? "uniform"
                       : s.method == quant::Method::Binary ? "binary"
                                                           : "ternary";
  return Json{{"method", method},
              {"bits", s.bits},
              {"granularity", gran},
              {"group", s.groupSize},
              {"symmetric", s.symmetric}};
}

Status writeText(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) return makeError("cannot write " + p.string());
  return Ok{};
}

}  // namespace

Status writeRecipe(const std::string& dirText, const RecipeInputs& in) {
  const fs::path dir(dirText);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return makeError("cannot create '" + dir.string() + "': " + ec.message());
  const distill::TrainOptions& o = in.options;
  const distill::LossOptions& L = o.loss;
  Json cfg;
  cfg["student"] = fs::absolute(in.student).string();
  cfg["teacher"] = in.teacher.empty() ? Json(nullptr) : Json(fs::absolute(in.teacher).string());
  cfg["corpus"] = "corpus_ids.jsonl";
  cfg["out"] = "student-out";
  cfg["seed"] = o.seed;
  cfg["steps"] = o.steps;
  cfg["batch"] = o.batch;
  cfg["max_tokens"] = o.seq;
  int32_t pad = 0;
  if (in.trainer) {
    const ModelConfig& c = in.trainer->network().config;
    pad = c.padTokenId >= 0 && c.padTokenId < c.vocabSize ? c.padTokenId : 0;
  }
  cfg["pad_id"] = pad;
  cfg["optimizer"] = {{"name", "adamw"},   {"lr", o.lr},          {"beta1", o.beta1},
                      {"beta2", o.beta2},   {"eps", o.adamEps},    {"weight_decay", o.weightDecay},
                      {"warmup", o.warmup}, {"schedule", "linear"}, {"clip", o.clip}};
  cfg["loss"] = {{"mapping", L.mapping},
                 {"attention", distill::attentionLossName(L.attention)},
                 {"attention_weight", L.attentionWeight},
                 {"heads", distill::headModeName(L.heads)},
                 {"relation_heads", L.relationHeads},
                 {"value_weight", L.valueWeight},
                 {"hidden_weight", L.hiddenWeight},
                 {"logit_weight", L.logitWeight},
                 {"temperature", L.temperature},
                 {"lm_weight", L.lmWeight}};
  if (o.groupLasso.groups != distill::GroupLasso::Groups::None && o.groupLasso.lambda > 0)
    cfg["group_lasso"] = {
        {"groups", o.groupLasso.groups == distill::GroupLasso::Groups::Heads ? "heads" : "ffn"},
        {"lambda", o.groupLasso.lambda}};
  else
    cfg["group_lasso"] = nullptr;
  cfg["qat"] = nullptr;
  if (o.qat && in.trainer) {
    const ModelConfig& c = in.trainer->network().config;
    Json tensors = Json::object();
    auto put = [&](const std::string& name, const std::optional<quant::Spec>& spec) -> Status {
      if (!spec) return Ok{};
      auto j = specJson(*spec);
      if (!j) return j.error();
      tensors[name] = *j;
      return Ok{};
    };
    if (Status st = put(c.arch == Architecture::Gpt2 ? "wte.weight"
                                                     : "embeddings.word_embeddings.weight",
                        o.qat->specFor(-1, Target::Emb));
        !st)
      return st;
    for (int l = 0; l < c.layers; ++l) {
      if (c.arch == Architecture::Gpt2) {  // fused c_attn: one spec per third
        Json thirds = Json::array();
        bool any = false;
        for (Target t : {Target::Q, Target::K, Target::V}) {
          auto spec = o.qat->specFor(l, t);
          if (!spec) {
            thirds.push_back(nullptr);
            continue;
          }
          auto j = specJson(*spec);
          if (!j) return j.error();
          thirds.push_back(*j);
          any = true;
        }
        if (any) tensors[linearWeightName(c.arch, l, "q")] = thirds;
      } else {
        for (const auto& [t, role] : {std::pair{Target::Q, "q"}, {Target::K, "k"}, {Target::V, "v"}})
          if (Status st = put(linearWeightName(c.arch, l, role), o.qat->specFor(l, t)); !st)
            return st;
      }
      for (const auto& [t, role] : {std::pair{Target::O, "o"}, {Target::FfnIn, "ffn_in"},
                                    {Target::FfnOut, "ffn_out"}})
        if (Status st = put(linearWeightName(c.arch, l, role), o.qat->specFor(l, t)); !st)
          return st;
    }
    cfg["qat"] = {{"plan", quant::planText(*o.qat)}, {"tensors", tensors}};
  }
  cfg["projections"] = nullptr;
  if (in.trainer && !in.trainer->projections().empty()) {
    std::vector<std::pair<std::string, Tensor>> ps;
    for (const auto& [layer, rows, cols, values] : in.trainer->projections())
      ps.emplace_back(std::to_string(layer), Tensor::fromF32({rows, cols}, values));
    if (Status st = writeSafetensors(dir / "projections.safetensors", ps, {{"format", "pt"}}); !st)
      return st;
    cfg["projections"] = "projections.safetensors";
  }
  std::string corpus;
  for (const auto& e : in.corpus.examples) corpus += Json(e).dump() + "\n";
  if (Status st = writeText(dir / "corpus_ids.jsonl", corpus); !st) return st;
  if (Status st = writeText(dir / "config.json", cfg.dump(2) + "\n"); !st) return st;
  if (Status st = writeText(dir / "train.py", kRecipeTrainPy); !st) return st;
  fs::permissions(dir / "train.py", fs::perms::owner_exec | fs::perms::group_exec |
                                        fs::perms::others_exec,
                  fs::perm_options::add, ec);
  return Ok{};
}

}  // namespace attn::cli
