"""Learned feed-forward models that output splats (Triplane-Gaussian, CATSplat, SplatFormer).

    from splatlab.models import load_model
    model = load_model("tgs")                 # shipped weights, sha256-checked, never downloaded
    gaussians = model.predict_path("photo.png")

Each model is a package here with its typed config, its network and shipped weights with a model
card (`<name>/weights/`); `base.py` holds the contract, `registry.py` the lookup,
`cli.py` the `splatlab predict` command.
"""
from .base import FeedForwardModel, InputError, ModelConfig, WeightsError, sha256_file, verify_manifest
from .registry import available_models, load_model, model_class, register_model

__all__ = ["FeedForwardModel", "InputError", "ModelConfig", "WeightsError", "available_models", "load_model", "model_class",
           "register_model", "sha256_file", "verify_manifest"]
