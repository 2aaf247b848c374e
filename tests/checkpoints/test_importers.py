"""Importers: NVIDIA stylegan2-ada pickles (crafted fixture) and DCGAN-tutorial state dicts.

The NVIDIA fixture is written without NVIDIA's code: a small pickler emits the same
records their ``torch_utils/persistence.py`` writes — a ``REDUCE`` of
``torch_utils.persistence._reconstruct_persistent_obj`` on a ``meta`` dict holding
``type``, ``version``, ``module_src``, ``class_name`` and the module's ``__dict__``
(``_parameters``, ``_buffers``, ``_modules`` of nested records, ``_init_kwargs`` as
``dnnlib.util.EasyDict``) — with GLOBAL opcodes naming modules that do not exist here.
The embedded ``module_src`` is hostile on purpose: if anything executed it the test
would notice (it writes a marker file and raises).
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from gantl.errors import CheckpointError

# ----------------------------------------------------------------------------- fixture writer


class _Ref:
    """A global ``module.name`` written as a GLOBAL opcode, whether or not it is importable here."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: Any) -> Any:  # save_reduce insists the callable be callable
        raise TypeError("fixture reference, not a real function")


class _Reduce:
    """``func(*args)`` in the pickle stream (REDUCE opcode)."""

    def __init__(self, func: _Ref, args: tuple) -> None:
        self.func, self.args = func, args


class _NewDict:
    """``cls.__new__(cls)`` followed by dict items: how a ``dict`` subclass like EasyDict pickles."""

    def __init__(self, cls: _Ref, items: dict) -> None:
        self.cls, self.items = cls, items


class _FixturePickler(pickle._Pickler):  # the pure-Python pickler lets us add dispatch entries
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_ref(self, obj: _Ref) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    def _save_reduce_obj(self, obj: _Reduce) -> None:
        self.save_reduce(obj.func, obj.args, obj=obj)

    def _save_newdict(self, obj: _NewDict) -> None:
        self.save(obj.cls)
        self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
        self.memoize(obj)
        self._batch_setitems(iter(obj.items.items()))

    dispatch[_Ref] = _save_ref
    dispatch[_Reduce] = _save_reduce_obj
    dispatch[_NewDict] = _save_newdict


EASYDICT = _Ref("dnnlib.util", "EasyDict")
RECONSTRUCT = _Ref("torch_utils.persistence", "_reconstruct_persistent_obj")


def _hostile_source(marker: Path) -> str:
    return (f"open({str(marker)!r}, 'w').write('pickled code ran')\n"
            "raise SystemExit('the embedded module source was executed')\n")


def _easydict(d: dict) -> _NewDict:
    return _NewDict(EASYDICT, {k: _easydict(v) if isinstance(v, dict) else v for k, v in d.items()})


def module_record(module: nn.Module, marker: Path, init_kwargs: dict | None = None,
                  drop: str | None = None, reshape: str | None = None, prefix: str = "") -> _Reduce:
    """A persistent-object record of ``module`` (recursively), optionally damaged for negative tests."""
    params = collections.OrderedDict()
    for name, p in module._parameters.items():
        full = prefix + name
        if p is None or full == drop:
            continue
        data = p.detach().clone()
        if full == reshape:
            data = torch.zeros(*data.shape[:-1], data.shape[-1] + 1) if data.ndim else torch.zeros(2)
        params[name] = nn.Parameter(data, requires_grad=False)
    buffers = collections.OrderedDict()
    for name, b in module._buffers.items():
        if b is not None and prefix + name != drop:
            buffers[name] = b.detach().clone()
    children = collections.OrderedDict(
        (name, module_record(child, marker, None, drop, reshape, f"{prefix}{name}."))
        for name, child in module._modules.items() if child is not None
    )
    state: dict[str, Any] = {
        "training": False,
        "_parameters": params,
        "_buffers": buffers,
        "_non_persistent_buffers_set": set(module._non_persistent_buffers_set),
        "_backward_hooks": collections.OrderedDict(),
        "_forward_hooks": collections.OrderedDict(),
        "_forward_pre_hooks": collections.OrderedDict(),
        "_state_dict_hooks": collections.OrderedDict(),
        "_load_state_dict_pre_hooks": collections.OrderedDict(),
        "_modules": children,
        "_init_args": (),
        "_init_kwargs": _easydict(init_kwargs or {}),
    }
    for attr in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "num_ws"):
        if isinstance(getattr(module, attr, None), int):
            state[attr] = getattr(module, attr)
    meta = {"type": "class", "version": 6, "module_src": _hostile_source(marker),
            "class_name": type(module).__name__, "state": state}
    return _Reduce(RECONSTRUCT, (meta,))


