"""lsexp.registry.by_name: the registries keep their declaration order and refuse a name twice."""

from collections import namedtuple

import pytest

from lsexp.analysis.posthoc import CALIBRATORS
from lsexp.analysis.selective import SCORES
from lsexp.registry import by_name
from lsexp.training.data import DATASETS
from lsexp.training.objectives import OBJECTIVES

Entry = namedtuple("Entry", "name value")


def test_by_name_keeps_order_and_maps_each_name_to_its_entry():
    a, b, c = Entry("b", 1), Entry("a", 2), Entry("c", 3)
    assert list(by_name(a, b, c).items()) == [("b", a), ("a", b), ("c", c)]


def test_by_name_refuses_a_name_declared_twice():
    with pytest.raises(ValueError, match="'a' is declared twice"):
        by_name(Entry("a", 1), Entry("b", 2), Entry("a", 3))


@pytest.mark.parametrize("registry", [DATASETS, OBJECTIVES, CALIBRATORS, SCORES])
def test_every_registry_is_keyed_by_its_entries_names(registry):
    assert registry and all(key == entry.name for key, entry in registry.items())
