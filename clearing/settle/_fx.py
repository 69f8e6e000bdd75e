"""Currency conversion for the workbooks: exact integers, rounded once (half away from zero).

Rates come from the work folder's ``rates/fx`` table (units of a currency per 1 SDR, an integer
with a scale), the one valid on the date asked, converted by :func:`clearing.money.convert` (the
rate stage's rule too): ``amount`` in currency C at scale ``a`` is
``amount × r_dst × 10**(s_src + m) / (r_src × 10**(a + s_dst))`` units of ``10**-m`` of the
target, rounded half up once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from clearing.errors import ConfigError
from clearing.money import convert
from clearing.rating.validity import valid_on
from clearing.settle._lake import SDR_SCALE

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date

    from clearing.settle._lake import Lake

__all__ = ["Fx", "Rate"]


@dataclass(frozen=True)
class Rate:
    """One row of the fx table: ``rate / 10**scale`` units of ``currency`` per SDR."""

    currency: str
    rate: int
    scale: int
    valid_from: date
    valid_to: date | None
    source: str
    version: str

    @property
    def value(self) -> Decimal:
        """The rate as an exact Decimal."""
        return Decimal(self.rate).scaleb(-self.scale)


@dataclass
class Fx:
    """The fx table of a work folder, and the rates used so far (for the workbooks)."""

    rates: list[Rate]
    used: dict[tuple[str, date], Rate] = field(default_factory=dict)
    rates_dir: str = "rates"

    @classmethod
    def load(cls, lake: Lake) -> Fx:
        """Read ``fx_rates`` of ``lake``."""
        rows = lake.rows(
            "SELECT currency, rate, rate_scale, valid_from, valid_to, source, version "
            "FROM fx_rates ORDER BY currency, valid_from"
        )
        rates = [
            Rate(
                r["currency"],
                int(r["rate"]),
                int(r["rate_scale"]),
                r["valid_from"],
                r["valid_to"],
                r["source"] or "",
                r["version"] or "",
            )
            for r in rows
        ]
        return cls(rates, rates_dir=str(lake.wd.rates))

    def rate(self, currency: str, day: date) -> Rate:
        """The rate of ``currency`` valid on ``day``.

        Raises:
            ConfigError: the fx table has no such rate.
        """
        for r in self.rates:
            if r.currency == currency and valid_on(r.valid_from, r.valid_to, day):
                if currency != "SDR":
                    self.used[(currency, day)] = r
                return r
        msg = (
            f"rates table `fx` has no rate for {currency} valid on {day}: add a row to "
            f"`{self.rates_dir}/sources/fx.csv` and run `clearing rates import`"
        )
        raise ConfigError(msg)

    def convert(self, amount: int, scale: int, src: str, dst: str, m: int, day: date) -> int:
        """``amount / 10**scale`` of ``src`` in units of ``10**-m`` of ``dst`` (one rounding)."""
        if src == dst:
            return convert(amount, scale, 1, 0, 1, 0, m)
        a = self.rate(src, day)
        b = self.rate(dst, day)
        return convert(amount, scale, a.rate, a.scale, b.rate, b.scale, m)

    def sdr(self, amount: int, scale: int, currency: str, day: date) -> Decimal:
        """An amount in SDR with :data:`SDR_SCALE` decimals."""
        return Decimal(self.convert(amount, scale, currency, "SDR", SDR_SCALE, day)).scaleb(
            -SDR_SCALE
        )

    def sdr_parts(
        self, parts: Sequence[int], scale: int, currency: str, day: date
    ) -> list[Decimal]:
        """Several amounts that add up in the currency, in SDR, adding up in SDR too.

        Each part is the difference of the converted running totals (cumulative rounding):
        the parts' SDR values sum to the SDR value of their sum, exactly, and each differs
        from its own conversion by at most one unit of the last decimal.
        """
        out: list[Decimal] = []
        running = 0
        before = 0
        for p in parts:
            running += p
            now = self.convert(running, scale, currency, "SDR", SDR_SCALE, day)
            out.append(Decimal(now - before).scaleb(-SDR_SCALE))
            before = now
        return out