def nvidia_kwargs(net: nn.Module) -> dict:
    """NVIDIA-style init kwargs for a gantl StyleGAN2 network, with the fp16/clamp knobs NVIDIA sets."""
    cfg = dict(net.config)
    if "synthesis_kwargs" in cfg:
        cfg["synthesis_kwargs"] = {**cfg["synthesis_kwargs"], "num_fp16_res": 4, "conv_clamp": 256}
    else:
        cfg.update(num_fp16_res=4, conv_clamp=256)
    return cfg


def write_nvidia_pickle(path: Path, G: nn.Module, D: nn.Module, G_ema: nn.Module, marker: Path,
                        damage: dict | None = None) -> Path:
    """A stylegan2-ada ``network-snapshot.pkl`` look-alike holding G, D, G_ema, augment_pipe."""
    damage = damage or {}
    aug = nn.Module()
    aug.register_buffer("p", torch.tensor(0.25))
    snapshot = {
        "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": "/data/cifar9.zip",
                                "use_labels": G.c_dim > 0, "max_size": 45000, "xflip": True,
                                "resolution": G.img_resolution},
        "G": module_record(G, marker, nvidia_kwargs(G), **damage.get("G", {})),
        "D": module_record(D, marker, nvidia_kwargs(D), **damage.get("D", {})),
        "G_ema": module_record(G_ema, marker, nvidia_kwargs(G_ema), **damage.get("G_ema", {})),
        "augment_pipe": module_record(aug, marker, {"xflip": 1, "rotate90": 1}),
    }
    buf = io.BytesIO()
    _FixturePickler(buf, protocol=3).dump(snapshot)
    path.write_bytes(buf.getvalue())
    return path


# ----------------------------------------------------------------------------- NVIDIA tests


def _tiny_stylegan2(c_dim: int = 0, seed: int = 0) -> tuple[nn.Module, nn.Module, nn.Module]:
    from gantl.models.stylegan2 import Discriminator, Generator

    torch.manual_seed(seed)
    G = Generator(z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=16, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, synthesis_kwargs={"channel_base": 256, "channel_max": 32})
    D = Discriminator(c_dim=c_dim, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
                      epilogue_kwargs={"mbstd_group_size": 2})
    G_ema = Generator(**G.config)
    # Distinct, non-initial values everywhere so a tensor landing in the wrong slot shows.
    with torch.no_grad():
        for net in (G, D, G_ema):
            for t in net.state_dict().values():
                if t.is_floating_point():
                    t.add_(torch.randn_like(t) * 0.1)
    return G, D, G_ema


@pytest.fixture()
def marker(tmp_path: Path) -> Path:
    return tmp_path / "code-ran.txt"


@pytest.mark.parametrize("c_dim", [0, 4])
def test_nvidia_pickle_round_trips_every_tensor(tmp_path: Path, marker: Path, c_dim: int) -> None:
    from gantl.checkpoints.format import load_checkpoint
    from gantl.checkpoints.importers import import_nvidia_pkl

    G, D, G_ema = _tiny_stylegan2(c_dim)
    pkl = write_nvidia_pickle(tmp_path / "snap.pkl", G, D, G_ema, marker)
    out = import_nvidia_pkl(pkl, tmp_path / "snap.safetensors")
    assert not marker.exists(), "code embedded in the pickle was executed"

    ckpt = load_checkpoint(out)
    for name, net in (("G", G), ("D", D), ("G_ema", G_ema)):
        rebuilt = ckpt.build(name)
        ref = net.state_dict()
        got = rebuilt.state_dict()
        assert set(got) == set(ref)
        for k in ref:
            assert torch.equal(got[k], ref[k]), f"{name}.{k} changed on import"
    ts = ckpt.metadata["training_set"]
    assert ts["resolution"] == 16 and ts["c_dim"] == c_dim and ts["use_labels"] == (c_dim > 0)
    assert ts["xflip"] is True and ts["path"] == "/data/cifar9.zip"

    # The imported generator computes exactly what the original does.
    z = torch.randn(3, 32)
    c = torch.eye(c_dim)[[0, 1, 2]] if c_dim else None
    G_new = ckpt.build("G_ema")
    torch.testing.assert_close(G_new(z, c, noise_mode="const"), G_ema(z, c, noise_mode="const"))


