"""Recycling allocation against a worked example done by hand (REFERENCE.md §4).

The material, per kg (kg CO2e/kg unless noted):
    Ev = 2.0, E_recycled = 0.5, E_recyclingEoL = 0.4, E*v = Ev = 2.0, E_D = 0.1,
    E_ER = 0.8, LHV = 30 MJ/kg, X_ER,heat = 0.2, X_ER,elec = 0.1,
    E_SE,heat = 0.07 kg/MJ, E_SE,elec = 0.2 kg/MJ.
Parameters: R1 = 0.3, R2 = 0.4, R3 = 0.2, A = 0.5, B = 0, Qsin/Qp = 0.9, Qsout/Qp = 0.8.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from lca.errors import RecyclingParameterError
from lca.recycling import (
    CffParameters,
    MaterialEmissions,
    RecyclingMethod,
    TermKind,
    avoided_burden,
    circular_footprint,
    cut_off,
)

EMISSIONS = MaterialEmissions(
    e_v=2.0,
    e_recycled=0.5,
    e_recycling_eol=0.4,
    e_disposal=0.1,
    e_energy_recovery=0.8,
    lhv=30.0,
    x_er_heat=0.2,
    x_er_elec=0.1,
    e_se_heat=0.07,
    e_se_elec=0.2,
)
PARAMETERS = CffParameters(r1=0.3, r2=0.4, r3=0.2, a=0.5, b=0.0, qsin_qp=0.9, qsout_qp=0.8)

# Energy part, the same whenever B = 0 and R3 = 0.2:
#   burden  (1−0)·0.2·0.8          = 0.16
#   heat    −(1−0)·0.2·30·0.2·0.07 = −0.084
#   elec    −(1−0)·0.2·30·0.1·0.2  = −0.12
ENERGY_CREDITS = -0.084 - 0.12


def test_cut_off_charges_recycled_content_its_recycling_and_gives_no_credit() -> None:
    result = cut_off(EMISSIONS, PARAMETERS)
    # (1−0.3)·2.0 = 1.4; 0.3·0.5 = 0.15; (1−0.4)·0.1 = 0.06  → 1.61
    assert result.method is RecyclingMethod.CUT_OFF
    assert result.burden == pytest.approx(1.61)
    assert result.avoided == 0.0
    assert [t.value for t in result.terms] == pytest.approx([1.4, 0.15, 0.06])


def test_avoided_burden_charges_input_as_virgin_and_reports_the_credit_apart() -> None:
    result = avoided_burden(EMISSIONS, PARAMETERS)
    # burden: 2.0 (all input as virgin, R1 ignored) + (1−0.4)·0.1 = 2.06
    # avoided: −0.4·(2.0 − 0.4) = −0.64
    assert result.burden == pytest.approx(2.06)
    assert result.avoided == pytest.approx(-0.64)
    assert result.formula_total == pytest.approx(1.42)


def test_circular_footprint_worked_example_term_by_term() -> None:
    result = circular_footprint(EMISSIONS, PARAMETERS)
    values = {t.name: t.value for t in result.terms}
    assert values == pytest.approx(
        {
            "virgin input": 1.4,  # (1−0.3)·2.0
            "recycled input, recycling share": 0.075,  # 0.3·0.5·0.5
            "recycled input, virgin share": 0.27,  # 0.3·(1−0.5)·2.0·0.9
            "recycling at end of life": 0.08,  # (1−0.5)·0.4·0.4
            "virgin material substituted": -0.32,  # −(1−0.5)·0.4·2.0·0.8
            "energy recovery": 0.16,
            "heat substituted": -0.084,
            "electricity substituted": -0.12,
            "disposal": 0.04,  # (1−0.4−0.2)·0.1
        }
    )
    # burden 1.4 + 0.075 + 0.27 + 0.08 + 0.16 + 0.04 = 2.025; avoided −0.32 − 0.204 = −0.524
    assert result.burden == pytest.approx(2.025)
    assert result.avoided == pytest.approx(-0.524)
    assert result.formula_total == pytest.approx(2.025 - 0.524)
    assert {t.name for t in result.terms if t.kind is TermKind.AVOIDED} == {
        "virgin material substituted",
        "heat substituted",
        "electricity substituted",
    }
    assert all(t.value >= 0 for t in result.terms if t.kind is TermKind.BURDEN)
    assert result.parameters is PARAMETERS
    assert result.emissions is EMISSIONS


@pytest.mark.parametrize(
    ("changes", "burden", "avoided"),
    [
        # A = 0.2: 1.4 + 0.3·0.2·0.5 (0.03) + 0.3·0.8·2.0·0.9 (0.432) + 0.8·0.4·0.4 (0.128)
        #          + 0.16 + 0.04 = 2.19;  avoided −0.8·0.4·2.0·0.8 (−0.512) − 0.204 = −0.716
        ({"a": 0.2}, 2.19, -0.512 + ENERGY_CREDITS),
        # A = 0.8: 1.4 + 0.12 + 0.3·0.2·2.0·0.9 (0.108) + 0.2·0.4·0.4 (0.032) + 0.16 + 0.04
        #          = 1.86;  avoided −0.2·0.4·2.0·0.8 (−0.128) − 0.204 = −0.332
        ({"a": 0.8}, 1.86, -0.128 + ENERGY_CREDITS),
        # R1 = 0: 2.0 + 0.08 + 0.16 + 0.04 = 2.28; avoided unchanged −0.524
        ({"r1": 0.0}, 2.28, -0.32 + ENERGY_CREDITS),
        # R2 = 0: 1.4 + 0.075 + 0.27 + 0.16 + (1−0−0.2)·0.1 (0.08) = 1.985; avoided −0.204
        ({"r2": 0.0}, 1.985, ENERGY_CREDITS),
    ],
)
def test_circular_footprint_at_the_extremes(
    changes: dict[str, float], burden: float, avoided: float
) -> None:
    result = circular_footprint(EMISSIONS, dataclasses.replace(PARAMETERS, **changes))
    assert result.burden == pytest.approx(burden)
    assert result.avoided == pytest.approx(avoided)


def test_without_recycling_or_recovery_all_three_methods_agree() -> None:
    none = CffParameters(r1=0.0, r2=0.0)
    # Ev + E_D = 2.0 + 0.1, no credit, whatever the method
    for method in (cut_off, avoided_burden, circular_footprint):
        result = method(EMISSIONS, none)
        assert result.burden == pytest.approx(2.1), method.__name__
        assert result.avoided == 0.0, method.__name__


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"a": 0.1}, "A"),
        ({"a": 0.9}, "A"),
        ({"b": 1.5}, "B"),
        ({"r1": -0.1}, "R1"),
        ({"r1": math.nan}, "R1"),
        ({"r2": 1.2}, "R2"),
        ({"r3": -0.01}, "R3"),
        ({"r2": 0.6, "r3": 0.5}, "R2 + R3"),
        ({"qsin_qp": 1.1}, "Qsin/Qp"),
        ({"qsout_qp": -0.2}, "Qsout/Qp"),
    ],
)
def test_cff_parameters_out_of_range_raise_naming_the_parameter(
    values: dict[str, float], name: str
) -> None:
    arguments: dict[str, Any] = {"r1": 0.3, "r2": 0.4} | values
    with pytest.raises(RecyclingParameterError) as error:
        CffParameters(**arguments)
    assert error.value.field == (name,)
    assert error.value.message.startswith(name)


def test_shares_summing_to_one_are_accepted_despite_rounding() -> None:
    assert CffParameters(r1=0.0, r2=0.7, r3=0.3).r2 == 0.7  # 0.7 + 0.3 in binary ≈ 1


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"x_er_heat": 1.2}, "x_er_heat"),
        ({"lhv": -1.0}, "lhv"),
        ({"e_disposal": math.inf}, "e_disposal"),
        ({"x_er_heat": 0.7, "x_er_elec": 0.4}, "x_er_heat + x_er_elec"),
    ],
)
def test_emissions_out_of_range_raise_naming_the_parameter(
    values: dict[str, float], name: str
) -> None:
    with pytest.raises(RecyclingParameterError) as error:
        dataclasses.replace(EMISSIONS, **values)
    assert error.value.field == (name,)
