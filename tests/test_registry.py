import pytest

from vireid.registry import DATASETS, METHODS, PROTOCOLS, Registry, RegistryError


def test_register_get_names():
    reg: Registry = Registry("thing")
    reg.register("alpha_one")(1)
    reg.register("beta")(2)
    assert reg.get("beta") == 2
    assert reg.names() == ["alpha_one", "beta"]
    assert "alpha_one" in reg and len(reg) == 2


def test_unknown_name_suggests_close_matches():
    reg: Registry = Registry("thing")
    reg.register("sysu_mm01")(1)
    with pytest.raises(RegistryError, match=r"unknown thing 'sysu_mm1'.*Did you mean 'sysu_mm01'"):
        reg.get("sysu_mm1")


def test_duplicate_and_bad_names_raise():
    reg: Registry = Registry("thing")
    reg.register("a")(1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a")(2)
    with pytest.raises(ValueError, match="lower_snake_case"):
        reg.register("BadName")


def test_builtin_registries_are_populated():
    import vireid.data.datasets
    import vireid.data.protocols
    import vireid.methods  # noqa: F401

    assert {"sysu_mm01", "regdb", "llcm", "folder"} <= set(DATASETS.names())
    assert {"agw", "caj"} <= set(METHODS.names())
    assert {"sysu/all/single", "sysu/indoor/multi", "regdb/t2v", "llcm/v2i"} <= set(
        PROTOCOLS.names()
    )
