"""Upstream env ids -> our task environment classes (backend side).

Each entry names the :class:`~vlaeval.suites.simpler.tasks.base.TaskEnv` subclass and the
constructor arguments that make it behave like that upstream env id. Env ids of the catalog
without an entry here are not implemented yet (:func:`make_task_env` says so).
"""

from __future__ import annotations

from typing import Any, Callable

from vlaeval.suites.simpler import assets as A
from vlaeval.suites.simpler.tasks.base import TaskEnv

Factory = Callable[..., TaskEnv]


def _grasp_single(model_id: str, **options: Any) -> Factory:
    def make(episode: dict[str, Any], pack: A.AssetPack, **kw: Any) -> TaskEnv:
        from vlaeval.suites.simpler.tasks.grasp_single import GraspSingleEnv

        return GraspSingleEnv(episode, pack, model_id=model_id, **options, **kw)

    return make


def _move_near(model_json: str, special_density: dict[str, float], **options: Any) -> Factory:
    def make(episode: dict[str, Any], pack: A.AssetPack, **kw: Any) -> TaskEnv:
        from vlaeval.suites.simpler.tasks.move_near import MoveNearEnv

        return MoveNearEnv(episode, pack, model_json=model_json, special_density=special_density, **options, **kw)

    return make


def _place_near(name: str) -> Factory:
    def make(episode: dict[str, Any], pack: A.AssetPack, **kw: Any) -> TaskEnv:
        from vlaeval.suites.simpler.tasks.move_near import PlaceNearEnv, place_near_configs

        return PlaceNearEnv(episode, pack, config=place_near_configs()[name], **kw)

    return make


def _put_on() -> Factory:
    def make(episode: dict[str, Any], pack: A.AssetPack, **kw: Any) -> TaskEnv:
        from vlaeval.suites.simpler.tasks.put_on import PutOnBridgeEnv

        return PutOnBridgeEnv(episode, pack, **kw)

    return make


def _drawer(drawer: str, kind: str, sticky_open: bool = False, fixed_instruction: bool = False) -> Factory:
    """Open/close/place-into drawer; ``fixed_instruction``: the env's own wording (Instruct),
    taken from the catalog (a list = the phases of a place-into-drawer task)."""

    def make(episode: dict[str, Any], pack: A.AssetPack, **kw: Any) -> TaskEnv:
        from vlaeval.suites.simpler.tasks import drawer as D

        cls = {"place": D.PlaceInDrawerEnv, "close_after_grab": D.AltCloseAfterGrabEnv,
               "put_into_open": D.AltPutIntoOpenDrawerEnv}.get(kind, D.DrawerEnv)
        text = (episode.get("instructions") or episode["instruction"]) if fixed_instruction else None
        return cls(episode, pack, drawer=drawer, closing=kind in ("close", "close_after_grab"), sticky_open=sticky_open,
                   instruction_text=text, **kw)

    return make


def _instruct_grasp(evaluated_orientation: str | None = None) -> Factory:
    """SimplerEnv-Instruct Free/Alt grasp envs: target, info JSON, distractors and forced scale as
    the catalog records them (transcribed from the env classes); the env's fixed instruction."""

    def make(episode: dict[str, Any], pack: A.AssetPack, **kw: Any) -> TaskEnv:
        from vlaeval.suites.simpler.tasks.grasp_single import GraspSingleEnv

        objects = episode["objects"]
        return GraspSingleEnv(
            episode, pack, model_id=objects["target"], model_json=objects.get("model_json", "info_pick_custom_v0.json"),
            distractors=objects.get("distractors"), model_scale=objects.get("model_scale"),
            evaluated_orientation=evaluated_orientation, instruction_text=episode["instruction"], **kw)

    return make


def _head_tilt(tilt: float) -> list[float]:
    """The Google robot's initial joints with another head tilt (VA camera variants)."""
    from vlaeval.suites.simpler.agents import robot_spec

    qpos = list(robot_spec("google_robot_static").init_qpos)
    qpos[-1] = tilt
    return qpos


DISTRACTORS = {
    "less": ["opened_pepsi_can", "apple", "sponge", "orange"],
    "more": ["opened_7up_can", "opened_sprite_can", "sponge", "orange", "opened_fanta_can",
             "bridge_spoon_generated_modified"],
}

