"""The Ellen MacArthur Foundation's Material Circularity Indicator of a product.

Material Circularity Indicator, methodology (Ellen MacArthur Foundation and Granta Design,
2015/2019), as transcribed in REFERENCE.md §3, for a product of mass M (kg):

    V   = M (1 − F_R − F_U − F_S)                 virgin feedstock
    W0  = M (1 − C_R − C_U − C_C − C_E)           unrecoverable waste at end of use
    W_C = M (1 − E_C) C_R                          waste of recycling the product
    W_F = M F_R (1 − E_F) / E_F                    waste of making its recycled feedstock
    W   = W0 + (W_F + W_C) / 2
    LFI = (V + W) / (2M + (W_F − W_C) / 2)         linear flow index, 0 (circular) … 1
    X   = (L / L_av) (U / U_av),  F(X) = 0.9 / X
    MCI = max(0, 1 − LFI · F(X))

An enterprise's MCI is the mean of its products' MCIs weighted by their mass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mfa.circularity.parameters import EndOfLife
from mfa.errors import QuantityError


@dataclass(frozen=True, slots=True)
class MciInputs:
    """A product's mass and feedstock shares (fractions of its mass), and its end of life."""

    mass: float
    recycled_feedstock: float
    reused_feedstock: float
    sustainable_bio_feedstock: float
    end_of_life: EndOfLife


@dataclass(frozen=True, slots=True)
class MciResult:
    """The terms of the formula (kg), so every step can be checked by hand."""

    inputs: MciInputs
    virgin: float
    unrecoverable: float
    recycling_waste: float
    feedstock_waste: float
    waste: float
    lfi: float
    utility: float
    mci: float


def material_circularity(inputs: MciInputs) -> MciResult:
    """MCI of one product (see the module docstring); raises ``QuantityError`` on bad shares."""
    m = inputs.mass
    f_r, f_u, f_s = (
        inputs.recycled_feedstock,
        inputs.reused_feedstock,
        inputs.sustainable_bio_feedstock,
    )
    eol = inputs.end_of_life
    if m <= 0:
        raise QuantityError(f"a product's mass must be positive to rate it, got {m}")
    if min(f_r, f_u, f_s) < 0 or f_r + f_u + f_s > 1 + 1e-12:
        raise QuantityError("feedstock shares F_R, F_U, F_S must be ≥ 0 and sum to at most 1")
    collected = (
        eol.collected_recycling
        + eol.collected_reuse
        + eol.collected_composting
        + eol.collected_energy
    )
    if collected > 1 + 1e-12:
        raise QuantityError("end-of-life shares C_R + C_U + C_C + C_E exceed 1")
    virgin = m * (1 - f_r - f_u - f_s)
    unrecoverable = m * (1 - collected)
    recycling_waste = m * (1 - eol.recycling_efficiency_eol) * eol.collected_recycling
    feedstock_waste = (
        m * f_r * (1 - eol.recycling_efficiency_feedstock) / eol.recycling_efficiency_feedstock
    )
    waste = unrecoverable + (feedstock_waste + recycling_waste) / 2
    lfi = (virgin + waste) / (2 * m + (feedstock_waste - recycling_waste) / 2)
    utility = eol.lifetime_ratio * eol.intensity_ratio
    return MciResult(
        inputs=inputs,
        virgin=virgin,
        unrecoverable=unrecoverable,
        recycling_waste=recycling_waste,
        feedstock_waste=feedstock_waste,
        waste=waste,
        lfi=lfi,
        utility=utility,
        mci=max(0.0, 1 - lfi * 0.9 / utility),
    )


def mass_weighted(results: Sequence[MciResult]) -> float | None:
    """Σ M_p · MCI_p / Σ M_p over products; None when there are none."""
    total = sum(r.inputs.mass for r in results)
    return sum(r.inputs.mass * r.mci for r in results) / total if total > 0 else None
