"""The style mixing training uses is the tested one (issue 14: the style-mixing test checked
``stylegan2.style_mix``, which training never called; the copy in training/losses.py had no test)."""

from __future__ import annotations

import pytest
import torch

from gantl.models.stylegan2 import Discriminator, Generator, style_mix
from gantl.training.losses import GANLoss

SYN = dict(channel_base=64, channel_max=16)


def _nets(c_dim: int = 0) -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=SYN)
    D = Discriminator(c_dim=c_dim, img_resolution=16, img_channels=3, **SYN)
    return G, D


@pytest.mark.parametrize("prob", [0.0, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_training_run_G_mixes_exactly_as_style_mix(prob: float, c_dim: int) -> None:
    G, D = _nets(c_dim)
    loss = GANLoss(G, D, style_mixing_prob=prob)
    z = torch.randn(4, 8)
    c = torch.eye(c_dim)[[0, 1, 2, 0]] if c_dim else None
    for seed in range(6):  # several draws: mixed and unmixed batches both occur for 0 < prob < 1
        torch.manual_seed(seed)
        _, ws_train = loss.run_G(z, c)
        torch.manual_seed(seed)
        ws_ref = style_mix(G, z, c, prob)
        assert ws_train is not None
        torch.testing.assert_close(ws_train, ws_ref, rtol=0, atol=0)


def test_style_mix_probability_and_cutoffs_follow_the_paper() -> None:
    """One coin per batch with P(mix) = prob; cutoffs uniform over [1, num_ws); suffix from a new z."""
    G, _ = _nets()
    z = torch.randn(2, 8)
    plain = G.mapping(z)
    torch.manual_seed(0)
    mixed, cutoffs = 0, set()
    trials = 400
    for _ in range(trials):
        ws = style_mix(G, z, None, 0.3)
        same = (ws - plain).abs().amax(dim=2) < 1e-6  # [N, num_ws]
        k = int(same[0].sum())
        assert same[:, :k].all() and not same[:, k:].any()  # a prefix kept, the rest replaced, per batch
        if k < G.num_ws:
            mixed += 1
            cutoffs.add(k)
    assert abs(mixed / trials - 0.3) < 0.08
    assert cutoffs == set(range(1, G.num_ws))
    assert torch.equal(style_mix(G, z, None, 0.0), plain)  # prob 0: plain ws, no extra RNG draws needed
