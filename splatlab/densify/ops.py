"""Optimizer-state surgery: edit the rows of a `Gaussians` and keep every Adam state aligned.

Every helper changes *all* per-Gaussian fields (core fields and method extras) and, for each
optimizer param group that holds one of those fields, the per-row optimizer state (Adam's
`exp_avg`, `exp_avg_sq`, ...). Scalar state such as Adam's `step` is kept as is.

`optimizers` may be one optimizer, a list of them or a mapping name -> optimizer; groups are
matched to fields by identity of the parameter (and by `group["name"]` when present).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator, Mapping

import torch
from torch import Tensor
from torch.optim import Optimizer

from splatlab.gaussians import Gaussians
from splatlab.render.projection import quat_to_rotmat  # one rotation convention for render and densify

Optimizers = Optimizer | Iterable[Optimizer] | Mapping[str, Optimizer]


def iter_optimizers(optimizers: Optimizers | None) -> list[Optimizer]:
    if optimizers is None:
        return []
    if isinstance(optimizers, Optimizer):
        return [optimizers]
    if isinstance(optimizers, Mapping):
        return list(optimizers.values())
    return list(optimizers)


def _field_groups(gaussians: Gaussians, optimizers: Optimizers | None) -> Iterator[tuple[str, Optimizer, dict, int]]:
    """(field name, optimizer, group, index in group["params"]) for every group holding a field."""
    by_id = {id(p): name for name, p in gaussians.params.items()}
    for opt in iter_optimizers(optimizers):
        for group in opt.param_groups:
            for i, p in enumerate(group["params"]):
                name = by_id.get(id(p))
                if name is not None:
                    yield name, opt, group, i


def update_rows(
    gaussians: Gaussians,
    optimizers: Optimizers | None,
    param_fn: Callable[[str, Tensor], Tensor],
    state_fn: Callable[[str, str, Tensor], Tensor],
    names: Iterable[str] | None = None,
) -> None:
    """Replace fields with `param_fn(name, old)` and per-row optimizer state with `state_fn(name, key, old)`.

    Only `names` are touched (default: every field). The new parameters are fresh
    `nn.Parameter`s; the optimizer groups are re-pointed at them with their state carried over.
    """
    selected = set(gaussians.params.keys()) if names is None else set(names)
    n_old = len(gaussians)
    old_params = {name: gaussians.params[name] for name in selected}
    located = [(name, opt, group, i) for name, opt, group, i in _field_groups(gaussians, optimizers)
               if name in selected]
    with torch.no_grad():
        gaussians.replace({name: param_fn(name, old.detach()) for name, old in old_params.items()})
    for name, opt, group, i in located:
        old = old_params[name]
        new = gaussians.params[name]
        group["params"][i] = new
        state = opt.state.pop(old, None)
        if state is None:
            continue
        for key, value in list(state.items()):
            if isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == n_old:
                state[key] = state_fn(name, key, value)
        opt.state[new] = state


def _zeros_rows(v: Tensor, n: int) -> Tensor:
    return v.new_zeros((n, *v.shape[1:]))


def duplicate(gaussians: Gaussians, optimizers: Optimizers | None, mask: Tensor) -> None:
    """Append a copy of every selected row (optimizer state of the copies starts at zero)."""
    idx = _as_index(mask, len(gaussians))
    update_rows(gaussians, optimizers,
                lambda name, p: torch.cat([p, p[idx]]),
                lambda name, key, v: torch.cat([v, _zeros_rows(v, len(idx))]))


def remove(gaussians: Gaussians, optimizers: Optimizers | None, mask: Tensor) -> None:
    """Delete the selected rows (and their optimizer state)."""
    keep = ~_as_mask(mask, len(gaussians))
    update_rows(gaussians, optimizers, lambda name, p: p[keep], lambda name, key, v: v[keep])


def append(gaussians: Gaussians, optimizers: Optimizers | None, fields: Mapping[str, Tensor]) -> None:
    """Append new rows given for every field (optimizer state of the new rows starts at zero)."""
    missing = set(gaussians.params.keys()) - set(fields)
    if missing:
        raise KeyError(f"append needs every field, missing {sorted(missing)}")
    n_new = next(iter(fields.values())).shape[0]
    update_rows(gaussians, optimizers,
                lambda name, p: torch.cat([p, fields[name].to(p)]),
                lambda name, key, v: torch.cat([v, _zeros_rows(v, n_new)]))


def set_rows(gaussians: Gaussians, optimizers: Optimizers | None, index: Tensor,
             values: Mapping[str, Tensor], reset_state: bool = True) -> None:
    """Overwrite rows `index` of the given fields; with `reset_state` zero their optimizer state
    in *every* field's group (the rows are new Gaussians as far as Adam is concerned)."""
    idx = _as_index(index, len(gaussians))

    def param_fn(name, p):
        if name not in values:
            return p
        p = p.clone()
        p[idx] = values[name].to(p)
        return p

    def state_fn(name, key, v):
        if not reset_state:
            return v
        v = v.clone()
        v[idx] = 0
        return v

    update_rows(gaussians, optimizers, param_fn, state_fn)


