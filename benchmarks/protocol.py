"""Benchmark the policy protocol on loopback (run with the harness venv).

(a) Round-trip latency of one OBSERVATION (a 224x224x3 or a 640x512x3 uint8 frame + 8-d state)
    through PolicyServer/RemotePolicyHandle vs. a local in-process call, with the frame on the
    wire and through shared memory (the same-host fast path, :mod:`vlaeval.harness.protocol.shm`).
(b) Throughput of concurrent client processes against a batched vs. an unbatched server, with a
    policy whose forward pass has a fixed cost plus a small per-item cost, as a ratio.

    python benchmarks/protocol.py --iters 200
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import statistics
import time
from typing import Any, Callable

import numpy as np

from vlaeval.harness.policy import LocalPolicyHandle, Policy, PolicyHandle, PolicySpec
from vlaeval.harness.protocol import PolicyServer, RemotePolicyHandle


class FixedCostPolicy(Policy):
    """A vectorised policy whose forward costs ``fixed_s`` plus ``per_item_s`` per observation."""

    name = "fixed-cost"

    def __init__(self, fixed_s: float = 0.0, per_item_s: float = 0.0):
        self.fixed_s, self.per_item_s = fixed_s, per_item_s

    def spec(self) -> PolicySpec:
        return PolicySpec(action_dim=7, chunk_size=1, name=self.name)

    def act(self, state: Any, obs: dict[str, Any]) -> np.ndarray:
        return self.act_batch([state], [obs])[0]

    def act_batch(self, states: list[Any], observations: list[dict[str, Any]]) -> list[np.ndarray]:
        cost = self.fixed_s + self.per_item_s * len(observations)
        if cost:
            time.sleep(cost)
        x = np.stack([o["state"] for o in observations]).astype(np.float64)
        return list(np.tanh(x[:, :7] + x[:, 1:]))


def observation(seed: int, frame: tuple[int, ...] = (224, 224, 3)) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "agentview": rng.integers(0, 256, size=frame, dtype=np.uint8),
        "state": rng.standard_normal(8).astype(np.float32),
        "instruction": "put the bowl on the plate",
    }


def time_calls(fn: Callable[[], Any], iters: int, warmup: int = 10) -> list[float]:
    """Wall-clock seconds of ``iters`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def episode_latency(handle: PolicyHandle, iters: int, frame: tuple[int, ...]) -> list[float]:
    obs = observation(0, frame)
    handle.start_episode(obs["instruction"], {})
    try:
        return time_calls(lambda: handle.act(obs), iters)
    finally:
        handle.end_episode({"status": "success"})
        handle.close()


def bench_latency(iters: int) -> None:
    server = PolicyServer(FixedCostPolicy())
    server.start_in_thread()
    print(f"(a) latency of one OBSERVATION (uint8 frame + 8-d state), median of {iters} calls")
    try:
        for frame in ((224, 224, 3), (512, 640, 3)):
            handles: dict[str, Callable[[], PolicyHandle]] = {
                "local in-process": lambda: LocalPolicyHandle(FixedCostPolicy()),
                "loopback, wire": lambda: RemotePolicyHandle(server.url, shared_memory=False),
                "loopback, shm": lambda: RemotePolicyHandle(server.url),
            }
            median = {label: statistics.median(episode_latency(make(), iters, frame)) for label, make in handles.items()}
            local, wire, shm = median.values()
            print(f"    frame {frame[1]}x{frame[0]}x{frame[2]}: " + "   ".join(
                f"{label} {seconds * 1e3:.3f} ms" for label, seconds in median.items()))
            print(f"        remote/local: wire {wire / local:.1f}x, shm {shm / local:.1f}x;  wire/shm {wire / shm:.2f}x")
    finally:
        server.stop()


def client_episode(url: str, seed: int, steps: int, start_at: float) -> tuple[float, float]:
    """One episode of ``steps`` OBSERVATIONs starting at wall time ``start_at``; returns (start, end)."""
    handle = RemotePolicyHandle(url)
    obs = observation(seed)
    handle.start_episode("task", {})
    time.sleep(max(0.0, start_at - time.time()))
    start = time.time()
    for _ in range(steps):
        handle.act(obs)
    end = time.time()
    handle.end_episode({"status": "success"})
    handle.close()
    return start, end


def run_clients(pool: concurrent.futures.Executor, url: str, clients: int, steps: int) -> float:
    """Steps per second of ``clients`` concurrent episodes, one client process each (like sim workers)."""
    start_at = time.time() + 1.0  # every client connected before the clock starts
    spans = list(pool.map(client_episode, [url] * clients, range(clients), [steps] * clients, [start_at] * clients))
    return clients * steps / (max(end for _, end in spans) - min(start for start, _ in spans))


def bench_throughput(iters: int, clients: int, fixed_ms: float, per_item_ms: float, max_wait_ms: float) -> None:
    rates, forward_calls = {}, {}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(clients, mp_context=context) as pool:
        for label, max_batch in (("unbatched", 1), ("batched", clients)):
            policy = FixedCostPolicy(fixed_ms / 1e3, per_item_ms / 1e3)
            server = PolicyServer(policy, max_batch=max_batch, max_wait_ms=max_wait_ms)
            server.start_in_thread()
            try:
                rates[label] = run_clients(pool, server.url, clients, iters)
                forward_calls[label] = server.stats["forward_calls"]
            finally:
                server.stop()
    print(f"(b) throughput, {clients} client processes x {iters} steps, forward = "
          f"{fixed_ms:g} ms + {per_item_ms:g} ms/item, max_wait_ms={max_wait_ms:g}")
    for label, rate in rates.items():
        print(f"    {label:<10} {rate:8.1f} steps/s   forward calls {forward_calls[label]}")
    print(f"    batched/unbatched throughput ratio: {rates['batched'] / rates['unbatched']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=200, help="latency calls, and steps per client for (b)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--fixed-ms", type=float, default=5.0, help="fixed cost of one forward call")
    parser.add_argument("--per-item-ms", type=float, default=0.2, help="extra cost per batch item")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="batched server's batching window")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; server, clients and policy share them")
    bench_latency(args.iters)
    bench_throughput(args.iters, args.clients, args.fixed_ms, args.per_item_ms, args.max_wait_ms)


if __name__ == "__main__":
    main()
