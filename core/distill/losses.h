// Distillation losses between a teacher's and a student's activations on the same
// batch, with their gradients with respect to the student's activations. Padding
// (mask 0) is left out everywhere: its query rows carry no loss and its keys have
// probability 0 in both models.
//
//   attention maps, per mapped layer pair (student layer s ↔ teacher layer t):
//     mse        Σ (A_T − A_S)² / (heads · Σ_examples valid²)            (mean over entries)
//     frobenius  Σ ‖A_T − A_S‖²_F / (heads · examples)                     (squared norm per map)
//     kl         Σ_rows KL(A_T,row ‖ A_S,row) / (heads · valid rows)       (TinyBERT, MiniLM)
//   heads: one to one when the counts match ("auto"), head-averaged maps, or
//   MiniLM-v2 relation heads: the concatenated Q and K of each model are split into
//   R relation heads of D/R columns, A = softmax(Q_r K_rᵀ / √(D/R)) (masked as the model masks).
//   value relation (MiniLM): KL between softmax(V_r V_rᵀ / √(D/R)) of the two models,
//   R relation heads, mean over valid rows and R.
//   hidden-state MSE: ‖h_S W_pᵀ − h_T‖² / (valid rows · D_T) per mapped layer, W_p a learned
//   [D_T, D_S] projection when the widths differ (identity otherwise).
//   logits (tied LM heads, same vocabulary): τ² · KL(softmax(z_T/τ) ‖ softmax(z_S/τ)), mean over rows.
//   lm: next-token cross-entropy of the student (causal models), mean over predicted tokens.
// The total is Σ weight · term, the attention and hidden terms summed over mapped layers.
#pragma once

#include <string>
#include <vector>

#include "core/distill/network.h"

namespace attn::distill {

enum class AttentionLoss { None, Mse, Frobenius, Kl };
enum class HeadMode { Auto, Average, Relation };

struct LossOptions {
  std::vector<int> mapping;  // [student layers] → teacher layer, −1: not distilled
  AttentionLoss attention = AttentionLoss::Kl;
  double attentionWeight = 1.0;
  HeadMode heads = HeadMode::Auto;
  int relationHeads = 0;  // 0: the student's head count
  double valueWeight = 0.0;
  double hiddenWeight = 0.0;
  double logitWeight = 0.0;
  double temperature = 1.0;
  double lmWeight = 0.0;

  bool needsTeacher() const {
    return attention != AttentionLoss::None || valueWeight > 0 || hiddenWeight > 0 ||
           logitWeight > 0;
  }
};

const char* attentionLossName(AttentionLoss l);
Result<AttentionLoss> parseAttentionLoss(const std::string& text);  // none|mse|frobenius|kl
const char* headModeName(HeadMode h);
Result<HeadMode> parseHeadMode(const std::string& text);  // auto|average|relation

// Checks the options against the two configs (mapping range, relation heads
// dividing both widths, vocabularies for logits, causal model for lm).
Status validateLoss(const LossOptions& o, const ModelConfig& teacher, const ModelConfig& student);

// Batch-wide counts the losses are normalised by (from the masks of the whole
// batch, so that chunks of it add up to the batch's loss).
struct Normalizers {
  double examples = 0, rows = 0, entries = 0, lmTokens = 0;
};
Normalizers normalizers(const int32_t* mask, int n, int seq);

struct LossValues {
  double total = 0.0;
  std::vector<double> attention;  // per student layer (0 when not mapped)
  double value = 0.0, hidden = 0.0, logit = 0.0, lm = 0.0;
  void add(const LossValues& o);
};

// Extra trainable parameters of the losses: the hidden-state projections.
struct ProjectionSlots {
  std::vector<size_t> offset;  // per student layer, into the extra block; SIZE_MAX: none
  int rows = 0, cols = 0;      // D_T, D_S
  size_t size = 0;
};
ProjectionSlots projectionSlots(const LossOptions& o, const ModelConfig& teacher,
                                const ModelConfig& student);
// W_p initialised N(0, 1/√D_S).
void initProjections(const ProjectionSlots& slots, float* extra, uint64_t seed);

// Adds the losses of one chunk of the batch to `values` and their gradients to
// `grads` (w.r.t. the student's activations), `gradParams` (the student's tied
// embeddings for logit terms) and `gradExtra` (projections). teacher may be null
// when no term needs it.
void accumulateLosses(const LossOptions& o, const Normalizers& norm, const Network& student,
                      const Activations& s, const Network* teacher, const Activations* t,
                      const ProjectionSlots& proj, const float* extra, LossValues& values,
                      ActivationGrads& grads, float* gradParams, float* gradExtra);

}  // namespace attn::distill
