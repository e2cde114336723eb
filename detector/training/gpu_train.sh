#!/usr/bin/env bash
# Train streetwatch's default model on a rented GPU machine in ONE command (<= 10 minutes):
#   1. render the synthetic dataset with every core,
#   2. train yolov8n from its yaml (no downloaded weights) for a fixed wall-time budget,
#   3. evaluate on the held-out test renders and on distractor-only renders (false positives),
#   4. copy best.pt, metrics JSON and a few sample renders to $OUT.
#
# Run from the repository root:  OUT=/some/dir bash detector/training/gpu_train.sh
# Everything scales through environment variables (defaults in brackets):
#   SW_TRAIN [5000] SW_VAL [500] SW_TEST [400] SW_NEG [300]  images per set
#   SW_MIN_SIZE [480] SW_MAX_SIZE [960]  long side of the renders, pixels
#   SW_IMGSZ [640]  training image size     SW_HOURS [0.085]  training wall-time cap (hours)
# Measured on the 16-core H100 box: ~41 renders/s at 512-1024 px, so the defaults render in ~2.5 min and
# the whole script fits a 10-minute command.
#   SW_EPOCHS [300] upper bound on epochs   SW_BATCH [64]   SW_DEVICE [0]  SW_AMP [bf16]
#   SW_CACHE [ram]  SW_WORKERS [nproc]      SW_WORK [/tmp/streetwatch-train]  PYTHON [python3]
#   SW_INIT [yolov8n.yaml]  architecture yaml, or one of OUR checkpoints to fine-tune (e.g. models/streetwatch-v2.pt)
#   SW_PRETRAINED [""]  weights to initialise SW_INIT's yaml from, e.g. shared/pretrained/yolo11n-coco.pt with
#                       SW_INIT=yolo11n.yaml (matching tensors load; the count is printed)   SW_FREEZE [0] layers kept fixed
#   SW_TRAIN_SEED0 [0]  first training seed (a fine-tuning round renders seeds the previous round never saw)
#   SW_SET [""]  extra ultralytics arguments, space-separated KEY=VALUE (e.g. "val=False warmup_epochs=1")
# Afterwards, on any machine (a few minutes on 2 CPU cores), choose the card's per-class thresholds on renders
# that neither training nor the held-out evaluation uses:
#   python -m detector.training.dataset --out CAL --train 0 --val 400 --val-seed0 1100000 --test 0 \
#       --negatives 900 --negatives-seed0 2100000 --min-size 480 --max-size 960
#   streetwatch calibrate --data CAL/data.yaml --negatives CAL/negatives/images --model best.pt
# Tiny smoke test on a CPU box:
#   OUT=/tmp/o SW_TRAIN=40 SW_VAL=8 SW_TEST=8 SW_NEG=8 SW_IMGSZ=160 SW_EPOCHS=1 SW_HOURS= \
#   SW_BATCH=8 SW_DEVICE=cpu SW_AMP=false SW_CACHE=false PYTHON=.venv/bin/python bash detector/training/gpu_train.sh
set -euo pipefail

OUT=${OUT:?set OUT to the output folder}
PY=${PYTHON:-python3}
N_TRAIN=${SW_TRAIN:-5000}
N_VAL=${SW_VAL:-500}
N_TEST=${SW_TEST:-400}
N_NEG=${SW_NEG:-300}
MIN_SIZE=${SW_MIN_SIZE:-480}
MAX_SIZE=${SW_MAX_SIZE:-960}
IMGSZ=${SW_IMGSZ:-640}
HOURS=${SW_HOURS-0.085}
EPOCHS=${SW_EPOCHS:-300}
BATCH=${SW_BATCH:-64}
DEVICE=${SW_DEVICE:-0}
AMP=${SW_AMP:-bf16}
CACHE=${SW_CACHE:-ram}
WORKERS=${SW_WORKERS:-$(nproc)}
WORK=${SW_WORK:-/tmp/streetwatch-train}
INIT=${SW_INIT:-yolov8n.yaml}
TRAIN_SEED0=${SW_TRAIN_SEED0:-0}
INIT_ARGS=()
if [ -n "${SW_PRETRAINED:-}" ]; then INIT_ARGS=(--init "$SW_PRETRAINED"); fi
if [ -n "${SW_FREEZE:-}" ]; then INIT_ARGS+=(--freeze "$SW_FREEZE"); fi
SET_ARGS=()
for kv in ${SW_SET:-}; do SET_ARGS+=(--set "$kv"); done
export YOLO_OFFLINE=1 YOLO_VERBOSE=False PYTHONUNBUFFERED=1
# Keep ultralytics' settings and caches out of the home directory of a shared machine.
export YOLO_CONFIG_DIR="$WORK/yolo-config"

