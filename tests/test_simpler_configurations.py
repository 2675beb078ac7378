"""Every SimplerEnv configuration of the catalog builds, resets and renders on the real backend (CPU).

One simpler-venv process per catalog suite resets the first episode of every configuration (the
excluded ones too) and renders the policy camera; a separate check compares visual-matching frames
with their real-image overlays. About 1-2 s per configuration after the first frame's shader compile.
"""

from __future__ import annotations

import pytest

from test_simpler_backend import run_in_simpler, simpler_python  # noqa: F401  (the fixture)
from vlaeval.suites.simpler import catalog

pytestmark = [pytest.mark.simpler, pytest.mark.slow]

CAMERA_SHAPE = {"google": [512, 640, 3], "widowx": [480, 640, 3]}  # overhead / 3rd-view camera, by robot family

RESET_ALL = """
import types
cfgs = catalog.suite_tasks({suite!r}, include_excluded=True)
b = SimplerBackend({{}})
rows = []
for cfg in cfgs:
    spec = types.SimpleNamespace(task_id=cfg["id"], episode_index=0, max_steps=None,
                                 protocol={{"task_config": cfg, "shader": "raster", "overlay": True}})
    obs = b.reset(spec)
    img = obs["image"]
    rows.append({{"id": cfg["id"], "shape": list(img.shape), "dtype": str(img.dtype), "std": float(img.std()),
                 "instruction": obs["instruction"], "objects": sorted(b.privileged()["objects"]),
                 "cabinet_links": len(b.privileged().get("cabinet_links") or []),
                 "reset_s": b._timing["reset_s"]}})
b.close()
emit(rows)
"""


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("suite", ["simpler-vm", "simpler-bridge", "simpler-va", "simpler-instruct"])
def test_every_configuration_builds_resets_and_renders(simpler_python: str, suite: str) -> None:  # noqa: F811
    rows = run_in_simpler(simpler_python, "from vlaeval.suites.simpler import catalog\n" + RESET_ALL.format(suite=suite),
                          timeout=1400)
    cfgs = {c["id"]: c for c in catalog.suite_tasks(suite, include_excluded=True)}
    assert [r["id"] for r in rows] == list(cfgs)
    for row in rows:
        cfg = cfgs[row["id"]]
        assert row["shape"] == CAMERA_SHAPE[cfg["robot"].split("_")[0]] and row["dtype"] == "uint8", row
        assert row["std"] > 5, f"{row['id']}: a flat frame (std {row['std']:.1f})"
        assert row["instruction"] == catalog.episode_at(cfg, 0)["instruction"], row
        named = {cfg["objects"][k] for k in ("target", "source") if k in cfg["objects"]}
        assert named <= set(row["objects"]), f"{row['id']}: {sorted(named - set(row['objects']))} not in the scene"
        if "cabinet" in cfg["objects"]:  # an articulation: its drawers are links, not objects
            assert row["cabinet_links"] > 0, f"{row['id']}: no cabinet drawers in the scene"
    slowest = max(rows, key=lambda r: r["reset_s"])
    print(f"{suite}: {len(rows)} configurations; slowest reset {slowest['reset_s']} s ({slowest['id']})")


OVERLAY = """
import types
out = {}
for task in ("vm/google/pick_coke_can/horizontal/urdf-base", "bridge/put_carrot_on_plate"):
    cfg = catalog.find_task(task)
    b = SimplerBackend({})
    res = {}
    for overlay in (True, False):
        spec = types.SimpleNamespace(task_id=task, episode_index=0, max_steps=None,
                                     protocol={"task_config": cfg, "shader": "raster", "overlay": overlay})
        img = b.reset(spec)["image"].astype(np.float64)
        if overlay:
            real = np.clip(b.env.overlay.image * 255, 0, 255).round()
        diff = np.abs(img - real)
        res["on" if overlay else "off"] = {"mad": float(diff.mean()), "equal": float((diff.max(axis=-1) <= 1).mean())}
    b.close()
    out[task] = res
emit(out)
"""


@pytest.mark.timeout(600)
def test_visual_matching_frames_show_the_real_background(simpler_python: str) -> None:  # noqa: F811
    """The rendered VM frame against its overlay image (0-255 scale).

    With the overlay the robot and the objects cover a small part of the frame (about 5 % for the
    Google coke can scene, more for the WidowX arm); every other pixel is the real photograph. So:
    at least 75 % of the pixels equal the photograph (within 1) and the mean absolute difference
    stays below 25 -- a quarter of the frame differing by 100 on average would reach it. Without
    the overlay the simulated background differs everywhere (mean ~100 measured): the same
    comparison must fail there, which shows it discriminates.
    """
    out = run_in_simpler(simpler_python, "from vlaeval.suites.simpler import catalog\n" + OVERLAY, timeout=500)
    for task, res in out.items():
        assert res["on"]["equal"] >= 0.75 and res["on"]["mad"] < 25, (task, res)
        assert res["off"]["equal"] < 0.2 and res["off"]["mad"] > 3 * res["on"]["mad"], (task, res)
        print(task, res)
