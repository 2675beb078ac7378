"""SimplerEnv driver side, in the harness venv (no SAPIEN): catalog, suites, assets, rules, setup.

The catalog is checked against the published episode counts (shared/docs/simpler_tasks.md
§5.1) and against the reference expansion of ``shared/docs/reference/check_simpler_tasks.py``
when the shared folder is there. The success rules are pure functions of poses/flags and are
tested on constructed states.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vlaeval.harness.suite import Selection, SelectionError
from vlaeval.suites.simpler import SUITES, SimplerSuite, catalog

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SETUP_SIMPLER = REPO / "scripts" / "setup_simpler.sh"


# -- catalog -----------------------------------------------------------------------------------

def test_linspace_matches_numpy() -> None:
    cases = [(-0.35, -0.12, 5), (-0.02, 0.42, 5), (-0.08, -0.02, 3), (-0.1, -0.3, 4), (0.65, 0.85, 3), (1, 2, 1)]
    for a, b, n in cases:
        assert catalog.linspace(a, b, n) == [float(v) for v in np.linspace(a, b, n)]


def test_published_episode_counts() -> None:
    expected = {"simpler-google-vm": 864, "simpler-google-va": 1722, "simpler-widowx": 96, "simpler-instruct": 1138}
    for name, total in expected.items():
        suite = SimplerSuite(name)
        tasks = suite.tasks()
        assert sum(t.n_init_states for t in tasks) == total, name
        assert len({t.task_id for t in tasks}) == len(tasks), name
        assert [t.index for t in tasks] == list(range(len(tasks)))
    groups = collections.Counter(t.group for t in SimplerSuite("simpler-instruct").tasks())
    assert groups == {"free": 50, "alt": 30}
    per_group = collections.Counter()
    for t in SimplerSuite("simpler-google-vm").tasks():
        per_group[t.group] += t.n_init_states
    assert per_group == {"pick_coke_can": 300, "move_near": 240, "drawer": 216, "apple_in_drawer": 108}
    per_group = collections.Counter()
    for t in SimplerSuite("simpler-google-va").tasks():
        per_group[t.group] += t.n_init_states
    assert per_group == {"pick_coke_can": 675, "move_near": 480, "drawer": 378, "apple_in_drawer": 189}
    # the VA camera family is run upstream but never aggregated: not in the suite
    excluded = catalog.suite_tasks("simpler-va", include_excluded=True)
    assert sum(catalog.n_episodes(c) for c in excluded) == 1992


def test_every_entry_expands_to_its_episode_count() -> None:
    for entry in catalog.entries():
        tasks = catalog.entry_tasks(entry)
        assert sum(catalog.n_episodes(c) for c in tasks) == entry["episodes"], entry["id"]
        if entry["suite"] != "simpler-instruct":
            # one task per upstream aggregation sub-cell: URDF recolour x cell axes
            cells = [ax for ax in entry.get("sweep", []) if ax["axis"] in entry.get("cells", [])]
            n = len(entry["urdf_version"]) * int(np.prod([len(ax["values"]) for ax in cells] or [1]))
            assert len(tasks) == n, entry["id"]


def _reference_expansion():
    path = SHARED / "docs" / "reference" / "check_simpler_tasks.py"
    if not path.exists():
        pytest.skip(f"reference checker not found at {path}")
    spec = importlib.util.spec_from_file_location("check_simpler_tasks", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def _key(ep: dict) -> tuple:
    return (ep["env_id"], ep["scene"], ep["urdf_version"], ep["overlay"], json.dumps(ep["env_kwargs"], sort_keys=True),
            tuple(round(v, 9) for v in ep["robot_xy"]), round(ep["robot_yaw"], 9),
            tuple(round(v, 9) for v in ep.get("obj_xy", ())), ep.get("episode_id"))


def test_episodes_match_the_reference_expansion() -> None:
    ref = _reference_expansion()
    for entry in catalog.entries():
        theirs = collections.Counter(
            _key({**e, "robot_xy": e["robot_init_xy"], "robot_yaw": e["robot_init_yaw"],
                  "obj_xy": e.get("obj_init_xy", ()), "episode_id": e.get("obj_episode_id")})
            for e in ref.expand(entry)
        )
        ours = collections.Counter(
            _key({**e, "robot_xy": e["robot_init"]["xy"], "robot_yaw": e["robot_init"]["yaw"],
                  "obj_xy": e["obj_init"].get("xy", ()), "episode_id": e["obj_init"].get("episode_id")})
            for cfg in catalog.entry_tasks(entry) for e in catalog.iter_episodes(cfg)
        )
        assert ours == theirs, entry["id"]


def test_packaged_catalog_is_the_project_catalog() -> None:
    shared = SHARED / "docs" / "simpler_tasks.yaml"
    if not shared.exists():
        pytest.skip("shared/docs/simpler_tasks.yaml not present")
    ours = (REPO / "vlaeval" / "suites" / "simpler" / "tasks.yaml").read_bytes()
    assert hashlib.sha256(ours).hexdigest() == hashlib.sha256(shared.read_bytes()).hexdigest(), \
        "vlaeval/suites/simpler/tasks.yaml differs from shared/docs/simpler_tasks.yaml; copy it again"


def test_episode_decoding_examples() -> None:
    vm = SimplerSuite("simpler-google-vm").configs()
    coke = vm["vm/google/pick_coke_can/horizontal/urdf-base"]
    eps = list(catalog.iter_episodes(coke))
    assert len(eps) == 25
    # upstream loop order: object x outer, object y inner
    assert eps[0]["obj_init"] == {"xy": [-0.35, -0.02]} and eps[1]["obj_init"]["xy"][0] == -0.35
    assert eps[24]["obj_init"] == {"xy": [-0.12, 0.42]}
    assert eps[0]["env_kwargs"] == {"lr_switch": True} and eps[0]["robot_init"] == {"xy": [0.35, 0.2], "yaw": 0.0}
    assert eps[0]["overlay"] == "google_coke_can_real_eval_1.png" and eps[0]["urdf_version"] is None
    near = vm["vm/google/move_near/urdf-tabletop2"]
    assert near["urdf_version"] == "recolor_tabletop_visual_matching_2"
    e13 = catalog.episode_at(near, 13)
    assert e13["obj_init"] == {"episode_id": 13} and e13["instruction"] == "move 7up can near sponge"
    assert catalog.episode_at(near, 59)["instruction"] == "move redbull can near pepsi can"
    assert e13["robot_init"] == {"xy": [0.35, 0.21], "yaw": -0.09}
    drawer = vm["vm/google/open_drawer/middle/urdf-cabinet1"]
    d = [catalog.episode_at(drawer, i) for i in range(9)]
    assert [e["labels"]["overlay_pose"] for e in d] == ["a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2"]
    assert d[8]["overlay"] == "open_drawer_c2.png" and d[8]["robot_init"] == {"xy": [0.865, 0.222], "yaw": -0.025}
    assert d[0]["env_id"] == "OpenMiddleDrawerCustomInScene-v0" and d[0]["instruction"] == "open middle drawer"
    apple = vm["vm/google/place_apple_in_closed_top_drawer/urdf-base"]
    a = catalog.episode_at(apple, 10)  # pose b0, object grid (x index 0, y index 1)
    assert a["labels"]["overlay_pose"] == "b0" and a["obj_init"]["xy"] == [-0.08, float(np.linspace(-0.02, 0.08, 3)[1])]
    assert a["instructions"] == ["open top drawer", "place apple into top drawer"]
    with pytest.raises(IndexError):
        catalog.episode_at(apple, 27)


def test_task_ids_and_instructions() -> None:
    ids = [t.task_id for t in SimplerSuite("simpler-google-vm").tasks()]
    assert "vm/google/pick_coke_can/standing/urdf-cabinet1" in ids
    assert "vm/google/close_drawer/bottom/urdf-tabletop2" in ids
    bridge = SimplerSuite("simpler-widowx").tasks()
    assert [(t.task_id, t.instruction, t.max_steps) for t in bridge] == [
        ("bridge/put_spoon_on_towel", "put the spoon on the towel", 60),
        ("bridge/put_carrot_on_plate", "put carrot on plate", 60),
        ("bridge/stack_green_block_on_yellow_block", "stack the green block on the yellow block", 60),
        ("bridge/put_eggplant_in_basket", "put eggplant into yellow basket", 120),
    ]
    va = [t.task_id for t in SimplerSuite("simpler-google-va").tasks()]
    assert "va/google/pick_coke_can/distractor/vertical/more" in va
    assert not any("/camera" in t for t in va)


def test_suite_protocol_and_episodes() -> None:
    suite = SimplerSuite("simpler-google-vm")
    assert suite.backend_env == "simpler" and suite.backend_class.endswith("backend:SimplerBackend")
    assert suite.spec.protocol == {"max_steps": None, "outcome": "last_step", "shader": "raster", "overlay": True,
                                   "env_seed": "upstream"}
    with pytest.raises(SelectionError):
        suite.protocol({"nonsense": 1})
    eps = suite.episodes(Selection(tasks=["vm/google/move_near/urdf-base"], episodes_per_task=3, seeds=(0, 1)))
    assert [(e.episode_index, e.seed) for e in eps] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert eps[0].instruction == "move blue plastic bottle near pepsi can"
    assert eps[1].instruction == "move blue plastic bottle near orange"
    p = eps[0].protocol
    assert p["group"] == "move_near" and p["max_steps"] == 80 and p["task_config"]["id"] == eps[0].task_id
    json.dumps(eps[0].to_dict())  # JSON-safe (it crosses process boundaries)
    short = suite.episodes(Selection(tasks=["vm/google/pick_coke_can/*/urdf-base"], episodes_per_task=1,
                                     protocol_overrides={"max_steps": 5}))
    assert len(short) == 3 and all(e.max_steps == 5 for e in short)
    bridge = SimplerSuite("simpler-widowx").episodes(Selection(tasks=["bridge/put_eggplant_in_basket"]))
    assert len(bridge) == 24 and bridge[0].max_steps == 120


def test_driver_side_does_not_import_sapien() -> None:
    code = textwrap.dedent("""
        import sys
        from vlaeval.suites.simpler import SimplerSuite
        from vlaeval.harness.suite import Selection
        for name in ("simpler-google-vm", "simpler-google-va", "simpler-widowx", "simpler-instruct"):
            s = SimplerSuite(name); s.tasks(); s.episodes(Selection(episodes_per_task=1))
        import vlaeval.suites.simpler.tasks.grasp_single, vlaeval.suites.simpler.tasks.put_on
        bad = [m for m in ("sapien", "sapien.core", "mani_skill2", "cv2", "torch") if m in sys.modules]
        assert not bad, bad
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_cli_lists_tasks(tmp_path: Path) -> None:
    """`vlaeval list tasks --suite simpler-google-vm` (suites registered through a plugin module
    here, so the test does not depend on the pyproject entry points being installed)."""
    plugin = tmp_path / "simpler_suites_plugin.py"
    plugin.write_text(textwrap.dedent("""
        from vlaeval.harness import registry
        for name, fn in [("simpler-google-vm", "make_google_vm"), ("simpler-google-va", "make_google_va"),
                         ("simpler-widowx", "make_widowx"), ("simpler-instruct", "make_instruct")]:
            if name not in registry.suites.names():
                registry.suites.register(name, f"vlaeval.suites.simpler:{fn}")
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")]),
           "VLAEVAL_PLUGINS": "simpler_suites_plugin", "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "vlaeval.cli", "list", "tasks", "--suite", "simpler-google-vm"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "vm/google/pick_coke_can/horizontal/urdf-base" in out.stdout and "open top drawer" in out.stdout
    out = subprocess.run([sys.executable, "-m", "vlaeval.cli", "list", "suites"], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0 and all(name in out.stdout for name in SUITES), out.stdout[-2000:]


# -- success rules on constructed states ---------------------------------------------------------

def _grasp_state() -> SimpleNamespace:
    stats = collections.OrderedDict(n_lift_significant=0, consec_grasp=False, grasped=False)
    return SimpleNamespace(consecutive_grasp=0, lifted_obj=False, episode_stats=stats)


def test_grasp_single_rule() -> None:
    from vlaeval.suites.simpler.tasks.grasp_single import grasp_single_rule

    s = _grasp_state()
    info = grasp_single_rule(s, is_grasped=False, contact_free=False, height_gain=0.0)
    assert not info["success"] and not info["lifted_object"]
    # grasped but still on the table (contact): no lift
    info = grasp_single_rule(s, True, False, 0.005)
    assert not info["success"] and info["is_grasped"] and s.episode_stats["grasped"]
    # free of contact and 1.5 cm up: lifted (success), not yet significant
    info = grasp_single_rule(s, True, True, 0.015)
    assert info["success"] and info["lifted_object"] and not info["lifted_object_significantly"]
    # the latch survives a step where the object touches something again ...
    info = grasp_single_rule(s, True, False, 0.015)
    assert info["success"]
    # ... but losing the grasp clears it (here: dropped onto something 1.5 cm higher)
    info = grasp_single_rule(s, False, False, 0.015)
    assert not info["success"] and not info["lifted_object"] and s.consecutive_grasp == 0
    # upstream quirk kept: the latch itself does not require the grasp, only no contact and height
    assert grasp_single_rule(s, False, True, 0.015)["lifted_object"]
    # five significant lifts make success sticky (success_from_episode_stats)
    s = _grasp_state()
    for _ in range(5):
        info = grasp_single_rule(s, True, True, 0.05)
    assert s.episode_stats["n_lift_significant"] == 5 and info["consecutive_grasp"]
    info = grasp_single_rule(s, False, False, 0.0)  # dropped on the table at the end
    assert info["success"] and not info["lifted_object"] and s.episode_stats["consec_grasp"]
    # four are not enough
    s = _grasp_state()
    for _ in range(4):
        grasp_single_rule(s, True, True, 0.05)
    assert not grasp_single_rule(s, False, False, 0.0)["success"]


def _objects(xyz, settled, src=0, tgt=1, src_com=None, tgt_com=None, src_bbox=(0.06, 0.06, 0.12),
             tgt_bbox=(0.06, 0.06, 0.12)) -> dict:
    xyz = [np.asarray(v, dtype=float) for v in xyz]
    return {"xyz": xyz, "xyz_after_settle": [np.asarray(v, dtype=float) for v in settled], "source": src,
            "target": tgt, "source_com": np.asarray(src_com if src_com is not None else xyz[src], dtype=float),
            "target_com": np.asarray(tgt_com if tgt_com is not None else xyz[tgt], dtype=float),
            "source_bbox": np.asarray(src_bbox), "target_bbox": np.asarray(tgt_bbox)}


def test_move_near_rule() -> None:
    from vlaeval.suites.simpler.tasks.move_near import move_near_rule

    settled = [(-0.33, 0.04, 0.9), (-0.33, 0.34, 0.9), (-0.13, 0.19, 0.9)]
    assert not move_near_rule(_objects(settled, settled))["success"]  # nothing moved
    # source moved next to the target (0.1 m), others untouched
    st = _objects([(-0.33, 0.24, 0.9), settled[1], settled[2]], settled)
    info = move_near_rule(st)
    assert info["success"] and info["moved_correct_obj"] and info["near_tgt_obj"] and info["is_closest_to_tgt"]
    # ... but closer to the third object than to the target
    st = _objects([(-0.16, 0.19, 0.9), settled[1], settled[2]], settled)
    info = move_near_rule(st)
    assert info["moved_correct_obj"] and not info["is_closest_to_tgt"] and not info["success"]
    # knocking the third object over (3 cm lower) fails the keep-height check
    st = _objects([(-0.33, 0.24, 0.9), settled[1], (-0.13, 0.19, 0.87)], settled)
    assert not move_near_rule(st)["all_obj_keep_height"]
    # moving the target more than the source is the wrong object
    st = _objects([(-0.33, 0.08, 0.9), (-0.33, 0.20, 0.9), settled[2]], settled)
    info = move_near_rule(st)
    assert not info["moved_correct_obj"] and info["moved_wrong_obj"]
    # too far: distance beyond half diagonals + 10 cm
    st = _objects([(-0.33, -0.10, 0.9), settled[1], settled[2]], settled)
    assert not move_near_rule(st)["near_tgt_obj"]


def test_put_on_rule() -> None:
    from vlaeval.suites.simpler.tasks.put_on import put_on_rule

    carrot = (0.115, 0.032, 0.038)
    plate = (0.2, 0.2, 0.015)
    settled = [(-0.235, -0.075, 0.888), (-0.235, 0.075, 0.87)]
    on = _objects([(-0.236, 0.075, 0.894), settled[1]], settled, src_bbox=carrot, tgt_bbox=plate)
    assert put_on_rule(on, grasped=False, consecutive_grasp=0, only_target_contact=True)["success"]
    # strict: touching something else (the table) is not "on"
    assert not put_on_rule(on, False, 0, only_target_contact=False)["success"]
    assert put_on_rule(on, False, 0, only_target_contact=False, strict=False)["success"]
    # beside the plate (xy beyond the half diagonal + 3 mm)
    off = _objects([(-0.235, -0.075 + 0.30, 0.888), settled[1]], settled, src_bbox=carrot, tgt_bbox=plate)
    assert not put_on_rule(off, False, 0, True)["src_on_target"]
    # held 5 cm above the plate: z gap beyond 2 cm (but within the basket's 6 cm)
    high = _objects([(-0.235, 0.075, 0.87 + 0.0075 + 0.019 + 0.05), settled[1]], settled, src_bbox=carrot,
                    tgt_bbox=plate)
    assert not put_on_rule(high, True, 1, True)["success"]
    assert put_on_rule(high, True, 1, True, strict=False, z_offset=0.06)["success"]
    info = put_on_rule(on, True, 5, True)
    assert info["consecutive_grasp"] and info["is_src_obj_grasped"] and info["moved_correct_obj"]


# -- assets ----------------------------------------------------------------------------------------

def _fake_pack(root: Path) -> None:
    files = {"data/custom/models/thing/collision.obj": b"o thing\n", "data/custom/info_x.json": b"{}",
             "descriptions/bot/bot.urdf": b"<robot/>"}
    rows = ["path\tbytes\tsha256\tsource_repo\tsource_commit\tsource_path"]
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        rows.append(f"{rel}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}\tx\ty\t{rel}")
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    (root / "MISSING.tsv").write_text("path\treferenced_by\n"
                                      "data/hab2_bench_assets/stages/stage.glb\tenvs\n")


def test_asset_pack_verifies_mirrors_and_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vlaeval.suites.simpler import assets

    root = tmp_path / "pack"
    _fake_pack(root)
    monkeypatch.setenv("VLAEVAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VLAEVAL_ASSETS", str(root))
    assert assets.find_root() == root.resolve()
    pack = assets.AssetPack(root)
    view = pack.view("data/custom/models/thing")
    link = view / "collision.obj"
    assert link.is_symlink() and link.read_bytes() == b"o thing\n"
    assert str(pack.mirror).startswith(str(tmp_path / "home"))  # caches never go into the pack
    verified = json.loads((pack.mirror / "verified.json").read_text())
    assert "data/custom/models/thing/collision.obj" in verified
    assert pack.require("data/custom/info_x.json").read_text() == "{}"
    with pytest.raises(assets.AssetMissing, match=r"stage 'data/hab2_bench_assets/stages/stage.glb' .*MISSING.tsv"):
        pack.require("data/hab2_bench_assets/stages/stage.glb", "stage")
    with pytest.raises(assets.AssetMissing, match="not in MANIFEST.tsv"):
        pack.require("data/custom/nothing.json")
    # a corrupted file fails its check on first use by a fresh pack object
    (root / "descriptions/bot/bot.urdf").write_bytes(b"<robot name='x'/>")
    with pytest.raises(assets.AssetError, match="bytes|sha256"):
        assets.AssetPack(root).view("descriptions/bot")
    monkeypatch.setenv("VLAEVAL_ASSETS", str(tmp_path / "nowhere"))
    monkeypatch.setattr(assets, "candidate_roots", lambda option=None: [tmp_path / "nowhere"])
    with pytest.raises(assets.AssetError, match="VLAEVAL_ASSETS"):
        assets.find_root()


def test_real_pack_manifest_covers_catalog_needs() -> None:
    from vlaeval.suites.simpler import assets

    try:
        pack = assets.open_pack()
    except assets.AssetError as exc:
        pytest.skip(str(exc))
    for name in ("google_coke_can_real_eval_1.png", "google_move_near_real_eval_1.png", "bridge_real_eval_1.png",
                 "bridge_sink.png", *[f"open_drawer_{p}{i}.png" for p in "abc" for i in range(3)]):
        assert pack.has(assets.overlay_path(name)), name
    assert not pack.has(assets.stage_path("google_pick_coke_can_1_v4"))
    assert assets.stage_path("google_pick_coke_can_1_v4") in pack.missing
    for entry in catalog.entries():
        if isinstance(entry["assets"], dict):
            for rel in entry["assets"]["missing"]:
                assert not pack.has(rel) and rel in pack.missing, (entry["id"], rel)


# -- setup script ---------------------------------------------------------------------------------

def _bash(script: str, apt_etc: Path) -> subprocess.CompletedProcess:
    prelude = (f'say() {{ echo "$*"; }}; PY={sys.executable}; REPO={REPO}; SIMPLER_APT_ETC={apt_etc}; '
               f'. {SETUP_SIMPLER}; _simpler_sudo() {{ "$@"; }}; ')
    return subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, timeout=60)


def test_setup_simpler_syntax_and_requirements() -> None:
    subprocess.run(["bash", "-n", str(SETUP_SIMPLER)], check=True)
    out = _bash("simpler_reqs", Path("/nonexistent"))
    assert out.returncode == 0, out.stderr
    reqs = out.stdout.split()
    for req in ("sapien==2.2.2", "mani-skill2==0.5.3", "numpy<1.24", "gymnasium<1.0", "setuptools<70", "msgpack",
                "websockets>=12,<14", "imageio", "imageio-ffmpeg", "ruckig"):
        assert req in reqs, (req, reqs)
    h1 = _bash("simpler_layer_hash", Path("/nonexistent")).stdout.strip()
    assert len(h1) == 64 and h1 == _bash("simpler_layer_hash", Path("/nonexistent")).stdout.strip()


def test_setup_simpler_derives_backports_from_the_machine_sources(tmp_path: Path) -> None:
    deb822 = tmp_path / "deb822"
    (deb822 / "sources.list.d").mkdir(parents=True)
    (deb822 / "sources.list.d" / "debian.sources").write_text(textwrap.dedent("""\
        Types: deb
        # a comment
        URIs: http://mirror.example.org/debian
        Suites: bookworm bookworm-updates
        Components: main
        Signed-By: /usr/share/keyrings/custom.gpg

        Types: deb
        URIs: http://security.example.org/debian-security
        Suites: bookworm-security
        Components: main
        """))
    out = _bash("_simpler_debian_mirror bookworm && _simpler_has_backports_source bookworm-backports || echo none;"
                " _simpler_add_backports bookworm; _simpler_has_backports_source bookworm-backports && echo present;"
                " _simpler_add_backports bookworm", deb822)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "http://mirror.example.org/debian /usr/share/keyrings/custom.gpg"
    assert "none" in out.stdout and "present" in out.stdout and "already configured" in out.stdout
    written = (deb822 / "sources.list.d" / "vlaeval-backports.sources").read_text()
    assert "URIs: http://mirror.example.org/debian\n" in written and "Suites: bookworm-backports\n" in written
    assert "Signed-By: /usr/share/keyrings/custom.gpg" in written

    oneline = tmp_path / "oneline"
    (oneline / "sources.list.d").mkdir(parents=True)
    (oneline / "sources.list").write_text("# deb http://old.example/debian bookworm main\n"
                                          "deb [arch=amd64] http://one.example/debian bookworm main contrib\n"
                                          "deb http://one.example/debian-security bookworm-security main\n")
    out = _bash("_simpler_debian_mirror bookworm", oneline)
    assert out.returncode == 0 and out.stdout.strip() == "http://one.example/debian", out.stdout + out.stderr
    empty = tmp_path / "empty"
    (empty / "sources.list.d").mkdir(parents=True)
    out = _bash("_simpler_add_backports bookworm", empty)
    assert out.returncode != 0 and "no Debian source" in out.stderr
