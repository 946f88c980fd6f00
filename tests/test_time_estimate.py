"""The trainer's time-to-go estimate: the closed form against a step-by-step sum, and the messages a
real (tiny) run prints."""
from __future__ import annotations

import pytest

from splatlab.train.trainer import remaining_seconds


@pytest.mark.parametrize("step,grow_until,end", [(100, 1500, 3000), (100, 5000, 3000), (2000, 1500, 3000), (0, 0, 50)])
def test_remaining_seconds_matches_a_step_by_step_sum(step, grow_until, end):
    a, b, n_now, cap = 0.05, 2e-6, 1200, 50_000
    total = 0.0
    span = max(1, min(end, grow_until) - step)
    for s in range(step, end):
        n = n_now + (cap - n_now) * (s - step + 0.5) / span if s < grow_until else cap
        total += a + b * n
    assert remaining_seconds(a, b, n_now, cap, step, grow_until, end) == pytest.approx(total, rel=1e-9)


def test_a_fixed_cost_step_does_not_scale_with_the_budget():
    """The old estimate scaled the whole step cost with N (75 min said for a 4-min robot run)."""
    assert remaining_seconds(0.06, 0.0, 1200, 50_000, 100, 1500, 3000) == pytest.approx(0.06 * 2900)