mkdir -p "$OUT" "$WORK" "$YOLO_CONFIG_DIR"
start=$(date +%s)
stamp() { echo "[gpu_train $(( $(date +%s) - start ))s] $*"; }

stamp "python: $($PY --version 2>&1)"
# The GPU box has torch, opencv, scikit-image, scipy, matplotlib, yaml and tqdm but no ultralytics and
# no network: install the wheels carried in .whl/ (ultralytics, ultralytics-thop, ultralytics-platform,
# optionally polars) without resolving dependencies.
if ! $PY -c "import ultralytics" 2>/dev/null; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        stamp "installing $(ls .whl | tr '\n' ' ')from .whl/ (--no-deps)"
        $PY -m pip install -q --no-index --no-deps .whl/*.whl
    else
        echo "ultralytics is missing and there is no .whl/ wheelhouse (carry it: it holds ultralytics)" >&2
        exit 2
    fi
fi
# ultralytics imports polars only to embed results.csv in checkpoints (inside a try); a stub keeps the
# 50 MB polars wheel optional.
if ! $PY -c "import polars" 2>/dev/null; then
    mkdir -p "$WORK/stubs/polars"
    cat > "$WORK/stubs/polars/__init__.py" <<'PYEOF'
"""Stand-in for polars on machines without it: every use fails (ultralytics catches it)."""


def read_csv(*args, **kwargs):
    raise RuntimeError("polars is not installed")


class DataFrame:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("polars is not installed")
PYEOF
    export PYTHONPATH="$WORK/stubs${PYTHONPATH:+:$PYTHONPATH}"
    stamp "polars missing: using a stub"
fi
for m in cv2 skimage yaml tqdm torch; do
    $PY -c "import $m" 2>/dev/null || { echo "python module $m is missing on this machine" >&2; exit 2; }
done
$PY - <<'EOF'
import cv2, skimage, torch, ultralytics
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print("ultralytics", ultralytics.__version__, "opencv", cv2.__version__, "scikit-image", skimage.__version__)
EOF

DATA="$WORK/data"
stamp "rendering $N_TRAIN/$N_VAL/$N_TEST (+$N_NEG negatives) images with $WORKERS workers"
rm -rf "$DATA"
$PY -m detector.training.dataset --out "$DATA" --train "$N_TRAIN" --train-seed0 "$TRAIN_SEED0" --val "$N_VAL" --test "$N_TEST" \
    --negatives "$N_NEG" --min-size "$MIN_SIZE" --max-size "$MAX_SIZE" --workers "$WORKERS" 2>&1 \
    | grep -v "img/s]$" || true
test -f "$DATA/data.yaml"
stamp "dataset ready: $(du -sh "$DATA" | cut -f1)"

# A few labelled renders to look at (boxes drawn), plus two raw ones.
$PY - "$DATA" "$OUT" <<'EOF'
import sys
from pathlib import Path
import cv2
import numpy as np
data, out = Path(sys.argv[1]), Path(sys.argv[2])
imgs = sorted((data / "images" / "train").glob("*.jpg"))[:6]
tiles = []
for p in imgs:
    im = cv2.imread(str(p)); h, w = im.shape[:2]
    for row in (data / "labels" / "train" / f"{p.stem}.txt").read_text().split("\n"):
        if row.strip():
            c, cx, cy, bw, bh = (float(v) for v in row.split())
            col = [(0, 0, 255), (255, 0, 255), (0, 255, 0)][int(c)]
            cv2.rectangle(im, (int((cx - bw / 2) * w), int((cy - bh / 2) * h)),
                          (int((cx + bw / 2) * w), int((cy + bh / 2) * h)), col, 2)
    tiles.append(cv2.resize(im, (640, 360)))
while len(tiles) % 3:
    tiles.append(np.zeros_like(tiles[0]))
grid = np.vstack([np.hstack(tiles[i:i + 3]) for i in range(0, len(tiles), 3)])
cv2.imwrite(str(out / "samples_labelled.jpg"), grid, [cv2.IMWRITE_JPEG_QUALITY, 85])
EOF

stamp "training from $INIT (imgsz $IMGSZ, batch $BATCH, time cap ${HOURS:-none} h, device $DEVICE, amp $AMP, ${SW_SET:-no extra args})"
# If the machine's time runs out mid-training, the newest epoch checkpoint is already in $OUT.
( while sleep 20; do
    f="$WORK/runs/streetwatch/weights/last.pt"
    [ -f "$f" ] && cp "$f" "$OUT/last.pt.tmp" && mv "$OUT/last.pt.tmp" "$OUT/last.pt"
  done ) &
SNAPSHOTS=$!
trap 'kill $SNAPSHOTS 2>/dev/null || true' EXIT
TIME_ARG=()
if [ -n "$HOURS" ]; then TIME_ARG=(--time "$HOURS"); fi
$PY -m detector.training.train train --data "$DATA/data.yaml" --epochs "$EPOCHS" --imgsz "$IMGSZ" \
    --model-yaml "$INIT" --batch "$BATCH" --device "$DEVICE" --project "$WORK/runs" --name streetwatch \
    "${TIME_ARG[@]}" "${INIT_ARGS[@]}" "${SET_ARGS[@]}" --workers "$WORKERS" --cache "$CACHE" --amp "$AMP" --copy-to "$OUT/best.pt"
kill $SNAPSHOTS 2>/dev/null || true
rm -f "$OUT/last.pt" "$OUT/last.pt.tmp"
cp "$WORK/runs/streetwatch/results.csv" "$OUT/results.csv" 2>/dev/null || true
cp "$WORK/runs/streetwatch/args.yaml" "$OUT/train_args.yaml" 2>/dev/null || true
stamp "trained: $(ls -la "$OUT/best.pt")"

stamp "evaluating on the held-out test renders"
EVAL_DEV=$DEVICE
$PY -m detector.training.train eval --data "$DATA/data.yaml" --model "$OUT/best.pt" --imgsz "$IMGSZ" \
    --split test --device "$EVAL_DEV" --json | tail -n 1 > "$WORK/test_metrics.json"
for conf in 0.25 0.35; do
    $PY -m detector.training.train fp --images "$DATA/negatives/images" --model "$OUT/best.pt" --imgsz "$IMGSZ" \
        --conf "$conf" --device "$EVAL_DEV" | tail -n 1 > "$WORK/fp-$conf.json"
done
$PY - "$WORK" "$OUT" "$N_TRAIN" "$N_VAL" "$N_TEST" "$N_NEG" "$IMGSZ" "$MIN_SIZE" "$MAX_SIZE" "$TRAIN_SEED0" "$INIT" <<'EOF'
import csv, hashlib, json, sys
from pathlib import Path
work, out = Path(sys.argv[1]), Path(sys.argv[2])
n_train, n_val, n_test, n_neg, imgsz, lo, hi, seed0 = (int(v) for v in sys.argv[3:11])
init = sys.argv[11]
test = json.loads((work / "test_metrics.json").read_text())
fp = {c: json.loads((work / f"fp-{c}.json").read_text())["false_positives_per_image"] for c in ("0.25", "0.35")}
epochs = 0
results = work / "runs" / "streetwatch" / "results.csv"
if results.is_file():
    with results.open() as f:
        epochs = sum(1 for _ in csv.DictReader(f))
metrics = {
    "test": test,
    "false_positives_per_image_by_conf": fp,
    "epochs_completed": epochs, "imgsz": imgsz, "init": init,
    "data": {"train_seeds": [seed0, seed0 + n_train], "val_seeds": [1_000_000, 1_000_000 + n_val],
             "test_seeds": [1_500_000, 1_500_000 + n_test], "negatives_seeds": [2_000_000, 2_000_000 + n_neg],
             "negatives_fraction": 0.1, "imgsz_range": [lo, hi]},
    "sha256": hashlib.sha256((out / "best.pt").read_bytes()).hexdigest(),
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2))
print(json.dumps(metrics, indent=2))
EOF
stamp "done; outputs in $OUT: $(ls "$OUT" | tr '\n' ' ')"
