"""The transfer-method registry: one place for names, usage and help; clashes and broken modules are loud."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantl.cli import app
from gantl.errors import ConfigError
from gantl.transfer import base
from gantl.transfer.base import (
    MethodImportError,
    MethodRegistryError,
    load_method_module,
    parse_method,
    parse_methods,
    register_method,
    registered_methods,
)
from gantl.transfer.source import check_init_methods

ISSUE_11_NAMES = ("finetune", "freezed", "freezeg", "partial", "freeze-mapping", "l2sp", "ewc", "fd", "scale-shift",
                  "minegan", "cdc", "adafm", "glo")


def test_every_builtin_method_is_registered_with_usage_and_help() -> None:
    infos = {info.name: info for info in registered_methods()}
    for name in ISSUE_11_NAMES:
        assert name in infos, name
        assert infos[name].usage.startswith(name) and infos[name].help
    assert infos["l2sp"].usage == "l2sp[:lambda_g[:lambda_d]]"
    assert infos["ewc"].usage == "ewc[:lambda]"
    assert infos["fd"].usage == "fd[:lambda[:block]]"


def test_a_second_registration_of_a_name_is_refused() -> None:
    registered_methods()

    def factory(args: list[str]) -> base.BaseMethod:
        return base.BaseMethod()

    factory.__module__ = "somebody.else"
    with pytest.raises(MethodRegistryError, match="'l2sp' is registered twice"):
        register_method("l2sp")(factory)
    assert base.METHODS["l2sp"].module == "gantl.transfer.l2sp"  # the original entry survives
    with pytest.raises(MethodRegistryError):
        register_method("bad:name")


def test_a_broken_method_module_raises_its_real_import_error(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gantl_broken_method.py").write_text(
        "from gantl.transfer.base import register_method\nimport no_such_dependency_xyz\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MethodImportError) as info:
        load_method_module("gantl_broken_method")
    message = str(info.value)
    assert "gantl_broken_method" in message and "No module named 'no_such_dependency_xyz'" in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    sys.modules.pop("gantl_broken_method", None)

    # the same through the built-in list: --method never degrades to "unknown transfer method"
    monkeypatch.setattr(base, "BUILTIN_METHOD_MODULES", (*base.BUILTIN_METHOD_MODULES, "gantl_broken_method"))
    monkeypatch.setattr(base, "_LOADED", False)
    with pytest.raises(MethodImportError, match="no_such_dependency_xyz"):
        parse_method("l2sp")
    sys.modules.pop("gantl_broken_method", None)


def test_unknown_method_lists_the_registry_and_duplicates_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_method("l2-sp")
    for item in registered_methods():
        assert item.usage in str(info.value)
    with pytest.raises(ConfigError, match="given twice"):
        parse_methods(["l2sp", "l2sp:2"])
    with pytest.raises(ConfigError, match="too many arguments"):
        parse_method("l2sp:1:2:3")
    with pytest.raises(ConfigError, match="positive"):
        parse_method("ewc:-1")
    with pytest.raises(ConfigError, match="anchors nothing"):
        parse_method("l2sp:0:0")
    with pytest.raises(ConfigError, match="no arguments"):
        parse_method("scale-shift:2")


def test_train_help_lists_every_registered_method() -> None:
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for info in registered_methods():
        assert info.usage in text, info.usage


def test_methods_needing_a_source_network_are_refused_when_it_starts_from_scratch() -> None:
    with pytest.raises(ConfigError, match=r"--method fd:1 .*--init-d scratch.*freezeg:K"):
        check_init_methods(parse_methods(["fd"]), init_d="scratch")
    with pytest.raises(ConfigError, match=r"--method ewc:100 .*--init-g scratch"):
        check_init_methods(parse_methods(["ewc"]), init_g="scratch")
    with pytest.raises(ConfigError, match="scale-shift"):
        check_init_methods(parse_methods(["scale-shift"]), init_g="scratch")
    # anchoring only D is fine with a fresh G, and only G with a fresh D
    check_init_methods(parse_methods(["l2sp:0:1", "freezed:2"]), init_g="scratch")
    check_init_methods(parse_methods(["l2sp:1:0", "freezeg:1"]), init_d="scratch")


def test_methods_that_copy_the_source_prepare_before_methods_that_change_it() -> None:
    from types import SimpleNamespace

    import torch

    from gantl.models.registry import build
    from gantl.transfer.base import prepare_methods

    torch.manual_seed(0)
    G = build("dcgan", "G", dict(z_dim=8, img_resolution=32, ngf=8))
    D = build("dcgan", "D", dict(img_resolution=32, ndf=8))
    source_const = G.blocks[0].conv.weight.detach().clone()
    methods = parse_methods(["adafm:5", "l2sp:1:0", "glo"])
    methods[2].bind_dataset(range(7))
    prepare_methods(methods, G, D, SimpleNamespace())
    assert not torch.equal(G.blocks[0].conv.weight, source_const)  # adafm re-initialised the 4x4 block ...
    assert torch.equal(methods[1].anchors["G"]["blocks.0.conv.weight"], source_const)  # ... after l2sp anchored it
    assert G.glo_latents.requires_grad and G.glo_latents.shape == (7, 8)
