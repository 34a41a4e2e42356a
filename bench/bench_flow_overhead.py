"""Headless overhead: Flow.run vs runner.complete with the same rendered messages.

Both run the embedded model in this process, alternating, after one warm-up call each, so
model loading and cache effects hit both sides equally. Prints the median ratio (goal <= 1.05).

    python bench/bench_flow_overhead.py [--reps 8] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.config import load_settings
from playground.flows.loader import parse_spec
from playground.flows.run import Flow
from playground.runner import complete

SPEC = """\
schema: playground.flow/v1
name: bench-flow
inputs:
  question: {{type: string, default: "Is the trail tent waterproof?"}}
prompt:
  messages:
    - {{role: system, content: "Answer in one short sentence."}}
    - {{role: user, content: "{{{{ question }}}}"}}
model:
  id: local/smollm2-135m-instruct
  params: {{temperature: 0.0, max_tokens: {max_tokens}, seed: 7}}
"""


def main() -> None:
    """Time both paths alternately and print per-rep timings and the median ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("PLAYGROUND_HOME", tempfile.mkdtemp(prefix="bench-flow-"))
    settings = load_settings()
    flow = Flow(parse_spec(SPEC.format(max_tokens=args.max_tokens)), settings)
    messages = flow.render(flow.variables({}))
    params = flow.spec.model.params
    model_id = flow.spec.model.id
    assert flow.run().text == complete(model_id, messages, params, settings).text  # warm-up
    flow_s: list[float] = []
    direct_s: list[float] = []
    for rep in range(args.reps):
        # Alternate which side goes first so neither always runs on a warmer cache.
        order = ("flow", "direct") if rep % 2 == 0 else ("direct", "flow")
        for side in order:
            start = time.perf_counter()
            if side == "flow":
                flow.run()
                flow_s.append(time.perf_counter() - start)
            else:
                complete(model_id, messages, params, settings)
                direct_s.append(time.perf_counter() - start)
    ratios = [f / d for f, d in zip(flow_s, direct_s, strict=True)]
    # The flow's own work (inputs, rendering, model lookup) without the model call, which
    # stays measurable on a busy machine where end-to-end timings are noisy.
    loops = 2000
    start = time.perf_counter()
    for _ in range(loops):
        flow.render(flow.variables({}))
        flow.model()
    own_us = (time.perf_counter() - start) / loops * 1e6
    print(f"reps={args.reps} max_tokens={args.max_tokens}")
    print(f"flow's own work per run (inputs + render + model lookup): {own_us:.0f} us")
    print(f"runner.complete median {statistics.median(direct_s) * 1000:.1f} ms")
    print(f"Flow.run        median {statistics.median(flow_s) * 1000:.1f} ms")
    print(f"ratio Flow.run / complete: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); goal <= 1.05")  # fmt: skip


if __name__ == "__main__":
    main()
