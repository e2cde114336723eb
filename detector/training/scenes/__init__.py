"""Procedural CCTV street scenes for training streetwatch's default model (DESIGN §4).

``render_scene(seed, width, height)`` draws one elevated camera view of a street: a ground plane in
perspective (road, kerbs, pavements, lots), rows of building facades with windows, balconies and shop
fronts, roofs, trees and street furniture, and then places the three object classes where they occur
in real streets (structured domain randomisation, Prakash et al. 2019):

* ``stall`` (0): awning and umbrella stalls, vendor and tricycle carts, ground-mat stalls on pavements
  and kerbs, racks, crates and produce displays at shop doors;
* ``laundry`` (1): clothes and sheets on lines between poles, trees and buildings, on poles pushed out
  of windows, over balcony rails and on drying racks;
* ``structure`` (2): steel-roof sheds and shacks against walls, in lots and on roofs, lean-to canopies
  on posts, hoardings and scaffold frames.

Around that structure everything real cameras vary is randomised: viewpoint, lens, light (day, dusk,
night with street lights, rain, haze), shadows, colour balance, textures (real photographs from
scikit-image plus fractal noise), clutter and occlusion by look-alike distractors that are never
labelled (people with umbrellas and bags, cars, vans and box trucks, scooters, bicycles, benches, bus
shelters, signs, banners, pennants, cones, flush shop awnings, clothes behind shop windows, curtains),
blur, sensor noise, compression and on-screen timestamps.

Labels come from an object-id buffer drawn alongside the image, so boxes are tight around the visible
pixels; an object less than ``MIN_VISIBLE`` visible (occluded or cut by the frame), smaller than
``MIN_SIDE_640`` pixels (at a 640-pixel long side), or seen as a sliver (aspect over ``MAX_ASPECT``,
or filling under ``MIN_FILL`` of its box) is drawn but left unlabelled.
"""

from __future__ import annotations

import numpy as np

from detector.training.geometry import Image, Obj
from detector.training.scenes.effects import apply_effects
from detector.training.scenes.ground import Ground, make_materials
from detector.training.scenes.layout import make_layout
from detector.training.scenes.light import make_look
from detector.training.scenes.placing import (
    Placer,
    place_distractors,
    place_distractors_facades,
    place_laundry,
    place_stall,
    place_structure,
    visible_blocks,
)
from detector.training.scenes.scene import Label, Scene
from detector.training.scenes.viewpoint import make_camera

CLASS_NAMES = ("stall", "laundry", "structure")


def build_scene(
    seed: int, width: int, height: int, *, negatives_only: bool = False, counts: tuple[int, int, int] | None = None
) -> Scene:
    """Lay out a street, camera, light and objects for ``seed`` (background not yet drawn)."""
    rng = np.random.default_rng(seed)
    lay = make_layout(rng)
    look = make_look(rng)
    mat = make_materials(rng, look)
    cam = make_camera(rng, lay, width, height)
    scene = Scene(seed, width, height, lay, look, mat, cam, Ground(rng, lay, mat, look))
    scene.lit_frac = float(rng.uniform(0.1, 0.6))
    pl = Placer(scene, rng)
    # Street lights are known before the background is lit.
    pre = place_distractors(scene, pl, rng, [], negatives_only)
    scene.lamps = []
    if look.night:
        col = (0.55, 0.8, 1.0) if rng.random() < 0.5 else (1.0, 1.0, 0.95)
        for o in pre:
            if o.kind == "lamp":
                scene.lamps.append((np.asarray(o.meta["light"], np.float64), col, float(rng.uniform(0.6, 1.4))))
    scene.render_background()  # fills facade metadata (windows, balconies, shops)
    blocks = visible_blocks(scene, pl)
    objs = pre + place_distractors_facades(scene, pl, rng, blocks, negatives_only)
    if not negatives_only:
        if counts is None:
            empty = rng.random() < 0.06
            counts = (0, 0, 0) if empty else (int(rng.integers(0, 6)), int(rng.integers(1, 7)), int(rng.integers(0, 4)))
        for cls, n in enumerate(counts):
            for _ in range(n):
                for _attempt in range(6):
                    found: Obj | None
                    if cls == 0:
                        found = place_stall(scene, pl, rng)
                    elif cls == 1:
                        found = place_laundry(scene, pl, rng, blocks)
                    else:
                        found = place_structure(scene, pl, rng, blocks)
                    if found is not None:
                        objs.append(found)
                        vendor = found.meta.get("vendor")
                        if isinstance(vendor, Obj):
                            objs.append(vendor)
                        break
    scene.objects = objs
    return scene


def render_scene(seed: int, width: int, height: int, *, negatives_only: bool = False) -> tuple[Image, list[Label]]:
    """Render one training image for ``seed``.

    Returns the BGR uint8 image and YOLO labels ``(class_id, cx, cy, w, h)`` normalised to 0..1
    (0 stall, 1 laundry, 2 structure). Deterministic by seed. With ``negatives_only`` the scene holds
    only look-alike distractors and the label list is empty.
    """
    scene = build_scene(seed, width, height, negatives_only=negatives_only)
    img, labels, _ = scene.render_objects(scene.objects)
    rng = np.random.default_rng(seed + 104729)
    img = apply_effects(img, rng, scene.look)
    if negatives_only:
        labels = []
    return img, labels
