// Synthetic models for benchmarks: the shapes of a real checkpoint filled with
// seeded random values (N(0, 0.02) weights, LayerNorm γ = 1, β = 0).
#include <random>

#include "core/model/model.h"

namespace attn {

namespace {
Tensor randomTensor(Shape shape, std::mt19937& rng, float stddev) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(static_cast<size_t>(shapeNumel(shape).value_or(0)));
  for (auto& x : v) x = dist(rng);
  return Tensor::fromF32(std::move(shape), std::move(v));
}

Linear randomLinear(int in, int out, bool inOut, std::mt19937& rng) {
  Linear l;
  l.in = in;
  l.out = out;
  l.inOut = inOut;
  l.w = randomTensor(inOut ? Shape{in, out} : Shape{out, in}, rng, 0.02f);
  l.b = randomTensor({out}, rng, 0.02f);
  return l;
}

Norm unitNorm(int d) {
  return Norm{Tensor::fromF32({d}, std::vector<float>(d, 1.0f)), Tensor::zerosF32({d})};
}
}  // namespace

Result<std::shared_ptr<const Model>> syntheticModel(const std::string& name, uint32_t seed) {
  ModelConfig c;
  c.layers = 12;
  c.heads = 12;
  c.hidden = 768;
  c.intermediate = 3072;
  if (name == "bert-base") {
    c.arch = Architecture::Bert;
    c.hfClass = "BertModel";
    c.vocabSize = 30522;
    c.maxPositions = 512;
    c.typeVocabSize = 2;
    c.padTokenId = 0;
  } else if (name == "gpt2-small") {
    c.arch = Architecture::Gpt2;
    c.hfClass = "GPT2Model";
    c.vocabSize = 50257;
    c.maxPositions = 1024;
    c.layerNormEps = 1e-5f;
    c.activation = Activation::GeluTanh;
  } else {
    return makeError("unknown synthetic model '" + name + "' (bert-base, gpt2-small)");
  }
  std::mt19937 rng(seed);
  auto m = std::make_shared<Model>();
  m->config = c;
  m->source = "synthetic:" + name;
  ModelWeights& w = m->weights;
  const int D = c.hidden, F = c.intermediate;
  const bool gpt = c.arch == Architecture::Gpt2;
  w.wordEmb = randomTensor({c.vocabSize, D}, rng, 0.02f);
  w.posEmb = randomTensor({c.maxPositions, D}, rng, 0.02f);
  if (c.typeVocabSize > 0) w.typeEmb = randomTensor({c.typeVocabSize, D}, rng, 0.02f);
  if (gpt)
    w.finalNorm = unitNorm(D);
  else
    w.embNorm = unitNorm(D);
  for (int i = 0; i < c.layers; ++i) {
    LayerWeights l;
    if (gpt) {
      l.qkv = randomLinear(D, 3 * D, true, rng);
    } else {
      l.q = randomLinear(D, D, false, rng);
      l.k = randomLinear(D, D, false, rng);
      l.v = randomLinear(D, D, false, rng);
    }
    l.o = randomLinear(D, D, gpt, rng);
    l.attnNorm = unitNorm(D);
    l.ffnNorm = unitNorm(D);
    l.ffnIn = randomLinear(D, F, gpt, rng);
    l.ffnOut = randomLinear(F, D, gpt, rng);
    w.layers.push_back(std::move(l));
  }
  int64_t params = 0;
  auto add = [&](const Tensor& t) { params += t.empty() ? 0 : t.numel(); };
  add(w.wordEmb);
  add(w.posEmb);
  add(w.typeEmb);
  for (const Norm* n : {&w.embNorm, &w.finalNorm}) {
    add(n->gamma);
    add(n->beta);
  }
  for (const auto& l : w.layers) {
    for (const Linear* x : {&l.q, &l.k, &l.v, &l.qkv, &l.o, &l.ffnIn, &l.ffnOut}) {
      add(x->w);
      add(x->b);
    }
    for (const Norm* n : {&l.attnNorm, &l.ffnNorm}) {
      add(n->gamma);
      add(n->beta);
    }
  }
  m->parameters = params;
  return std::shared_ptr<const Model>(std::move(m));
}

}  // namespace attn