def reset_state_rows(gaussians: Gaussians, optimizers: Optimizers | None, index: Tensor,
                     names: Iterable[str] | None = None) -> None:
    """Zero the optimizer state of rows `index` (parameters unchanged)."""
    set_rows_names = None if names is None else list(names)
    idx = _as_index(index, len(gaussians))

    def state_fn(name, key, v):
        v = v.clone()
        v[idx] = 0
        return v

    update_rows(gaussians, optimizers, lambda name, p: p.clone(), state_fn, names=set_rows_names)


def reset_opacity(gaussians: Gaussians, optimizers: Optimizers | None, value: float, skip_first: int = 0) -> None:
    """Clamp every opacity to at most `value` and zero the opacity field's optimizer state, except
    for the first `skip_first` rows (pinned Gaussians)."""
    logit = math.log(value / (1.0 - value))

    def clamp(name, p):
        out = torch.clamp_max(p, logit)
        out[:skip_first] = p[:skip_first]
        return out

    def zero(name, key, v):
        out = torch.zeros_like(v)
        out[:skip_first] = v[:skip_first]
        return out

    update_rows(gaussians, optimizers, clamp, zero, names=["opacities"])


def pinned_mask(state: dict, n: int, device=None) -> Tensor:
    """True for the first `state["pinned"]` rows: Gaussians no strategy may clone, split, prune,
    relocate or reset (the trainer's background shell)."""
    mask = torch.zeros(n, dtype=torch.bool, device=device)
    mask[:int(state.get("pinned", 0))] = True
    return mask


def split(gaussians: Gaussians, optimizers: Optimizers | None, mask: Tensor, n_split: int = 2,
          scale_divisor: float = 1.6, generator: torch.Generator | None = None) -> None:
    """Replace each selected Gaussian by `n_split` smaller ones sampled from it.

    New means = mean + R·(scale ⊙ ε), ε ~ N(0, I); new scales = scale / (0.8·n_split) (1.6 for
    two, as in the paper). Unselected rows keep their order and state; the children are appended
    (optimizer state zero).
    """
    sel = _as_mask(mask, len(gaussians))
    idx = torch.nonzero(sel).squeeze(1)
    rest = ~sel
    k = len(idx)
    if k == 0:
        return
    with torch.no_grad():
        means = gaussians.params["means"][idx]
        scales = torch.exp(gaussians.params["scales"][idx])
        R = quat_to_rotmat(gaussians.params["quats"][idx])
        eps = torch.randn((n_split, k, 3), generator=generator, dtype=means.dtype).to(means.device)
        offsets = torch.einsum("kij,skj->ski", R, scales[None] * eps)
        new_means = (means[None] + offsets).reshape(n_split * k, 3)
        new_scales = torch.log(scales / scale_divisor).repeat(n_split, 1)

    def param_fn(name, p):
        if name == "means":
            children = new_means
        elif name == "scales":
            children = new_scales
        else:
            children = p[idx].repeat(n_split, *([1] * (p.ndim - 1)))
        return torch.cat([p[rest], children.to(p)])

    update_rows(gaussians, optimizers, param_fn,
                lambda name, key, v: torch.cat([v[rest], _zeros_rows(v, n_split * k)]))


def _as_mask(mask: Tensor, n: int) -> Tensor:
    mask = torch.as_tensor(mask)
    if mask.dtype == torch.bool:
        if mask.shape != (n,):
            raise ValueError(f"mask has shape {tuple(mask.shape)}, expected ({n},)")
        return mask
    out = torch.zeros(n, dtype=torch.bool, device=mask.device)
    out[mask.long()] = True
    return out


def _as_index(index: Tensor, n: int) -> Tensor:
    index = torch.as_tensor(index)
    if index.dtype == torch.bool:
        if index.shape != (n,):
            raise ValueError(f"mask has shape {tuple(index.shape)}, expected ({n},)")
        return torch.nonzero(index).squeeze(1)
    return index.long().reshape(-1)


def check_aligned(gaussians: Gaussians, optimizers: Optimizers | None) -> None:
    """Raise if any optimizer group holding a field or its per-row state disagrees with the rows."""
    n = len(gaussians)
    found = set()
    for name, opt, group, i in _field_groups(gaussians, optimizers):
        found.add(name)
        p = group["params"][i]
        if p is not gaussians.params[name]:
            raise RuntimeError(f"optimizer group for {name!r} holds a stale parameter")
        for key, v in opt.state.get(p, {}).items():
            if isinstance(v, Tensor) and v.ndim > 0 and v.shape != p.shape:
                raise RuntimeError(f"optimizer state {key!r} of {name!r} has shape {tuple(v.shape)}, "
                                   f"parameter has {tuple(p.shape)}")
    for name, p in gaussians.params.items():
        if p.shape[0] != n:
            raise RuntimeError(f"field {name!r} has {p.shape[0]} rows, expected {n}")
