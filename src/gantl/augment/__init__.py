"""Discriminator augmentation: DiffAugment and ADA (adaptive, non-leaking), plus the ADA p tuner."""

from gantl.augment.ada import AUGPIPE_PRESETS, AugmentParams, AugmentPipe
from gantl.augment.diffaugment import DiffAugment
from gantl.augment.tuner import AdaTuner

__all__ = ["AUGPIPE_PRESETS", "AdaTuner", "AugmentParams", "AugmentPipe", "DiffAugment"]
