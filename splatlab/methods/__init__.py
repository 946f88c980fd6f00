"""Training methods as modules: each one a typed config plus hooks on the one trainer loop and the
one render path (`splatlab.render.render`).

    from splatlab.methods import make_method, available_methods
    method = make_method("ges", {"shape_lr": 1e-3})

Built-ins: `gs3d` (plain 3DGS, alias `3dgs`), `sog` (self-organizing grid for compression),
`ges` (generalized exponential kernels), `deblur` (blur-kernel MLP). Other packages add methods
through the `splatlab.methods` entry-point group (see `registry.py`).
"""
from .base import LossInputs, Method, MethodConfig, RenderContext, RenderPass
from .options import coerce_options, describe_options
from .registry import (ENTRY_POINT_GROUP, available_methods, canonical_name, make_method, method_class,
                       methods_help, register_method, reload_entry_points)

__all__ = ["Method", "MethodConfig", "RenderContext", "RenderPass", "LossInputs", "register_method",
           "make_method", "method_class", "available_methods", "canonical_name", "methods_help",
           "reload_entry_points", "coerce_options", "describe_options", "ENTRY_POINT_GROUP"]