ENVS: dict[str, Factory] = {
    "GraspSingleOpenedCokeCanInScene-v0": _grasp_single("opened_coke_can"),
    "GraspSingleOpenedCokeCanDistractorInScene-v0": _grasp_single("opened_coke_can", distractor_configs=DISTRACTORS),
    "GraspSingleOpenedCokeCanAltGoogleCameraInScene-v0": _grasp_single("opened_coke_can",
                                                                         robot_qpos=_head_tilt(0.9351361)),
    "GraspSingleOpenedCokeCanAltGoogleCamera2InScene-v0": _grasp_single("opened_coke_can",
                                                                          robot_qpos=_head_tilt(0.6651361)),
    "MoveNearGoogleInScene-v0": _move_near("info_pick_custom_v0.json", {"apple": 200, "orange": 200}),
    "MoveNearAltGoogleCameraInScene-v0": _move_near("info_pick_custom_v0.json", {"apple": 200, "orange": 200},
                                                    robot_qpos=_head_tilt(0.9351361)),
    "MoveNearAltGoogleCamera2InScene-v0": _move_near("info_pick_custom_v0.json", {"apple": 200, "orange": 200},
                                                     robot_qpos=_head_tilt(0.6651361)),
    "MoveNearGoogleBakedTexInScene-v0": _move_near("info_pick_custom_baked_tex_v0.json",
                                                   {"baked_apple": 200, "orange": 200}),
    **{f"{kind.title()}{d.title()}DrawerCustomInScene-v0": _drawer(d, kind)
       for kind in ("open", "close") for d in ("top", "middle", "bottom")},
    "PlaceIntoClosedTopDrawerCustomInScene-v0": _drawer("top", "place"),
    "PutSpoonOnTableClothInScene-v0": _put_on(),
    # SimplerEnv-Instruct
    **{f"FreeGraspSingle{name}InScene-v{v}": _instruct_grasp("upright" if name == "Pear" else None)
       for name, versions in {"Banana": 3, "Pear": 3, "Plum": 2, "Lemon": 3, "Pumpkin": 2, "Orange": 2,
                              "OpenedPepsiCan": 2, "Opened7upCan": 2, "SpriteCan": 3, "7upCan": 3}.items()
       for v in range(versions)},
    **{f"AltGrasp{name}DistractorInSceneEnv-v0": _instruct_grasp()
       for name in ("Sponge", "Orange", "Orange2", "Eggplant", "Mug")},
    "AltGraspMugDistractorInSceneEnv-v1": _instruct_grasp(),
    **{f"Free{kind.title()}{d.title()}DrawerCustomInScene-v{v}": _drawer(d, kind, fixed_instruction=True)
       for kind in ("open", "close") for d in ("top", "middle", "bottom") for v in (0, 1)},
    **{f"AltOpen{d.title()}DrawerCustomInSceneEnv-v0": _drawer(d, "open", sticky_open=True, fixed_instruction=True)
       for d in ("top", "middle", "bottom")},
    **{f"AltOpen{d.title()}DrawerCustomInSceneEnv2-v0": _drawer(d, "open", fixed_instruction=True)
       for d in ("top", "middle", "bottom")},
    **{f"FreePlaceIntoTopDrawerEnv-v{v}": _drawer("top", "place", fixed_instruction=True) for v in range(3)},
    "AltCloseDrawerInLongStep2HorizonInSceneEnv-v0": _drawer("top", "close_after_grab", fixed_instruction=True),
    "AltCloseMiddleDrawerInLongStep2HorizonInSceneEnv-v0": _drawer("middle", "close_after_grab",
                                                                   fixed_instruction=True),
    "AltCloseDrawerInLongStep1HorizonInSceneEnv-v0": _drawer("top", "put_into_open", fixed_instruction=True),
    **{f"{name}-v{v}": _place_near(name)
       for name, versions in {"FreePlaceLemonNearPearEnv": 3, "FreePlaceLNearVEnv": 1, "FreePlaceLNearAEnv": 1,
                              "FreePlaceBottleNearOrangeEnv": 1, "FreePlaceMugNearPlaystationEnv": 2,
                              "AltPlaceAppleNearOrangeCanEnv": 1, "AltPlaceBottleNearSpongeEnv": 1,
                              "AltPlaceBottleNearOrangeEnv": 1}.items()
       for v in range(versions)},
    "PutCarrotOnPlateInScene-v0": _put_on(),
    "StackGreenCubeOnYellowCubeBakedTexInScene-v0": _put_on(),
    "PutEggplantInBasketScene-v0": _put_on(),
    "AltPutSponeOnPlateInScene-v0": _put_on(),
    "AltPutOrangeOnPlateInScene-v0": _put_on(),
}


class NotImplementedTask(NotImplementedError):
    pass


def implemented(env_id: str) -> bool:
    return env_id in ENVS


def make_task_env(episode: dict[str, Any], pack: A.AssetPack, **kw: Any) -> TaskEnv:
    env_id = episode["env_id"]
    if env_id not in ENVS:
        raise NotImplementedTask(f"SimplerEnv env {env_id!r} is not implemented by the vlaeval backend yet")
    return ENVS[env_id](episode, pack, **kw)
