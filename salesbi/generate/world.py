"""The fixed vocabulary of the sample company: offices, customer cities, product lines and names.

The company is "Velocity Cycles", a bicycle wholesaler selling to shops in three territories.
Nothing here is random; :mod:`salesbi.generate.dimensions` draws from these lists with the
seeded generator. No string contains a comma, quote or newline, so the CSVs need no quoting.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPANY_DOMAIN = "velocity-cycles.example"


@dataclass(frozen=True)
class Office:
    """One sales office and the territory its reps cover."""

    office_id: str
    city: str
    state: str | None
    country: str
    territory: str
    postal_code: str


@dataclass(frozen=True)
class City:
    """A city customers are in; ``weight`` is its relative share of customers."""

    city: str
    state: str | None
    country: str
    territory: str
    postal_code: str
    weight: float


@dataclass(frozen=True)
class ProductLine:
    """A product line with its true margin, popularity and price/quantity ranges."""

    product_line_id: str
    name: str
    description: str
    margin: float  # 1 - unit_cost / list_price
    popularity: float  # relative share of order lines
    price_low: float
    price_high: float
    quantity_mean: float  # mean units per order line for a value factor of 1
    products: int


OFFICES: tuple[Office, ...] = (
    Office("OF01", "San Francisco", "CA", "USA", "AMER", "94080"),
    Office("OF02", "Boston", "MA", "USA", "AMER", "02107"),
    Office("OF03", "Toronto", "ON", "Canada", "AMER", "M5H 2N2"),
    Office("OF04", "London", None, "UK", "EMEA", "EC2N 1HN"),
    Office("OF05", "Paris", None, "France", "EMEA", "75116"),
    Office("OF06", "Berlin", None, "Germany", "EMEA", "10117"),
    Office("OF07", "Tokyo", None, "Japan", "APAC", "102-8578"),
    Office("OF08", "Sydney", "NSW", "Australia", "APAC", "2010"),
)

CITIES: tuple[City, ...] = (
    City("New York", "NY", "USA", "AMER", "10022", 9.0),
    City("Chicago", "IL", "USA", "AMER", "60601", 5.0),
    City("Los Angeles", "CA", "USA", "AMER", "90003", 6.0),
    City("Seattle", "WA", "USA", "AMER", "98101", 4.0),
    City("Denver", "CO", "USA", "AMER", "80202", 3.0),
    City("Vancouver", "BC", "Canada", "AMER", "V6B 4Y8", 3.0),
    City("Montreal", "QC", "Canada", "AMER", "H1J 1C3", 2.0),
    City("Mexico City", None, "Mexico", "AMER", "06600", 2.0),
    City("Manchester", None, "UK", "EMEA", "M1 1AE", 4.0),
    City("Lyon", None, "France", "EMEA", "69001", 3.0),
    City("Munich", "BY", "Germany", "EMEA", "80331", 4.0),
    City("Hamburg", None, "Germany", "EMEA", "20095", 3.0),
    City("Madrid", None, "Spain", "EMEA", "28023", 3.0),
    City("Milan", None, "Italy", "EMEA", "20121", 3.0),
    City("Amsterdam", None, "Netherlands", "EMEA", "1012 AB", 4.0),
    City("Oslo", None, "Norway", "EMEA", "0150", 2.0),
    City("Stockholm", None, "Sweden", "EMEA", "111 52", 2.0),
    City("Copenhagen", None, "Denmark", "EMEA", "1050", 2.0),
    City("Osaka", None, "Japan", "APAC", "530-0001", 3.0),
    City("Melbourne", "VIC", "Australia", "APAC", "3004", 3.0),
    City("Auckland", None, "New Zealand", "APAC", "1010", 2.0),
    City("Singapore", None, "Singapore", "APAC", "079903", 3.0),
)

PRODUCT_LINES: tuple[ProductLine, ...] = (
    ProductLine("PL01", "Road Bikes", "Lightweight road and gravel bikes.", 0.32, 0.13, 900, 4200, 2.0, 16),
    ProductLine(
        "PL02", "Mountain Bikes", "Hardtail and full-suspension MTBs.", 0.36, 0.15, 800, 3800, 2.0, 16
    ),
    ProductLine("PL03", "E-Bikes", "Pedal-assist city and trekking bikes.", 0.22, 0.09, 1900, 5200, 1.6, 12),
    ProductLine("PL04", "Components", "Drivetrain brakes wheels and cockpit.", 0.45, 0.22, 25, 450, 8.0, 20),
    ProductLine("PL05", "Apparel", "Jerseys shorts jackets and gloves.", 0.55, 0.17, 20, 180, 10.0, 14),
    ProductLine("PL06", "Accessories", "Lights locks bottles and bags.", 0.62, 0.17, 8, 120, 12.0, 14),
    ProductLine("PL07", "Kids Bikes", "Balance bikes and kids' bikes.", 0.40, 0.07, 150, 600, 3.0, 8),
)

PRODUCT_WORDS: dict[str, tuple[str, ...]] = {
    "PL01": ("Aero", "Endurance", "Gravel", "Sprint", "Climber", "Allroad", "Tempo", "Granfondo"),
    "PL02": ("Trail", "Enduro", "Ridge", "Summit", "Rockhopper", "Flow", "Canyon", "Switchback"),
    "PL03": ("Commuter E", "Trekking E", "Urban E", "Cargo E", "Folding E", "Tour E"),
    "PL04": ("Chainset", "Cassette", "Disc Brake", "Wheelset", "Handlebar", "Saddle", "Derailleur"),
    "PL05": ("Jersey", "Bib Shorts", "Rain Jacket", "Gloves", "Base Layer", "Socks", "Cap"),
    "PL06": ("Front Light", "Rear Light", "U-Lock", "Bottle", "Saddle Bag", "Pump", "Bell"),
    "PL07": ("Balance Bike", "Kids 16in", "Kids 20in", "Kids 24in"),
}

VENDORS: tuple[str, ...] = (
    "Alpenrad Werke",
    "Pacific Frameworks",
    "Nordic Components",
    "Kinetic Trading",
    "Velo Textiles",
    "Brightway Lighting",
    "Kestrel Imports",
)

FIRST_NAMES: tuple[str, ...] = (
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Grace", "Hiro", "Ines", "Jonas",
    "Kari", "Liam", "Maria", "Noah", "Olivia", "Pierre", "Quinn", "Rosa", "Sven", "Tara",
    "Umar", "Vera", "Will", "Yuki", "Zoe", "Marco", "Lena", "Omar", "Priya", "Theo",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Andersen", "Brown", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito",
    "Jensen", "Kowalski", "Larsen", "Martin", "Nakamura", "Olsen", "Patel", "Rossi", "Schmidt",
    "Tanaka", "Urban", "Varga", "Weber", "Young", "Zimmer", "Moreau", "Silva", "Keller", "Novak",
)  # fmt: skip

SHOP_PREFIXES: tuple[str, ...] = (
    "North", "Alpine", "Harbor", "Summit", "Urban", "Coastal", "Velo", "Pedal", "Chain", "Gear",
    "Spoke", "Trail", "Ridge", "River", "Metro", "Peak", "Cobble", "Granite", "Maple", "Comet",
)  # fmt: skip

SHOP_CORES: tuple[str, ...] = (
    "Cycles", "Bikes", "Wheels", "Sports", "Outfitters", "Riders", "Bike Works", "Velo Shop",
    "Cycle Hub", "Bike Depot",
)  # fmt: skip

SHOP_SUFFIXES: tuple[str, ...] = ("Ltd", "Inc", "GmbH", "AB", "SA", "Co", "and Sons", "Group")
