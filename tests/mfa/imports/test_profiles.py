"""Mapping profiles: the shipped ones load, and a malformed one is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mfa.imports.errors import ProfileError
from mfa.imports.profiles import MovementType, available, load_profile
from mfa.settings import REPOSITORY_DATASETS


def test_the_shipped_profiles_load_and_cover_the_four_movement_types() -> None:
    names = available(REPOSITORY_DATASETS)
    assert names == ["generic", "odoo_stock_move", "sap_mb51"]
    for name in names:
        profile = load_profile(name, datasets=REPOSITORY_DATASETS)
        types = {rule.type for rule in profile.movements}
        assert {MovementType.RECEIPT, MovementType.ISSUE, MovementType.SCRAP} <= types
        assert MovementType.TRANSFER in types
        assert profile.key


def test_sap_needs_document_year_and_item_as_its_natural_key() -> None:
    sap = load_profile("sap_mb51", datasets=REPOSITORY_DATASETS)
    assert sap.key == ("Material Document", "Material Doc.Year", "Material Doc.Item")
    assert sap.enterprise is None  # one plant's books: the caller names the enterprise


def test_an_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match="use one of generic, odoo_stock_move, sap_mb51"):
        load_profile("mb52", datasets=REPOSITORY_DATASETS)


def test_a_profile_file_with_an_ambiguous_rule_is_refused(tmp_path: Path) -> None:
    data = json.loads((REPOSITORY_DATASETS / "import_profiles" / "generic.json").read_text())
    data["movements"][0]["prefix"] = "rec"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="exactly one of 'equals' and 'prefix'"):
        load_profile(str(path), datasets=REPOSITORY_DATASETS)
