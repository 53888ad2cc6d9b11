"""Build one transaction file (the Online Retail layouts) from the classicmodels sample.

Every order line becomes an invoice line; a cancelled classicmodels order becomes its invoice
plus a ``C<order>`` credit note with the same lines negated, so net sales (gross − returns)
equal the seven-table run's net sales (which exclude cancelled orders). Order dates alternate
between ``m/d/yyyy H:MM`` and ``m/d/yy H:MM`` (one column, two formats); the lines of
``GUEST_ORDERS`` have no customer id (guest lines); the ``online_retail_ii`` layout writes customer
ids as ``363.0``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

LAYOUTS: dict[str, tuple[str, ...]] = {
    "online_retail": (
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ),
    "online_retail_ii": (
        "Invoice",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "Price",
        "Customer ID",
        "Country",
    ),
}
GUEST_ORDERS = ("10100", "10101")


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)


def write_transactions(classicmodels_dir: Path, out: Path, layout: str = "online_retail") -> pd.DataFrame:
    """Write ``out`` (a CSV in ``layout``) and return it as a frame of the canonical-named columns."""
    items = _read(classicmodels_dir / "orderdetails.csv")
    orders = _read(classicmodels_dir / "orders.csv")
    products = _read(classicmodels_dir / "products.csv")
    customers = _read(classicmodels_dir / "customers.csv")
    f = (
        items.merge(orders, on="orderNumber")
        .merge(products[["productCode", "productName"]], on="productCode")
        .merge(customers[["customerNumber", "country"]], on="customerNumber")
    )
    f["lineNumber"] = f["orderLineNumber"].astype(int)
    f = f.sort_values(["orderDate", "orderNumber", "lineNumber"], kind="stable")
    date = pd.to_datetime(f["orderDate"]) + pd.to_timedelta(f["orderNumber"].astype(int) % 12 + 8, unit="h")
    long = date.dt.month.astype(str) + "/" + date.dt.day.astype(str) + "/" + date.dt.strftime("%Y %H:%M")
    short = date.dt.month.astype(str) + "/" + date.dt.day.astype(str) + "/" + date.dt.strftime("%y %H:%M")
    f["date"] = long.where(f["orderNumber"].astype(int) % 2 == 0, short)
    # the second layout's public CSV writes ids as numbers (12346.0), as spreadsheet tools do
    suffix = ".0" if layout == "online_retail_ii" else ""
    f["customer"] = (f["customerNumber"] + suffix).where(~f["orderNumber"].isin(GUEST_ORDERS), "")
    rows = pd.DataFrame(
        {
            "invoice": f["orderNumber"],
            "stock": f["productCode"],
            "description": f["productName"],
            "quantity": f["quantityOrdered"].astype(int),
            "date": f["date"],
            "price": f["priceEach"],
            "customer": f["customer"],
            "country": f["country"],
        }
    )
    cancelled = f["status"].eq("Cancelled").to_numpy()
    notes = rows[cancelled].assign(
        invoice="C" + rows.loc[cancelled, "invoice"], quantity=-rows.loc[cancelled, "quantity"]
    )
    table = pd.concat([rows, notes], ignore_index=True)
    table.columns = list(LAYOUTS[layout])
    table.to_csv(out, index=False, quoting=csv.QUOTE_MINIMAL)
    return table
