"""Cross-connection batching: same actions as unbatched serving, fewer forward calls."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import numpy as np
import pytest

from vlaeval.harness.policy import Policy, PolicyFailure, PolicySpec
from vlaeval.harness.protocol import PolicyServer, RemotePolicyHandle

pytestmark = pytest.mark.timeout(30)

CLIENTS, STEPS = 8, 12


class VectorPolicy(Policy):
    """Elementwise maths over the whole batch in one numpy call (bit-identical to single rows).

    Each forward call costs a fixed 5 ms, so concurrent requests pile up and batch.
    The episode offset catches any mix-up of states between batch rows.
    """

    name = "vector"

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, chunk_size=1, name=self.name)

    def start_episode(self, instruction: str, info: dict[str, Any]) -> dict[str, float]:
        return {"offset": float(info["client"]), "nan": instruction == "nan"}

    def act(self, state: dict[str, Any], obs: dict[str, Any]) -> np.ndarray:
        return self.act_batch([state], [obs])[0]

    def act_batch(self, states: list[dict[str, Any]], observations: list[dict[str, Any]]) -> list[np.ndarray]:
        time.sleep(0.005)
        self.batch_sizes.append(len(states))
        x = np.stack([o["state"] for o in observations]).astype(np.float64)  # (B, 8)
        offsets = np.array([s["offset"] for s in states])[:, None]
        images = np.stack([o["agentview"] for o in observations]).reshape(len(states), -1)
        actions = np.tanh(x[:, :7] * 0.5 + x[:, 1:] ** 2) + offsets + images[:, :7] / 255.0
        actions[[s["nan"] for s in states], 0] = np.nan
        return list(actions)


class SequentialPolicy(VectorPolicy):
    """Same maths without act_batch: the server must call act once per request."""

    act_batch = Policy.act_batch  # type: ignore[assignment]

    def act(self, state: dict[str, Any], obs: dict[str, Any]) -> np.ndarray:
        return VectorPolicy.act_batch(self, [state], [obs])[0]


class ShortBatchPolicy(VectorPolicy):
    """Drops the last action of every real batch (a policy bug the server must contain)."""

    def act_batch(self, states: list[dict[str, Any]], observations: list[dict[str, Any]]) -> list[np.ndarray]:
        actions = super().act_batch(states, observations)
        return actions[:-1] if len(actions) > 1 else actions


def observation(client: int, step: int) -> dict[str, Any]:
    rng = np.random.default_rng(1000 * client + step)
    return {
        "agentview": rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8),
        "state": rng.standard_normal(8).astype(np.float32),
        "instruction": f"task {client}",
    }


def run_clients(url: str, instructions: list[str]) -> dict[int, list[np.ndarray] | str]:
    """Run one episode per client concurrently; a failed client reports its error text."""
    results: dict[int, list[np.ndarray] | str] = {}
    barrier = threading.Barrier(len(instructions))

    def client(i: int) -> None:
        handle = RemotePolicyHandle(url)
        handle.start_episode(instructions[i], {"client": i})
        barrier.wait()
        try:
            results[i] = [handle.act(observation(i, step)) for step in range(STEPS)]
        except PolicyFailure as exc:
            results[i] = str(exc)
        handle.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(instructions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return results


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[PolicyServer] = []

    def start(policy: Policy, **options: Any) -> PolicyServer:
        server = PolicyServer(policy, **options)
        server.start_in_thread()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_batched_actions_equal_unbatched_with_fewer_forward_calls(serve) -> None:
    instructions = [f"task {i}" for i in range(CLIENTS)]
    plain = serve(VectorPolicy(), max_batch=1)
    batched_policy = VectorPolicy()
    batched = serve(batched_policy, max_batch=8, max_wait_ms=20)
    want, got = run_clients(plain.url, instructions), run_clients(batched.url, instructions)
    assert sorted(want) == sorted(got) == list(range(CLIENTS))
    for i in range(CLIENTS):
        assert len(got[i]) == STEPS
        for a, b in zip(want[i], got[i]):
            assert a.tobytes() == b.tobytes()
    assert plain.stats["forward_calls"] == CLIENTS * STEPS
    assert batched.stats["forward_calls"] < plain.stats["forward_calls"]
    assert max(batched_policy.batch_sizes) > 1 and max(batched_policy.batch_sizes) <= 8
    assert sum(batched_policy.batch_sizes) == CLIENTS * STEPS


def test_bad_action_in_a_batch_fails_only_its_request(serve) -> None:
    instructions = ["nan" if i == 3 else f"task {i}" for i in range(CLIENTS)]
    server = serve(VectorPolicy(), max_batch=8, max_wait_ms=20)
    results = run_clients(server.url, instructions)
    assert "NaN" in results[3]
    assert all(len(results[i]) == STEPS for i in range(CLIENTS) if i != 3)
    assert server.stats["forward_calls"] < CLIENTS * STEPS


def test_policy_without_act_batch_is_called_per_request(serve) -> None:
    policy = SequentialPolicy()
    assert not policy.supports_batching
    server = serve(policy, max_batch=8, max_wait_ms=20)
    results = run_clients(server.url, [f"task {i}" for i in range(CLIENTS)])
    assert all(len(r) == STEPS for r in results.values())
    assert server.stats["forward_calls"] == CLIENTS * STEPS
    assert server.stats["batches"] < CLIENTS * STEPS  # requests were still grouped


def test_wrong_length_act_batch_fails_that_batch_only(serve) -> None:
    server = serve(ShortBatchPolicy(), max_batch=8, max_wait_ms=20)
    results = run_clients(server.url, [f"task {i}" for i in range(CLIENTS)])
    failures = [r for r in results.values() if isinstance(r, str)]
    assert failures and all("(policy_error): act_batch returned" in f for f in failures)
    handle = RemotePolicyHandle(server.url)  # a lone client is served by act: still works
    handle.start_episode("task", {"client": 0})
    assert handle.act(observation(0, 0)).shape == (1, 7)
    handle.close()
