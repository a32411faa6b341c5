"""Prices: an environment's ``cost:`` block over OpenCost's published defaults.

OpenCost's defaults (``configs/default.json`` in github.com/opencost/opencost, "Default prices
based on GCP us-central1"): CPU 0.031611 per vCPU-hour, RAM 0.004237 per GiB-hour, GPU 0.95
per GPU-hour, storage 0.00005479452 per GiB-hour (0.04 per GiB-month). That file prices
forwarding rules at 0.0; a load balancer here defaults to GCP's forwarding-rule price, 0.025 per
hour. A month is 730 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..model.fields import HOURS_PER_MONTH, PRICE_UNITS
from ..model.model import CostSettings

HOURS = Decimal(HOURS_PER_MONTH)
DEFAULT_CURRENCY = "USD"
DEFAULT_PRICES: dict[str, Decimal] = {
    "cpu": Decimal("0.031611"), "memory": Decimal("0.004237"), "gpu": Decimal("0.95"),
    "storage": Decimal("0.00005479452"), "loadBalancer": Decimal("0.025")}
UNITS = PRICE_UNITS
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


@dataclass(frozen=True, slots=True)
class Prices:
    """Hourly prices of one environment, the currency, and the DaemonSet node count."""

    currency: str
    hourly: tuple[tuple[str, Decimal], ...]   # key → price per unit-hour, keys of UNITS
    nodes: int | None = None
    defaults: tuple[str, ...] = ()            # keys priced at OpenCost's defaults

    def of(self, key: str) -> Decimal:
        return dict(self.hourly)[key]


def prices_of(settings: CostSettings) -> Prices:
    """The prices an environment's resolved ``cost:`` settings give (the loader has checked
    the numbers)."""
    given = {key: Decimal(text.value) for key, text in settings.prices}
    hourly = tuple((key, given.get(key, DEFAULT_PRICES[key])) for key in UNITS)
    return Prices(settings.currency.value if settings.currency else DEFAULT_CURRENCY, hourly,
                  int(Decimal(settings.nodes.value)) if settings.nodes is not None else None,
                  tuple(key for key in UNITS if key not in given))
