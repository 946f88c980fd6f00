"""Training: one trainer loop, losses, metrics, checkpoints, outputs and data-parallel training.

    from splatlab.train import TrainConfig, run_training, train_main
    run_training(TrainConfig(scene="scenes/robot", iterations=2000, downscale=4))
    train_main(["scenes/robot", "--iterations", "2000", "--resolution", "4"])
"""
from .cli import train_main
from .config import TrainConfig
from .launch import run_training
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "run_training", "train_main"]
