"""The two adversarial losses, checked against their formulas on hand-picked logits."""

from __future__ import annotations

import math

import pytest
import torch

from gantl.training.losses import discriminator_loss, generator_loss

LOGITS = torch.tensor([[-2.0], [-0.5], [0.0], [0.75], [3.0]])


def test_hinge_matches_its_definition() -> None:
    # D: max(0, 1 - D(x)) on reals, max(0, 1 + D(G(z))) on fakes; G: -D(G(z)).
    real = discriminator_loss(LOGITS, real=True, loss_type="hinge").flatten().tolist()
    fake = discriminator_loss(LOGITS, real=False, loss_type="hinge").flatten().tolist()
    assert real == [3.0, 1.5, 1.0, 0.25, 0.0]
    assert fake == [0.0, 0.5, 1.0, 1.75, 4.0]
    assert float(generator_loss(LOGITS, "hinge")) == pytest.approx(-(-2 - 0.5 + 0 + 0.75 + 3) / 5)


def test_logistic_matches_its_definition() -> None:
    sig = [1 / (1 + math.exp(-v)) for v in LOGITS.flatten().tolist()]
    real = discriminator_loss(LOGITS, real=True, loss_type="logistic").flatten().tolist()
    fake = discriminator_loss(LOGITS, real=False, loss_type="logistic").flatten().tolist()
    assert real == pytest.approx([-math.log(s) for s in sig], rel=1e-6)
    assert fake == pytest.approx([-math.log(1 - s) for s in sig], rel=1e-6)
    assert float(generator_loss(LOGITS, "logistic")) == pytest.approx(sum(-math.log(s) for s in sig) / 5, rel=1e-6)


def test_unknown_loss_is_refused() -> None:
    from gantl.training.losses import GANLoss

    net = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="hinge"):
        GANLoss(net, net, loss_type="wasserstein")
