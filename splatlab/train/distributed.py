"""Data-parallel training with torch.distributed (gloo on CPU, nccl on CUDA).

Every rank holds the full model and renders its share of each step's cameras (the camera order
comes from a generator seeded identically on every rank). After backward, gradients are averaged
with one all-reduce. At refinement steps the strategy's statistics are reduced (sum / max) across
ranks, rank 0 makes the densification decisions, and the resulting parameters, optimizer state
and strategy state are broadcast so every rank keeps an identical model. Per-step strategy
randomness (MCMC noise) is seeded from the step, so it is identical on every rank without
communication.

`splatlab.train.launch` spawns the processes; this module holds only the collective operations
(so the trainer can use them without importing the launcher that imports the trainer).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from splatlab.densify import ops

REDUCE_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}


def allreduce_grads(params: list[torch.nn.Parameter], extra: Tensor, world: int) -> Tensor:
    """Average the gradients of `params` (and the `extra` scalars) over ranks in one all-reduce."""
    with_grad = [p for p in params if p.grad is not None]
    flat = torch.cat([p.grad.reshape(-1) for p in with_grad] + [extra.reshape(-1).to(torch.float32)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    offset = 0
    for p in with_grad:
        n = p.grad.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n
    return flat[offset:].clone()


def _reduced_stats(strategy) -> dict[str, str]:
    stats = getattr(strategy, "reduced_stats", ())
    if isinstance(stats, dict):
        return stats
    return {k: "sum" for k in stats}


def post_backward(strategy, gaussians, optimizers, state: dict, step: int, meta, rank: int) -> None:
    """The distributed version of `strategy.step_post_backward`."""
    strategy.accumulate(gaussians, state, step, meta)
    if strategy.refine_due(step):
        for key, op in sorted(_reduced_stats(strategy).items()):
            value = state.get(key)
            if isinstance(value, Tensor):
                dist.all_reduce(value, op=REDUCE_OPS[op])
        if rank == 0:
            strategy.refine(gaussians, optimizers, state, step)
        broadcast_model(gaussians, optimizers, state, rank)
    strategy.after_step(gaussians, optimizers, state, step)


def broadcast_model(gaussians, optimizers, state: dict, rank: int) -> None:
    """Make every rank's Gaussians, their optimizer state and the strategy state equal rank 0's."""
    groups = list(ops._field_groups(gaussians, optimizers))
    layout: list[Any] = [None]
    if rank == 0:
        opt_layout = []
        for name, opt, group, i in groups:
            st = opt.state.get(group["params"][i], {})
            opt_layout.append((name, sorted((k, tuple(v.shape), str(v.dtype)) for k, v in st.items()
                                            if isinstance(v, Tensor) and v.ndim > 0)))
        layout[0] = {
            "fields": {k: tuple(v.shape) for k, v in gaussians.params.items()},
            "opt": opt_layout,
            "state": {k: (tuple(v.shape), str(v.dtype)) for k, v in sorted(state.items()) if isinstance(v, Tensor)},
            "state_none": sorted(k for k, v in state.items() if v is None),
        }
    dist.broadcast_object_list(layout, src=0)
    lay = layout[0]

    def recv(t: Tensor | None, shape, dtype=torch.float32) -> Tensor:
        buf = t.detach().contiguous().clone() if rank == 0 else torch.empty(shape, dtype=dtype)
        dist.broadcast(buf, src=0)
        return buf

    fields = {k: recv(gaussians.params[k] if rank == 0 else None, shape) for k, shape in lay["fields"].items()}
    opt_states: dict[tuple[str, str], Tensor] = {}
    for (name, keys), (gname, opt, group, i) in zip(lay["opt"], groups):
        st = opt.state.get(group["params"][i], {})
        for key, shape, dtype in keys:
            opt_states[(name, key)] = recv(st.get(key) if rank == 0 else None, shape, getattr(torch, dtype.split(".")[-1]))
    new_state = {k: recv(state[k] if rank == 0 else None, shape, getattr(torch, dtype.split(".")[-1]))
                 for k, (shape, dtype) in lay["state"].items()}
    if rank == 0:
        return
    ops.update_rows(gaussians, optimizers, lambda name, p: fields[name],
                    lambda name, key, v: opt_states.get((name, key), v))
    for name, opt, group, i in ops._field_groups(gaussians, optimizers):
        st = opt.state.setdefault(group["params"][i], {})
        for (n2, key), value in opt_states.items():
            if n2 == name:
                st[key] = value
    state.update(new_state)
    for k in lay["state_none"]:
        state[k] = None


def max_param_diff(gaussians, rank: int) -> float:
    """Largest |param - rank 0's param| over all ranks and fields (0.0 when in sync)."""
    flat = torch.cat([p.detach().reshape(-1) for p in gaussians.params.values()])
    n = torch.tensor([flat.numel()], dtype=torch.long)
    ns = n.clone()
    dist.all_reduce(ns, op=dist.ReduceOp.MAX)
    if int(ns) != int(n):
        diff = torch.tensor([float("inf")])
    else:
        ref = flat.clone()
        dist.broadcast(ref, src=0)
        diff = (flat - ref).abs().max().reshape(1) if flat.numel() else torch.zeros(1)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff.item())
