"""Order lines for a block of orders: product, quantity, unit price and discount, vectorised.

Each block of :data:`BLOCK_ORDERS` orders draws from its own generator, derived from the seed and
the block number, so the lines do not depend on how many blocks are written per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salesbi.generate.dimensions import Catalogue, Clientele
from salesbi.generate.orders import OrderPlan

BLOCK_ORDERS = 20_000  # orders per random block (≈ 90k lines)
LINES_STREAM = 1  # spawn-key namespace of the per-block generators
FAVOURITE_SHARE = 0.55  # share of a customer's lines from their favourite product line
DISCOUNTS: tuple[float, ...] = (0.0, 0.05, 0.10, 0.15)
DISCOUNT_SHARES: tuple[float, ...] = (0.72, 0.14, 0.09, 0.05)
PRICE_CONCESSION = 0.05  # unit price = list price × U(1 − this, 1)


@dataclass(frozen=True)
class LineBlock:
    """Order lines of orders ``[first_order, first_order + len(lines_per_order))``."""

    order: np.ndarray  # int64 order index (global), one per line
    line_number: np.ndarray  # int64, 1.. within the order
    product: np.ndarray  # int64 index into the catalogue's products
    quantity: np.ndarray  # int64
    unit_price: np.ndarray  # float64, rounded to cents
    discount: np.ndarray  # float64


def block_generator(seed: int, block: int) -> np.random.Generator:
    """Return the generator of line block ``block``: PCG64 from the seed's spawn key (LINES_STREAM, block)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(LINES_STREAM, block))))


class ProductSampler:
    """Draws a product of a given product line in proportion to the product weights."""

    def __init__(self, catalogue: Catalogue) -> None:
        weight = catalogue.product_weight
        line = catalogue.product_line_index
        lines = len(catalogue.line_popularity)
        self.cumulative = np.concatenate(([0.0], np.cumsum(weight)))
        self.first = np.array([np.flatnonzero(line == i)[0] for i in range(lines)])
        self.last = np.array([np.flatnonzero(line == i)[-1] for i in range(lines)])
        self.low = self.cumulative[self.first]
        self.total = self.cumulative[self.last + 1] - self.low
        best = [
            self.first[i] + int(np.argmax(weight[self.first[i] : self.last[i] + 1])) for i in range(lines)
        ]
        self.best = np.array(best)
        self.weight = weight

    def draw(self, rng: np.random.Generator, line: np.ndarray) -> np.ndarray:
        """Return one product index per entry of ``line`` (never a product of weight 0)."""
        x = self.low[line] + rng.random(len(line)) * self.total[line]
        product = np.searchsorted(self.cumulative, x, side="right") - 1
        product = np.clip(product, self.first[line], self.last[line])
        return np.where(self.weight[product] > 0, product, self.best[line])


def build_lines(
    rng: np.random.Generator,
    plan: OrderPlan,
    first_order: int,
    stop_order: int,
    clients: Clientele,
    catalogue: Catalogue,
    sampler: ProductSampler,
) -> LineBlock:
    """Return the order lines of orders ``[first_order, stop_order)`` of ``plan``."""
    per_order = plan.lines[first_order:stop_order].astype("int64")
    total = int(per_order.sum())
    local = np.repeat(np.arange(len(per_order)), per_order)
    starts = np.concatenate(([0], np.cumsum(per_order)[:-1]))
    line_number = np.arange(total) - starts[local] + 1
    customer = plan.customer[first_order:stop_order][local]

    cum_pop = np.cumsum(catalogue.line_popularity)
    drawn_line = np.minimum(np.searchsorted(cum_pop, rng.random(total), side="right"), len(cum_pop) - 1)
    favourite = rng.random(total) < FAVOURITE_SHARE
    line = np.where(favourite, clients.favourite_line[customer], drawn_line)
    product = sampler.draw(rng, line)

    mean_quantity = catalogue.line_quantity[line] * clients.value_factor[customer]
    quantity = 1 + rng.poisson(np.maximum(mean_quantity - 1.0, 0.0))
    concession = 1.0 - PRICE_CONCESSION * rng.random(total)
    unit_price = np.round(catalogue.product_list_price[product] * concession, 2)
    discount = np.asarray(DISCOUNTS)[rng.choice(len(DISCOUNTS), size=total, p=DISCOUNT_SHARES)]
    return LineBlock(
        order=first_order + local,
        line_number=line_number.astype("int64"),
        product=product.astype("int64"),
        quantity=quantity.astype("int64"),
        unit_price=unit_price,
        discount=discount,
    )
