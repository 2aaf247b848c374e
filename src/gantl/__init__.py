"""gantl: curate a few hundred images, adapt a pretrained GAN, measure honestly."""

__version__ = "0.1.0"
