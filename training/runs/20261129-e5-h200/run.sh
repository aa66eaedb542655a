#!/bin/bash
# Run from the repository root on a GPU machine with torch; first, on a machine with the
# project installed: python -m training.e5 trim --out .device/e5-trim.bin, and the wheels of
# transformers 4.57.6, tokenizers 0.22.2 and huggingface_hub 0.36.2 in .whl/ (the pins here).
# Issue 9, item 7: full e5 (+ char TF-IDF) teacher fine-tune and a distilled student, twice in
# parallel on one GPU: on the whole corpus, and on the corpus without 酒店 (bench.adaptation's base).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import sys,torch,transformers,tokenizers,sklearn;print(sys.version.split()[0],torch.__version__,transformers.__version__,tokenizers.__version__,sklearn.__version__,torch.cuda.is_available())" || exit 1
python3 training/runs/20261129-e5-h200/write_corpus_without.py /tmp/wo.csv || exit 1
sha256sum .device/e5-trim.bin /tmp/wo.csv
mkdir -p "$OUT/full" "$OUT/wo"
common=(--e5 .device/e5-trim.bin --students wp20000:128x2x2x512 --teacher-epochs 3
        --student-epochs 6 --teacher-budget-s "${TEACHER_BUDGET:-240}"
        --student-budget-s "${STUDENT_BUDGET:-120}" --quiet)
python3 -m training.distil "${common[@]}" --out "$OUT/full" > "$OUT/full.log" 2>&1 &
python3 -m training.distil "${common[@]}" --data /tmp/wo.csv --out "$OUT/wo" > "$OUT/wo.log" 2>&1 &
while [ -n "$(jobs -r)" ]; do sleep 30; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; tail -n 2 "$OUT/full.log" "$OUT/wo.log"; done
wait
for run in full wo; do
  sha256sum "$OUT/$run/student0.tokenizer.json" >> "$OUT/$run.log" && rm -f "$OUT/$run/student0.tokenizer.json"
done
ls -la "$OUT" "$OUT/full" "$OUT/wo"
