#!/usr/bin/env bash
# PyTorch reference runs of the distillation trainer (tests/data/distill/<case>/).
#
# For each case: a fresh student (attnstudio-cli init-model), the run written as a
# PyTorch recipe (attnstudio-cli distill/pretrain --emit-recipe), then the recipe run by
# Debian's python3-torch on CPU. Committed per case: student/ (the starting point),
# config.json (the run, paths made relative), corpus_ids.jsonl, torch_log.jsonl (loss
# terms and gradient norm per step) and torch_student.safetensors (the weights after the
# last step). tests/core/test_distill_torch.cpp runs the engine's trainer on the same
# inputs and compares.
#
#   tests/tools/make_distill_fixtures.sh [build/release/app/attnstudio-cli]
set -euo pipefail
cd "$(dirname "$0")/../.."
CLI=${1:-build/release/app/attnstudio-cli}
PY=/usr/bin/python3
OUT=tests/data/distill
MODELS=tests/data/models
rm -rf "$OUT"
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$OUT/corpus.txt" <<'TXT'
the cat sat on the mat
the quick brown fox jumps over the lazy dog
hello world
a big red book is on the table near the small blue house
the dog likes music and the bird likes the tree
i read a good book at night
you see the sun and the moon
TXT

bert_student() {  # $1 heads
  cat <<JSON
{"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 16, "num_hidden_layers": 2,
 "num_attention_heads": $1, "intermediate_size": 32, "max_position_embeddings": 64,
 "vocab_size": 110, "type_vocab_size": 2, "pad_token_id": 0, "layer_norm_eps": 1e-12,
 "hidden_act": "gelu"}
JSON
}
gpt2_student() {
  cat <<JSON
{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 16, "n_layer": 2,
 "n_head": 2, "n_inner": 32, "n_positions": 64, "n_ctx": 64, "vocab_size": 317,
 "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05, "bos_token_id": 316,
 "eos_token_id": 316}
JSON
}

# case name, student config function + arg, teacher dir ("" for pretrain), distill args…
run_case() {
  local name=$1 cfg=$2 teacher=$3
  shift 3
  local dir="$OUT/$name"
  mkdir -p "$dir"
  $cfg > "$tmp/$name.json"
  local tok=$MODELS/bert_tiny
  [[ $cfg == gpt2* ]] && tok=$MODELS/gpt2_tiny
  "$CLI" init-model --config "$tmp/$name.json" --tokenizer "$tok" --out "$dir/student" --seed 7 >/dev/null
  if [ -n "$teacher" ]; then
    "$CLI" distill "$teacher" "$dir/student" --corpus "$OUT/corpus.txt" --emit-recipe "$tmp/$name" "$@" 2>/dev/null
  else
    "$CLI" pretrain "$dir/student" --corpus "$OUT/corpus.txt" --emit-recipe "$tmp/$name" "$@" 2>/dev/null
  fi
  OMP_NUM_THREADS=1 $PY "$tmp/$name/train.py" --config "$tmp/$name/config.json" --device cpu --threads 1 \
    --log "$dir/torch_log.jsonl" --out "$tmp/$name/out"
  cp "$tmp/$name/out/model.safetensors" "$dir/torch_student.safetensors"
  cp "$tmp/$name/corpus_ids.jsonl" "$dir/"
  $PY - "$tmp/$name/config.json" "$dir/config.json" "$teacher" <<'PYX'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["student"] = "student"
cfg["teacher"] = sys.argv[3].split("tests/data/")[-1] if sys.argv[3] else None  # relative to tests/data
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
PYX
  echo "$name: $(wc -l < "$dir/torch_log.jsonl") steps"
}

# Head counts differ (4 vs 2): head-averaged KL, MiniLM value relation, hidden MSE through
# a learned 32 x 16 projection; warm-up, decay and clipping all active.
run_case bert_kl_value_hidden "bert_student 2" $MODELS/bert_tiny \
  --steps 5 --batch 3 --lr 1e-2 --warmup 1 --loss kl+value --hidden-weight 0.5 --seed 3
# Same head count: per-head MSE, 4-bit QAT (straight-through), Group-Lasso on heads, no clipping.
run_case bert_mse_qat_lasso "bert_student 4" $MODELS/bert_tiny \
  --steps 4 --batch 4 --lr 5e-3 --warmup 0 --loss mse --clip 0 \
  --qat "q,k,v,o,ffn_in,ffn_out=uniform:4:channel" --group-lasso heads:0.01 --seed 5
# GPT-2: MiniLM-v2 relation heads (Q-K) on the last layer, logit distillation at τ = 2 and
# the student's own LM loss.
run_case gpt2_relation_logits gpt2_student $MODELS/gpt2_tiny \
  --steps 4 --batch 3 --lr 1e-2 --warmup 1 --map last --heads relation --relation-heads 2 \
  --loss kl --logit-weight 0.5 --temperature 2 --lm-weight 0.3 --seed 1
# Causal LM pre-training (no teacher).
run_case gpt2_pretrain gpt2_student "" --steps 4 --batch 4 --lr 1e-2 --warmup 1 --seed 2
