#!/usr/bin/env bash
# Rebuilds the demo pair in resources/demo/{teacher,student} from nothing but Debian
# packages, with the project's own tools (about 35 minutes on 2 cores):
#
#   1. corpus      the English fortunes of Debian's `fortunes` package, one fortune per line
#                  (ASCII-art files left out; every 50th fortune held out for evaluation)
#   2. tokenizer   byte-level BPE with 2048 tokens trained on the corpus (build-tokenizer)
#   3. teacher     GPT-2 style, 4 layers × 128, 4 heads, trained from random weights as a
#                  causal language model (pretrain)
#   4. student     GPT-2 style, 2 layers × 128, 4 heads, random weights (init-model), then
#                  distilled from the teacher: attention KL (student 0 ↔ teacher 1,
#                  1 ↔ 3), MiniLM value relation and logit distillation (distill)
#   5. report      the held-out attention loss of the student before and after
#                  distillation (compare), written to build/demo/report.json
#
#   resources/demo/reproduce.sh            # everything, then copies the pair into resources/demo
#   STEPS_SCALE=0.1 resources/demo/reproduce.sh   # a quick smoke run (nothing copied)
set -euo pipefail
cd "$(dirname "$0")/../.."
scale=${STEPS_SCALE:-1}
steps() { awk -v s="$scale" -v n="$1" 'BEGIN { v = int(n * s); print (v < 1 ? 1 : v) }'; }

if ! dpkg-query -W -f='${Status}' fortunes 2>/dev/null | grep -q 'install ok installed'; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends fortunes
fi
cmake --preset release >/dev/null
cmake --build --preset release --target attnstudio-cli
cli=build/release/app/attnstudio-cli
out=build/demo
rm -rf "$out"
mkdir -p "$out"

# 1. One fortune per line; control characters (overstrike backspaces) become spaces.
files=$(ls /usr/share/games/fortunes/* | grep -v -E '\.(dat|u8)$|art' | sort)
awk 'BEGIN { RS = "\n%\n" }
     { gsub(/[\001-\037]/, " "); gsub(/ +/, " "); sub(/^ /, ""); sub(/ $/, "");
       if (length($0) > 0) print }' $files > "$out/all.txt"
awk 'NR % 50 == 0' "$out/all.txt" > "$out/heldout.txt"
awk 'NR % 50 != 0' "$out/all.txt" > "$out/train.txt"
echo "corpus: $(wc -l < "$out/train.txt") training and $(wc -l < "$out/heldout.txt") held-out fortunes"

# 2. Tokenizer.
"$cli" build-tokenizer --corpus "$out/train.txt" --vocab-size 2048 --out "$out/tokenizer"

# 3. Teacher: causal LM pre-training.
"$cli" init-model --config resources/demo/configs/teacher.json --tokenizer "$out/tokenizer" \
  --out "$out/teacher-init" --seed 1
"$cli" pretrain "$out/teacher-init" --corpus "$out/train.txt" --steps "$(steps 6000)" \
  --batch 32 --seq 64 --lr 1e-3 --warmup "$(steps 300)" --weight-decay 0.01 --seed 1 \
  --log "$out/teacher.jsonl" --out "$out/teacher" --json > "$out/teacher.json"

# 4. Student: attention distillation (+ value relation and logits).
"$cli" init-model --config resources/demo/configs/student.json --tokenizer "$out/tokenizer" \
  --out "$out/student-init" --seed 2
"$cli" distill "$out/teacher" "$out/student-init" --corpus "$out/train.txt" \
  --steps "$(steps 3000)" --batch 32 --seq 64 --lr 1e-3 --warmup "$(steps 150)" --map uniform \
  --loss kl+value --logit-weight 1 --temperature 1 --seed 2 \
  --log "$out/student.jsonl" --out "$out/student" --json > "$out/student.json"

# 5. Held-out attention loss (KL per query row, teacher layer ↔ student layer).
"$cli" compare "$out/teacher" "$out/student-init" --corpus "$out/heldout.txt" --loss kl \
  --json > "$out/before.json"
"$cli" compare "$out/teacher" "$out/student" --corpus "$out/heldout.txt" --loss kl \
  --json > "$out/after.json"
python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
b, a = (json.load(open(f"{d}/{n}.json")) for n in ("before", "after"))
t, s = (json.load(open(f"{d}/{n}.json")) for n in ("teacher", "student"))
report = {"heldout_examples": a["examples"], "mapping": a["mapping"],
          "attention_kl_before": b["mapped_losses"], "attention_kl_after": a["mapped_losses"],
          "total_before": b["total"], "total_after": a["total"],
          "teacher_lm_loss_train_first64": t["after"]["lm"], "student_distill_loss": s["after"]}
json.dump(report, open(f"{d}/report.json", "w"), indent=2)
print(json.dumps(report, indent=2))
PY

if [ "$scale" = "1" ]; then
  rm -rf resources/demo/teacher resources/demo/student
  cp -r "$out/teacher" resources/demo/teacher
  cp -r "$out/student" resources/demo/student
  cp "$out/report.json" resources/demo/report.json
  head -n 1500 "$out/train.txt" > resources/demo/corpus.txt  # the panel's default corpus
  echo "resources/demo/teacher and resources/demo/student updated"
fi
