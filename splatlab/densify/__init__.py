"""Densification strategies behind one `Strategy` protocol: `DefaultStrategy` (ADC) and `MCMCStrategy`."""
from . import ops
from .base import BaseStrategy, Strategy, step_generator
from .default import DefaultStrategy
from .mcmc import MCMCStrategy, relocation_update

STRATEGIES = {"default": DefaultStrategy, "mcmc": MCMCStrategy}

__all__ = ["Strategy", "BaseStrategy", "DefaultStrategy", "MCMCStrategy", "STRATEGIES", "ops",
           "relocation_update", "step_generator"]
