"""Model cards side by side, same run, on real images that hold no stall, laundry or structure: ultralytics'
bundled bus.jpg and zidane.jpg, and evenly spaced frames of the real corridor CCTV clip (``../shared/realdata``).
For each card: boxes that reach its track thresholds (what could raise an alert) and boxes at ``min_score``
(what only follows a track).

    python -m bench.real_images [--cards models/streetwatch-v2.yaml,models/streetwatch-v4.yaml] [--frames 30]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

os.environ.setdefault("YOLO_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
CORRIDOR = REPO.parent / "shared" / "realdata" / "abandoned-objects" / "corridor_backpack.mp4"
CARDS = "models/streetwatch-v2.yaml,models/streetwatch-v4.yaml"


def real_images(frames: int) -> dict[str, list[npt.NDArray[np.uint8]]]:
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    images: dict[str, list[npt.NDArray[np.uint8]]] = {
        name: [np.asarray(cv2.imread(str(assets / name)), dtype=np.uint8)] for name in ("bus.jpg", "zidane.jpg")
    }
    if CORRIDOR.is_file():
        capture = cv2.VideoCapture(str(CORRIDOR))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        corridor: list[npt.NDArray[np.uint8]] = []
        for index in np.linspace(0, count - 1, frames).astype(int):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = capture.read()
            if ok:
                corridor.append(np.asarray(frame, dtype=np.uint8))
        images[f"corridor ({len(corridor)} frames)"] = corridor
    return images


def main() -> None:
    from detector.model.wrapper import Detector, read_card

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", default=CARDS)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    images = real_images(args.frames)
    for card in args.cards.split(","):
        detector = Detector.from_card(read_card(REPO / card))
        parts = []
        for name, group in images.items():
            found = [detector.predict([image])[0] for image in group]
            confident = sum(len(detector.confident(d)) for d in found)
            best = max((float(d.confidence.max()) for d in found if len(d)), default=0.0)
            parts.append(f"{name}: {confident} at threshold, {sum(map(len, found))} at min_score (best {best:.2f})")
        print(f"{detector.name} ({detector.backend}): " + "; ".join(parts))


if __name__ == "__main__":
    main()
