"""The episode loop: one backend, one policy handle, one :class:`EpisodeSpec`.

It runs wherever the simulator runs (a sim worker, or the driver for the in-process
executor) and is the same for every suite.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from vlaeval.harness.backend import SimBackend
from vlaeval.harness.chunking import ChunkExecutor
from vlaeval.harness.policy import (
    ActionError,
    PolicyFailure,
    PolicyHandle,
    PolicySpec,
    as_action_chunk,
    convert_gripper,
)
from vlaeval.harness.recording import Recorder, Recording, recorders_for
from vlaeval.harness.specs import EpisodeResult, EpisodeSpec

StepCallback = Callable[[int], None]


def run_episode(
    backend: SimBackend,
    policy: PolicyHandle,
    episode: EpisodeSpec,
    on_step: StepCallback | None = None,
    recorders: Sequence[Recorder] = (),
) -> EpisodeResult:
    """Run ``episode`` to success, step limit or error; never raises for policy faults.

    Simulator exceptions propagate (the supervisor decides whether to retry); bad
    actions and policy errors end the episode with status ``error``.

    Long-horizon tasks (SimplerEnv's drawer + apple) change their instruction mid-episode,
    when the policy signals terminate (``PolicySpec.terminate``) or when the task forces it:
    as upstream's evaluators do, the policy is then restarted on the new instruction
    (``end_episode`` with status ``subtask_changed``, then ``start_episode``) and queued
    actions are dropped. A terminate on the last subtask ends the episode; its outcome is
    the last step's.
    """
    started = time.monotonic()
    spec = policy.spec()
    executor = ChunkExecutor(episode.protocol)
    wants_privileged = "privileged" in spec.observation_keys  # scripted oracles read sim state
    obs = backend.reset(episode)
    reset_done = time.monotonic()
    policy_s = sim_s = 0.0
    metrics: dict[str, Any] = {}
    steps, success, error = 0, False, None
    # the backend's own wording at reset is the reference for noticing a subtask's new instruction
    instruction, subtask = obs.get("instruction") or episode.instruction, 0
    _observe(backend, obs, recorders)
    try:
        check_observation_keys(spec, obs)
        policy.start_episode(episode.instruction, episode.to_dict())
        while steps < episode.max_steps:
            if executor.needs_query():
                if wants_privileged:
                    obs = {**obs, "privileged": backend.privileged()}
                t0 = time.monotonic()
                raw = policy.act(obs)
                policy_s += time.monotonic() - t0
                chunk = as_action_chunk(raw, spec.output_dim)
                chunk[:, : spec.action_dim] = convert_gripper(
                    chunk[:, : spec.action_dim], spec, backend.gripper, backend.gripper_range)
                executor.push(chunk)
            action = executor.pop()
            terminate = spec.terminate and bool(action[-1] > 0.5)
            action = action[: spec.action_dim]
            t0 = time.monotonic()
            outcome = backend.step(action)
            sim_s += time.monotonic() - t0
            steps += 1
            obs = outcome.obs
            for recorder in recorders:
                recorder.act(action)
            _observe(backend, obs, recorders)
            if on_step is not None:
                on_step(steps)
            metrics = outcome.info.get("metrics", metrics)  # the suite's partial-success signals
            if outcome.success or outcome.done:
                success = outcome.success
                break
            if terminate:
                advanced = backend.advance_subtask()
                if advanced is None:  # terminate on the last subtask: the episode ends here
                    success = backend.success_if_ended(outcome)
                    break
                obs = {**obs, "instruction": advanced}
            new_instruction = obs.get("instruction")
            if isinstance(new_instruction, str) and new_instruction != instruction:
                instruction, subtask = new_instruction, subtask + 1
                policy.end_episode({"status": "subtask_changed", "success": False, "steps": steps})
                policy.start_episode(instruction, {**episode.to_dict(), "instruction": instruction,
                                                   "subtask": subtask})
                executor = ChunkExecutor(episode.protocol)
    except (ActionError, PolicyFailure) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finished = time.monotonic()
    result = EpisodeResult(
        status="error" if error else ("success" if success else "failure"),
        success=success,
        steps=steps,
        error=error,
        duration_s=round(finished - started, 3),
        metrics=dict(metrics),
        timing={
            "reset_s": round(reset_done - started, 4),
            "loop_s": round(finished - reset_done, 4),
            "policy_s": round(policy_s, 4),
            "sim_s": round(sim_s, 4),
        },
    )
    try:
        policy.end_episode({"status": result.status, "success": success, "steps": steps})
    except PolicyFailure:
        pass
    return result


def check_observation_keys(spec: PolicySpec, obs: dict[str, Any]) -> None:
    """Refuse to start when the policy needs observations this suite does not provide."""
    missing = [
        k for k in spec.observation_keys
        if k != "privileged" and not any(alt in obs for alt in k.split("|"))  # "a|b": either will do
    ]
    if missing:
        raise ActionError(
            f"policy needs observation keys {missing} that this suite does not provide (it has {sorted(obs)})"
        )


def _observe(backend: SimBackend, obs: dict[str, Any], recorders: Sequence[Recorder]) -> None:
    if recorders:
        frame = backend.frame(obs)
        for recorder in recorders:
            recorder.observe(obs, frame)


def run_recorded_episode(
    backend: SimBackend,
    policy: PolicyHandle,
    episode: EpisodeSpec,
    recording: Recording | None = None,
    on_step: StepCallback | None = None,
) -> EpisodeResult:
    """:func:`run_episode`, plus the video and demonstration ``recording`` asks for."""
    recorders = recorders_for(recording or Recording())
    result = run_episode(backend, policy, episode, on_step=on_step, recorders=list(recorders.values()))
    if "video" in recorders:
        result.video = recorders["video"].write()
    if "demo" in recorders:
        result.outputs["demo"] = recorders["demo"].write()
    return result