def test_nvidia_pickle_missing_tensor_is_refused_by_name(tmp_path: Path, marker: Path) -> None:
    from gantl.checkpoints.importers import import_nvidia_pkl

    G, D, G_ema = _tiny_stylegan2()
    victim = "synthesis.b8.conv0.affine.weight"
    pkl = write_nvidia_pickle(tmp_path / "snap.pkl", G, D, G_ema, marker, damage={"G_ema": {"drop": victim}})
    with pytest.raises(CheckpointError, match=r"G_ema.*missing tensor 'synthesis\.b8\.conv0\.affine\.weight'"):
        import_nvidia_pkl(pkl, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()
    assert not marker.exists()


def test_nvidia_pickle_misshapen_tensor_is_refused_by_name(tmp_path: Path, marker: Path) -> None:
    from gantl.checkpoints.importers import import_nvidia_pkl

    G, D, G_ema = _tiny_stylegan2()
    victim = "b16.conv0.weight"
    pkl = write_nvidia_pickle(tmp_path / "snap.pkl", G, D, G_ema, marker, damage={"D": {"reshape": victim}})
    with pytest.raises(CheckpointError, match=r"tensor 'b16\.conv0\.weight' has shape"):
        import_nvidia_pkl(pkl, tmp_path / "out.safetensors")


def test_nvidia_pickle_with_foreign_global_is_refused(tmp_path: Path, marker: Path) -> None:
    """A pickle that asks for os.system (or anything outside the allow-list) never runs it."""
    from gantl.checkpoints.importers import import_nvidia_pkl
    from gantl.errors import UnsafePickleError

    evil = {"G": _Reduce(_Ref("os", "system"), (f"touch {marker}",))}
    buf = io.BytesIO()
    _FixturePickler(buf, protocol=3).dump(evil)
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(buf.getvalue())
    with pytest.raises(UnsafePickleError):
        import_nvidia_pkl(pkl, tmp_path / "out.safetensors")
    assert not marker.exists()


def test_zoo_resolve_converts_a_local_nvidia_pickle_once(tmp_path: Path, marker: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from gantl.checkpoints import zoo
    from gantl.checkpoints.format import load_checkpoint

    monkeypatch.setenv("GANTL_CACHE_DIR", str(tmp_path / "cache"))
    G, D, G_ema = _tiny_stylegan2()
    pkl = write_nvidia_pickle(tmp_path / "snap.pkl", G, D, G_ema, marker)
    first = zoo.resolve(str(pkl))
    assert first.suffix == ".safetensors" and first.parent == tmp_path / "cache" / "converted"
    assert first.stem == zoo.sha256_file(pkl)
    mtime = first.stat().st_mtime_ns
    assert zoo.resolve(pkl) == first and first.stat().st_mtime_ns == mtime  # cached, not redone
    assert set(load_checkpoint(first).tensors) == {"G", "D", "G_ema"}


# ----------------------------------------------------------------------------- DCGAN tutorial


def _tutorial_generator(nz: int = 16, ngf: int = 8, nc: int = 3) -> nn.Sequential:
    """The PyTorch DCGAN tutorial's 64 px generator layout (main.N indices matter, not the class)."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )


def _tutorial_discriminator(ndf: int = 8, nc: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )


class _Tutorial(nn.Module):
    def __init__(self, main: nn.Sequential) -> None:
        super().__init__()
        self.main = main

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def _randomise_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1.0, 0.1)
                m.bias.normal_()
                m.num_batches_tracked.fill_(7)


def test_dcgan_tutorial_generator_and_discriminator_match_outputs(tmp_path: Path) -> None:
    from gantl.checkpoints.format import load_checkpoint
    from gantl.checkpoints.importers import import_dcgan_tutorial

    torch.manual_seed(0)
    g, d = _Tutorial(_tutorial_generator()), _Tutorial(_tutorial_discriminator())
    _randomise_bn(g), _randomise_bn(d)
    path = tmp_path / "dcgan.pth"
    torch.save({"netG_state_dict": g.state_dict(), "netD_state_dict": d.state_dict(), "epoch": 5}, path)
    ckpt = load_checkpoint(import_dcgan_tutorial(path, tmp_path / "dcgan.safetensors"))
    G, D = ckpt.build("G").eval(), ckpt.build("D").eval()
    g.eval(), d.eval()
    assert G.config == {"z_dim": 16, "c_dim": 0, "img_resolution": 64, "img_channels": 3, "ngf": 8}
    z = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(G(z), g(z[:, :, None, None]))
        img = torch.rand(4, 3, 64, 64) * 2 - 1
        # gantl's D returns logits; the tutorial applies a sigmoid.
        torch.testing.assert_close(torch.sigmoid(D(img)), d(img).reshape(4, 1))


def test_dcgan_tutorial_dataparallel_prefix_and_bare_state_dict(tmp_path: Path) -> None:
    from gantl.checkpoints.importers import read_dcgan_tutorial

    g = _Tutorial(_tutorial_generator())
    path = tmp_path / "g.pth"
    torch.save({f"module.{k}": v for k, v in g.state_dict().items()}, path)
    nets = read_dcgan_tutorial(path)
    assert nets.G is not None and nets.D is None
    assert nets.G.config["ngf"] == 8


def test_dcgan_tutorial_missing_or_misshapen_tensor_is_named(tmp_path: Path) -> None:
    from gantl.checkpoints.importers import read_dcgan_tutorial

    sd = _Tutorial(_tutorial_generator()).state_dict()
    broken = dict(sd)
    del broken["main.4.running_var"]
    torch.save(broken, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing tensor 'blocks\.1\.bn\.running_var'"):
        read_dcgan_tutorial(tmp_path / "missing.pth")
    bad = dict(sd)
    bad["main.4.weight"] = torch.ones(3)
    torch.save(bad, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"tensor 'blocks\.1\.bn\.weight' has shape \(3,\)"):
        read_dcgan_tutorial(tmp_path / "shape.pth")


def test_dcgan_reader_refuses_pickled_code(tmp_path: Path) -> None:
    from gantl.checkpoints.importers import read_dcgan_tutorial

    marker = tmp_path / "ran.txt"

    class Evil:
        def __reduce__(self):
            return (Path.write_text, (marker, "ran"))

    torch.save({"netG_state_dict": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="not a readable torch weights file"):
        read_dcgan_tutorial(tmp_path / "evil.pth")
    assert not marker.exists()


# ----------------------------------------------------------------------------- gan-face-generate


def test_gan_face_generate_imports_and_makes_faces(tmp_path: Path, gan_face_weights: Path) -> None:
    """A real pretrained 64 px DCGAN (DigiFace-1M faces) gives exactly its own package's images.

    The reference is the package's own ``Generator`` class (plain torch code, imported normally)
    loaded with ``torch.load(weights_only=True)``; the imported gantl network must reproduce it.
    A grid of these samples was looked at by eye when the importer was written: faces.
    """
    from gantl.checkpoints.format import load_checkpoint
    from gantl.checkpoints.importers import import_dcgan_tutorial
    from gantl.models.dcgan import Generator

    weights = gan_face_weights
    from gan_face_generate.models import Generator as ReferenceGenerator

    ref = ReferenceGenerator(ngpu=0, nc=3, nz=100, ngf=64)
    ref.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["netG_state_dict"])
    ref.eval()

    ckpt = load_checkpoint(import_dcgan_tutorial(weights, tmp_path / "faces.safetensors"))
    G = ckpt.build("G_ema").eval()
    assert G.config == {"z_dim": 100, "c_dim": 0, "img_resolution": 64, "img_channels": 3, "ngf": 64}
    torch.manual_seed(0)
    z = torch.randn(16, 100)
    with torch.no_grad():
        img = G(z)
        torch.testing.assert_close(img, ref(z[:, :, None, None]), rtol=1e-5, atol=1e-5)
        fresh = Generator(**G.config).eval()(z)
    assert img.shape == (16, 3, 64, 64) and img.min() >= -1 and img.max() <= 1
    # Trained images use the whole tonal range and differ per z; an untrained DCGAN's are flat grey.
    assert float((img.abs() > 0.5).float().mean()) > 0.2 > float((fresh.abs() > 0.5).float().mean())
    assert float(img.std(dim=0).mean()) > 0.2


def test_gan_face_generate_as_transfer_source_with_fresh_d(tmp_path: Path, gan_face_weights: Path) -> None:
    """The imported G fine-tunes with a fresh D: a few real optimisation steps change G and stay finite."""
    from gantl.checkpoints.format import load_checkpoint
    from gantl.checkpoints.importers import import_dcgan_tutorial
    from gantl.models.registry import build

    ckpt = load_checkpoint(import_dcgan_tutorial(gan_face_weights, tmp_path / "faces.safetensors"))
    assert "D" not in ckpt.tensors
    G = ckpt.build("G").train()
    D = build("dcgan", "D", {"c_dim": 0, "img_resolution": 64, "img_channels": 3, "ndf": 16}).train()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    torch.manual_seed(0)
    reals = torch.rand(8, 3, 64, 64) * 2 - 1  # stand-in target domain: noise images
    for _ in range(3):
        z = torch.randn(8, 100)
        loss_d = nn.functional.softplus(D(G(z).detach())).mean() + nn.functional.softplus(-D(reals)).mean()
        opt_d.zero_grad(), loss_d.backward(), opt_d.step()
        loss_g = nn.functional.softplus(-D(G(z))).mean()
        opt_g.zero_grad(), loss_g.backward(), opt_g.step()
        assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    changed = [k for k, v in G.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert "blocks.0.conv.weight" in changed
