"""The shared plug-in registry behind `--method` and `splatlab predict`: entry points, aliases, errors."""
import pytest

import splatlab.plugins as plugins
from splatlab.plugins import Registry


class Base:
    pass


class Good(Base):
    pass


class NotABase:
    pass


class FakeEntryPoint:
    def __init__(self, name, target):
        self.name, self.target = name, target

    def load(self):
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


@pytest.fixture
def registry(monkeypatch):
    eps = [FakeEntryPoint("good", Good), FakeEntryPoint("broken", ImportError("no module named 'gone'\n  (x)")),
           FakeEntryPoint("wrong", NotABase)]
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: eps if group == "test.group" else [])
    return Registry("thing", Base, "test.group", ())


def test_entry_points_register_and_broken_ones_are_reported_on_lookup(registry):
    assert registry.names() == ["good"]
    assert registry.get("good") is Good and Good.name == "good"
    with pytest.raises(ValueError, match=r"^thing 'broken' failed to load from its package: ImportError: "
                                         r"no module named 'gone' \(x\)$"):
        registry.get("broken")
    with pytest.raises(ValueError, match="thing 'wrong' failed to load .*TypeError.*not a .*Base subclass"):
        registry.get("wrong")
    with pytest.raises(ValueError, match=r"^unknown thing 'nope' \(choose good\)$"):
        registry.get("nope")


def test_aliases_and_direct_registration(registry):
    @registry.register("other", aliases=("alias",))
    class Other(Base):
        pass

    assert registry.get("alias") is Other and registry.names() == ["good", "other"]
    with pytest.raises(TypeError, match="register thing 'bad'"):
        registry.register("bad")(NotABase)


def test_empty_registry_says_so(monkeypatch):
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [])
    with pytest.raises(ValueError, match=r"unknown thing 'x' \(choose none installed\)"):
        Registry("thing", Base, "test.group", ()).get("x")
