"""Seeded generator of sample Toast nightly export trees (five CSVs per location and business date).

The tree has the SFTP layout `<root>/<export_id>/<YYYYMMDD>/<File>.csv` and carries the quirks
of real Toast files (Toast spec, section 1): M/D/YY 12-hour dates, `0E-8` zero tax,
19-digit ids, a trailing space in `Location`, voided lines that keep their prices, gift-card
sales, refunds that re-appear in a later day's PaymentDetails, and guests whose e-mail and
phone are written differently from one check to the next. Every guest is fake: names from a
short list, e-mails on reserved example domains, US phone numbers on the 555 and other
exchanges that `phonenumbers` accepts.

Each location is generated from its own random stream and its own block of ids, so locations
can be generated in parallel and the output is the same bytes for the same arguments. Days
are written one at a time: memory does not grow with the number of days.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import random
import re
import sys
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Protocol

ORDER_DETAILS = "OrderDetails.csv"
CHECK_DETAILS = "CheckDetails.csv"
PAYMENT_DETAILS = "PaymentDetails.csv"
ITEM_SELECTION_DETAILS = "ItemSelectionDetails.csv"
MODIFIERS_SELECTION_DETAILS = "ModifiersSelectionDetails.csv"

HEADERS: dict[str, tuple[str, ...]] = {
    ORDER_DETAILS: (
        "Location", "Order Id", "Order #", "Checks", "Opened", "# of Guests", "Tab Names",
        "Server", "Table", "Revenue Center", "Dining Area", "Service", "Dining Options",
        "Discount Amount", "Amount", "Tax", "Tip", "Gratuity", "Total", "Voided", "Paid",
        "Closed", "Duration (Opened to Paid)", "Order Source",
    ),
    CHECK_DETAILS: (
        "Location Code", "Opened Date", "Opened Time", "Item Description", "Server", "Tax",
        "Tender", "Check Id", "Check #", "Total", "Customer Family", "Table Size", "Discount",
        "Reason of Discount", "Link", "Customer Id", "Customer", "Customer Phone",
        "Customer Email",
    ),
    PAYMENT_DETAILS: (
        "Location", "Payment Id", "Order Id", "Order #", "Paid Date", "Order Date", "Check Id",
        "Check #", "Tab Name", "Server", "Table", "Dining Area", "Service", "Dining Option",
        "House Acct #", "Amount", "Tip", "Gratuity", "Total", "Swiped Card Amount",
        "Keyed Card Amount", "Amount Tendered", "Refunded", "Refund Date", "Refund Amount",
        "Refund Tip Amount", "Void User", "Void Approver", "Void Date", "Status", "Type",
        "Cash Drawer", "Card Type", "Other Type", "Email", "Phone", "Last 4 Card Digits",
        "Receipt", "V/MC/D Fees", "Room Info", "Source", "Last 4 Gift Card Digits",
        "First 5 Gift Card Digits",
    ),
    ITEM_SELECTION_DETAILS: (
        "Location", "Order Id", "Order #", "Sent Date", "Order Date", "Check Id", "Server",
        "Table", "Dining Area", "Service", "Dining Option", "Item Selection Id", "Item Id",
        "Master Id", "SKU", "PLU", "Menu Item", "Menu Subgroup(s)", "Menu Group", "Menu",
        "Sales Category", "Gross Price", "Discount", "Net Price", "Qty", "Tax", "Void?",
        "Deferred", "Tax Exempt", "Tax Inclusion Option", "Dining Option Tax", "Tab Name",
    ),
    MODIFIERS_SELECTION_DETAILS: (
        "Location", "Order Id", "Order #", "Sent Date", "Order Date", "Check Id", "Server",
        "Table", "Dining Area", "Service", "Dining Option", "Item Selection Id", "Modifier Id",
        "Master Id", "Modifier SKU", "Modifier PLU", "Modifier", "Option Group ID",
        "Option Group Name", "Parent Menu Selection Item ID", "Parent Menu Selection",
        "Sales Category", "Gross Price", "Discount", "Net Price", "Qty", "Void?",
        "Void Reason ID", "Void Reason",
    ),
}
EXPORT_FILES: tuple[str, ...] = tuple(HEADERS)

CENT = Decimal("0.01")
ITEM_TAX_PLACES = Decimal("1E-8")
ZERO = Decimal("0.00")
ONE = Decimal("1.0")

# Transactional ids: one block of a billion per location, so ids never collide across
# locations even when locations are generated in separate processes.
ID_BASE = 1_200_000_000_700_000_000
ID_BLOCK = 1_000_000_000
# Menu-level ids sit below the transactional range.
ITEM_MASTER_BASE = 1_200_000_000_012_000_000
ITEM_ID_BASE = 1_200_000_000_013_000_000
MODIFIER_MASTER_BASE = 1_200_000_000_014_000_000
MODIFIER_ID_BASE = 1_200_000_000_015_000_000
OPTION_GROUP_BASE = 1_200_000_000_016_000_000
VOID_REASON_BASE = 1_200_000_000_017_000_000
MAX_LOCATIONS = 999
FIRST_EXPORT_ID = 100_001

GIFT_CARD = "Gift Card"
BUSINESS_DAY_CLOSE = timedelta(hours=28)  # 04:00 of the next calendar day

# Shares of the things a reader of the tree should meet (per check unless said otherwise).
NO_IDENTITY_SHARE = 0.20
RECEIPT_ONLY_SHARE = 0.20  # of identified checks: identity only on PaymentDetails
SHARED_GUEST_SHARE = 0.10  # of identified checks: a guest who visits several locations
VOIDED_ORDER_SHARE = 0.015
VOIDED_LINE_SHARE = 0.02
GIFT_CARD_LINE_SHARE = 0.015
GIFT_CARD_ONLY_SHARE = 0.004
DISCOUNT_SHARE = 0.08
REFUND_SHARE = 0.03
SPLIT_ORDER_SHARE = 0.03  # orders with two checks
SPLIT_PAYMENT_SHARE = 0.12
ZIPF_EXPONENT = 1.07

# Monday..Sunday; the factors sum to 7 so the mean stays at checks_per_day.
WEEKDAY_FACTORS = (0.85, 0.85, 0.90, 1.00, 1.20, 1.25, 0.95)

LOCATION_NAMES = (
    ("Covington", "COV"), ("Newport", "NPT"), ("Florence", "FLO"), ("Bellevue", "BEL"),
    ("Fort Mitchell", "FTM"), ("Erlanger", "ERL"), ("Alexandria", "ALX"), ("Union", "UNI"),
    ("Highland Heights", "HHT"), ("Independence", "IND"),
)
TAX_RATES = (Decimal("0.06"), Decimal("0.0725"), Decimal("0.08875"))

FORENAMES = (
    "Ava", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sophia", "Elijah", "Isabella", "Lucas",
    "Mia", "Levi", "Amelia", "Asher", "Harper", "James", "Evelyn", "Leo", "Luna", "Grayson",
    "Camila", "Ezra", "Gianna", "Hudson", "Aria", "Ethan", "Scarlett", "Jack", "Penelope",
    "Aiden", "Chloe", "Owen", "Layla", "Wyatt", "Riley", "Miles", "Nora", "Caleb", "Zoë",
    "José", "Priya", "Kenji", "Fatima", "Tariq", "Ingrid", "Siobhan", "Dmitri", "Amara",
)
SURNAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "O'Brien", "Nguyen", "Patel", "Kim", "Okafor", "Lindqvist", "Novak", "Rossi", "Dubois",
)
EMAIL_DOMAINS = ("example.com", "example.org", "mail.test", "inbox.test")
AREA_CODES = (
    "859", "513", "212", "312", "415", "617", "646", "718", "202", "305",
    "404", "503", "614", "702", "773", "206", "303", "512", "615", "919",
)
EXCHANGES = ("555", "234", "267", "318", "402", "489", "523", "614", "728", "836")

# name, menu group, menu, sales category, price, PLU, option groups, taxable, halvable, weight
MENU = (
    ("(4) Dry Ribs", "Lunch", "Lunch Menu", "Food", "18.95", "82149", (), True, False, 3.0),
    ("Wings", "Appetizers", "Dinner Menu", "Food", "13.50", "1101", ("Sauce",), True, True, 5.0),
    ("Loaded Nachos", "Appetizers", "Dinner Menu", "Food", "12.95", "1102", (), True, True, 3.0),
    ("Soft Pretzel", "Appetizers", "Dinner Menu", "Food", "9.50", "", (), True, False, 2.0),
    ("Fried Pickles", "Appetizers", "Dinner Menu", "Food", "8.95", "", (), True, False, 2.0),
    ("Classic Burger", "Entrees", "Dinner Menu", "Food", "15.95", "2101",
     ("Temperature", "Add-ons", "Side Choice"), True, False, 7.0),
    ("Chicken Sandwich", "Entrees", "Dinner Menu", "Food", "14.50", "2102",
     ("Add-ons", "Side Choice"), True, False, 5.0),
    ("Ribeye Steak", "Entrees", "Dinner Menu", "Food", "32.00", "2103", ("Temperature",),
     True, False, 2.5),
    ("Fish Tacos", "Entrees", "Dinner Menu", "Food", "16.25", "2104", ("Side Choice",),
     True, False, 3.0),
    ("Caesar Salad", "Salads", "Lunch Menu", "Food", "11.95", "", ("Add-ons",), True, False, 3.0),
    ("Mac & Cheese", "Entrees", "Dinner Menu", "Food", "12.50", "", (), True, False, 2.0),
    ("Family Feast", "Family Meals", "Dinner Menu", "Food", "64.00", "3001",
     ("Feast Sides",), True, False, 1.2),
    ("Kids Tenders", "Kids", "Kids Menu", "Food", "7.95", "", (), True, False, 1.5),
    ("Fries", "Sides", "Dinner Menu", "Food", "4.50", "", (), True, False, 3.0),
    ("Side Salad", "Sides", "Dinner Menu", "Food", "5.00", "", (), True, False, 1.5),
    ("Brownie Sundae", "Desserts", "Dessert Menu", "Food", "8.50", "", (), True, False, 1.5),
    ("Cheesecake", "Desserts", "Dessert Menu", "Food", "7.95", "", (), True, False, 1.2),
    ("Soda", "Soda/Tea", "Beverages", "NA Beverage", "2.95", "", ("Drink Size",), True, False,
     6.0),
    ("Strawberry Kiwi Tea", "Soda/Tea", "Beverages", "NA Beverage", "3.50", "1365", (), True,
     False, 3.0),
    ("Coffee", "Hot Drinks", "Beverages", "NA Beverage", "2.75", "", (), True, False, 2.0),
    ("Lemonade", "Soda/Tea", "Beverages", "NA Beverage", "3.25", "", ("Drink Size",), True,
     False, 2.5),
    ("Kids Milk", "Kids", "Kids Menu", "NA Beverage", "1.95", "", (), False, False, 0.8),
    ("Draft Beer", "Beer", "Bar Menu", "Alcohol", "6.50", "4101", (), True, False, 5.0),
    ("House Wine", "Wine", "Bar Menu", "Alcohol", "9.00", "", (), True, False, 3.0),
    ("Margarita", "Cocktails", "Bar Menu", "Alcohol", "11.00", "", ("Spirit Upgrade",), True,
     False, 3.0),
    ("Old Fashioned", "Cocktails", "Bar Menu", "Alcohol", "12.50", "", (), True, False, 2.0),
    ("Logo T-Shirt", "Merchandise", "Retail", "Retail", "20.00", "9001", (), True, False, 0.3),
)

# option group name -> (required, ((option, price), ...))
OPTION_GROUPS = {
    "Temperature": (True, (("Rare", "0.00"), ("Medium Rare", "0.00"), ("Medium", "0.00"),
                           ("Well Done", "0.00"))),
    "Add-ons": (False, (("Add Bacon", "2.00"), ("Add Cheese", "1.00"), ("Add Avocado", "1.50"),
                        ("Add Chicken", "4.00"))),
    "Side Choice": (True, (("Fries", "0.00"), ("Side Salad", "0.00"), ("Onion Rings", "1.00"))),
    "Sauce": (True, (("Buffalo", "0.00"), ("BBQ", "0.00"), ("Garlic Parmesan", "0.50"))),
    "Drink Size": (False, (("Large", "1.00"),)),
    "Feast Sides": (True, (("Mashed Potatoes", "0.00"), ("Green Beans", "0.00"),
                           ("Coleslaw", "0.00"))),
    "Spirit Upgrade": (False, (("Premium Tequila", "3.00"),)),
}
VOID_REASONS = ("Customer Changed Mind", "Kitchen Error", "Server Error")
DISCOUNT_REASONS = ("10% Off", "Happy Hour", "Manager Comp", "Birthday Dessert")

DINING_OPTIONS = (
    ("Dine In", "In Store", 0.70), ("Take Out", "In Store", 0.12), ("Curbside", "Online", 0.06),
    ("Delivery", "Online", 0.07), ("Take Out", "Kiosk", 0.05),
)
DINING_AREAS = (("Dining Room", "Restaurant"), ("Bar", "Bar"), ("Patio", "Restaurant"))
PARTY_SIZES = (1, 2, 3, 4, 5, 6, 8)
PARTY_WEIGHTS = tuple(itertools.accumulate((30, 35, 12, 13, 4, 4, 2)))
PAYMENT_TYPES = ("Credit", "Cash", GIFT_CARD, "Other")
PAYMENT_WEIGHTS = tuple(itertools.accumulate((74, 18, 5, 3)))
CARD_TYPES = ("VISA", "MASTERCARD", "AMEX", "DISCOVER")
TIP_RATES = (ZERO, Decimal("0.15"), Decimal("0.18"), Decimal("0.20"), Decimal("0.22"),
             Decimal("0.25"))
# Opening-time segments of a business day, in seconds after its midnight: the last one runs
# past midnight until the 04:00 closeout.
OPENING_SEGMENTS = ((11 * 3600, 15 * 3600, 38), (15 * 3600, 17 * 3600, 7),
                    (17 * 3600, 22 * 3600, 45), (22 * 3600, 24 * 3600, 6),
                    (24 * 3600, 27 * 3600 + 45 * 60, 4))


@dataclass(frozen=True)
class GenerationSummary:
    """Counts of what one generation wrote; holds no guest data, so it is safe to print."""

    locations: int
    days: int
    files: int
    orders: int
    checks: int
    payments: int
    item_lines: int
    modifier_lines: int
    refunds: int
    guests: int

    def __str__(self) -> str:
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


# ---------------------------------------------------------------------------------------------
# Menu, guests and locations


@dataclass(frozen=True, slots=True)
class _Option:
    index: int
    name: str
    group_index: int
    group: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class _OptionGroup:
    index: int
    name: str
    required: bool
    options: tuple[_Option, ...]


@dataclass(frozen=True, slots=True)
class _MenuItem:
    index: int
    name: str
    group: str
    menu: str
    category: str
    price: Decimal
    plu: str
    option_groups: tuple[_OptionGroup, ...]
    taxable: bool
    halvable: bool
    weight: float


@dataclass(frozen=True, slots=True)
class _Guest:
    index: int  # unique across the tree; also makes e-mail and phone unique
    customer_id: str
    forename: str
    surname: str
    email: str  # canonical lower-case form, "" when the guest gave none
    phone: str  # ten national digits, "" when the guest gave none

    @property
    def name(self) -> str:
        return f"{self.forename} {self.surname}"


def _build_option_groups() -> dict[str, _OptionGroup]:
    groups: dict[str, _OptionGroup] = {}
    counter = itertools.count()
    for group_index, (name, (required, options)) in enumerate(OPTION_GROUPS.items()):
        built = tuple(
            _Option(next(counter), option, group_index, name, Decimal(price))
            for option, price in options
        )
        groups[name] = _OptionGroup(group_index, name, required, built)
    return groups


def _build_menu() -> tuple[_MenuItem, ...]:
    groups = _build_option_groups()
    return tuple(
        _MenuItem(index, name, group, menu, category, Decimal(price), plu,
                  tuple(groups[g] for g in option_groups), taxable, halvable, weight)
        for index, (name, group, menu, category, price, plu, option_groups, taxable, halvable,
                    weight) in enumerate(MENU)
    )


def _ascii_letters(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z]", "", decomposed.encode("ascii", "ignore").decode().lower())


def _email_for(index: int, forename: str, surname: str, style: int) -> str:
    first, last = _ascii_letters(forename), _ascii_letters(surname)
    local = (f"{first}.{last}{index}", f"{first}{index}", f"{first[0]}{last}{index}")[style % 3]
    return f"{local}@{EMAIL_DOMAINS[index % len(EMAIL_DOMAINS)]}"


def _phone_for(index: int) -> str:
    """Ten national digits, distinct for every index below two million, valid for `phonenumbers`."""
    prefixes = len(AREA_CODES) * len(EXCHANGES)
    area = AREA_CODES[index % len(AREA_CODES)]
    exchange = EXCHANGES[index // len(AREA_CODES) % len(EXCHANGES)]
    # Area and exchange fix index % prefixes; 7919 is prime to 10 000, so the line number is
    # distinct for every index // prefixes below 10 000. The second term only spreads lines.
    line = ((index // prefixes) * 7919 + (index % prefixes) * 37 + 142) % 10_000
    return f"{area}{exchange}{line:04d}"


def _make_guest(rng: random.Random, index: int) -> _Guest:
    forename, surname = rng.choice(FORENAMES), rng.choice(SURNAMES)
    contact = rng.random()
    email = _email_for(index, forename, surname, rng.randrange(3)) if contact < 0.85 else ""
    phone = _phone_for(index) if contact >= 0.30 else ""
    customer_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return _Guest(index, customer_id, forename, surname, email, phone)


class _GuestPool:
    """Guests with Zipf-like visit frequencies: a few regulars, a long tail of one-timers."""

    def __init__(self, guests: Sequence[_Guest]) -> None:
        self.guests = tuple(guests)
        weights = (1.0 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(self.guests)))
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1] if self._cumulative else 0.0

    def pick(self, rng: random.Random) -> _Guest:
        position = bisect.bisect_right(self._cumulative, rng.random() * self._total)
        return self.guests[min(position, len(self.guests) - 1)]


def _shared_pool(seed: int, size: int) -> _GuestPool:
    rng = random.Random(f"{seed}/shared-guests")
    return _GuestPool([_make_guest(rng, index) for index in range(size)])


@dataclass(frozen=True)
class _LocationPlan:
    """Everything one worker needs to write one location's folders (picklable)."""

    root: Path
    index: int
    seed: int
    start: date
    days: int
    checks_per_day: int
    guests_per_location: int
    shared_guests: int
    documented_dates: bool

    @property
    def export_id(self) -> str:
        return str(FIRST_EXPORT_ID + self.index)

    @property
    def location_name(self) -> str:
        name = _location_label(self.index)[0]
        # Real exports often carry a trailing space; every other location keeps it clean so
        # that both spellings are exercised.
        return f"{name} " if self.index % 2 == 0 else name

    @property
    def location_code(self) -> str:
        return _location_label(self.index)[1]

    @property
    def tax_rate(self) -> Decimal:
        return TAX_RATES[self.index % len(TAX_RATES)]


def _location_label(index: int) -> tuple[str, str]:
    if index < len(LOCATION_NAMES):
        return LOCATION_NAMES[index]
    return f"Location {index + 1}", f"L{index + 1:03d}"


@dataclass
class _LocationResult:
    orders: int = 0
    checks: int = 0
    payments: int = 0
    item_lines: int = 0
    modifier_lines: int = 0
    refunds: int = 0
    guests_seen: set[int] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------
# Value formats


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


def _item_tax(value: Decimal) -> str:
    """Item tax with eight decimals, as Toast writes it: zero becomes `0E-8`."""
    return str(value.quantize(ITEM_TAX_PLACES))


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _short_datetime(moment: datetime) -> str:
    """`8/22/24 11:00 AM`: what real item, order and payment rows carry."""
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year % 100:02d} {hour}:{moment.minute:02d} {half}"


def _documented_datetime(moment: datetime) -> str:
    """`MM/DD/YYYY HH:MM:SS`: the format Toast's documentation promises."""
    return (f"{moment.month:02d}/{moment.day:02d}/{moment.year} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")


def _check_date(moment: datetime) -> str:
    return f"{moment.month:02d}/{moment.day:02d}/{moment.year % 100:02d}"


def _check_time(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"{hour:02d}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def _service(hour: int) -> str:
    if 4 <= hour < 16:
        return "Lunch"
    return "Dinner" if 16 <= hour < 22 else "Late Night"


def _duration(elapsed: timedelta) -> str:
    seconds = int(elapsed.total_seconds())
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _email_variant(rng: random.Random, email: str) -> str:
    """The same address as a guest or a server might type it on another day."""
    roll = rng.random()
    if roll < 0.62:
        return email
    local, domain = email.split("@")
    if roll < 0.76:
        return f"{local.title()}@{domain.title()}"
    if roll < 0.88:
        return f" {email} "
    if roll < 0.95:
        return email.upper()
    return f"{local.title()}@{domain}  "


def _phone_variant(rng: random.Random, digits: str) -> str:
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    roll = rng.random()
    if roll < 0.45:
        return f"({area}) {exchange}-{line}"
    if roll < 0.75:
        return f"+1{digits}"
    if roll < 0.90:
        return f"{area}.{exchange}.{line}"
    return f"{area}-{exchange}-{line}"


# ---------------------------------------------------------------------------------------------
# One location's orders


@dataclass(slots=True)
class _Line:
    selection_id: str
    item: _MenuItem | None  # None: a gift-card sale
    qty: Decimal
    gross: Decimal
    voided: bool
    void_reason: int  # index into VOID_REASONS, -1 when not voided
    modifiers: list[tuple[str, _Option]]
    discount: Decimal = ZERO
    tax: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.gross - self.discount


@dataclass(slots=True)
class _Payment:
    payment_id: str
    kind: str
    amount: Decimal
    tip: Decimal
    gratuity: Decimal
    card_type: str = ""
    last4: str = ""
    gift_card: str = ""
    email: str = ""
    phone: str = ""

    @property
    def total(self) -> Decimal:
        return self.amount + self.tip + self.gratuity


@dataclass(slots=True)
class _Identity:
    guest: _Guest | None = None
    customer_id: str = ""
    customer: str = ""
    phone: str = ""
    email: str = ""
    receipt_email: str = ""
    receipt_phone: str = ""
    tab_name: str = ""


@dataclass(slots=True)
class _Check:
    check_id: str
    number: int
    party: int
    lines: list[_Line]
    identity: _Identity
    discount_reason: str
    payments: list[_Payment]
    amount: Decimal
    tax: Decimal
    discount: Decimal
    gratuity: Decimal

    @property
    def tip(self) -> Decimal:
        return sum((payment.tip for payment in self.payments), ZERO)

    @property
    def total(self) -> Decimal:
        return self.amount + self.tax + self.tip + self.gratuity


@dataclass(slots=True)
class _Order:
    order_id: str
    number: int
    opened: datetime
    server: str
    table: str
    dining_area: str
    revenue_center: str
    service: str
    dining_option: str
    source: str
    voided: bool
    checks: list[_Check]
    sent: datetime
    paid: datetime | None
    closed: datetime


class _RowWriter(Protocol):
    def writerow(self, row: Iterable[str], /) -> object: ...


class _DayFiles:
    """The five CSV writers of one location and business date."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._handles: list[IO[str]] = []
        self.writers: dict[str, _RowWriter] = {}
        for name, header in HEADERS.items():
            handle = (folder / name).open("w", encoding="utf-8", newline="", buffering=1 << 20)
            self._handles.append(handle)
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            self.writers[name] = writer

    def __enter__(self) -> _DayFiles:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self._handles:
            handle.close()


PAYMENT_COLUMN = {name: position for position, name in enumerate(HEADERS[PAYMENT_DETAILS])}


class _LocationGenerator:
    """Writes one location's business dates in order, carrying late refunds forward."""

    def __init__(self, plan: _LocationPlan, menu: tuple[_MenuItem, ...],
                 shared: _GuestPool) -> None:
        self.plan = plan
        self.rng = random.Random(f"{plan.seed}/location/{plan.index}")
        self.menu = menu
        self.shared = shared
        self.result = _LocationResult()
        self._next_id = ID_BASE + plan.index * ID_BLOCK
        self._id_limit = self._next_id + ID_BLOCK
        self._pending_refunds: dict[int, list[list[str]]] = {}
        self._format_datetime: Callable[[datetime], str] = (
            _documented_datetime if plan.documented_dates else _short_datetime)
        first_guest = plan.shared_guests + plan.index * plan.guests_per_location
        self.local = _GuestPool([_make_guest(self.rng, first_guest + offset)
                                 for offset in range(plan.guests_per_location)])
        self.servers = tuple(f"{self.rng.choice(FORENAMES)} {self.rng.choice(SURNAMES)}"
                             for _ in range(8))
        self.managers = self.servers[:2]
        self._menu_weights = {service: self._weights(service)
                              for service in ("Lunch", "Dinner", "Late Night")}

    def _weights(self, service: str) -> list[float]:
        boost = {"Lunch": 0.4, "Dinner": 1.0, "Late Night": 2.5}[service]
        weights = (item.weight * (boost if item.category == "Alcohol" else 1.0)
                   for item in self.menu)
        return list(itertools.accumulate(weights))

    def _new_id(self) -> str:
        self._next_id += 1 + self.rng.getrandbits(2) % 3  # increasing, not contiguous, like Toast
        if self._next_id >= self._id_limit:
            raise OverflowError(f"location {self.plan.export_id}: id block exhausted")
        return str(self._next_id)

    # -- the day loop ---------------------------------------------------------------------

    def run(self) -> _LocationResult:
        for day_index in range(self.plan.days):
            self._write_day(day_index)
        return self.result

    def _write_day(self, day_index: int) -> None:
        business_date = self.plan.start + timedelta(days=day_index)
        folder = self.plan.root / self.plan.export_id / business_date.strftime("%Y%m%d")
        midnight = datetime.combine(business_date, datetime.min.time())
        check_count = self._check_count(business_date)
        sizes = self._order_sizes(check_count)
        openings = sorted(self._opening_seconds() for _ in sizes)
        check_number = itertools.count(1)
        with _DayFiles(folder) as files:
            for order_number, (size, seconds) in enumerate(zip(sizes, openings, strict=True), 1):
                opened = midnight + timedelta(seconds=seconds)
                order = self._order(order_number, opened, size, check_number)
                self._write_order(files, order, business_date, day_index)
            for row in self._pending_refunds.pop(day_index, []):
                files.writers[PAYMENT_DETAILS].writerow(row)
                self.result.refunds += 1

    def _check_count(self, business_date: date) -> int:
        factor = WEEKDAY_FACTORS[business_date.weekday()] * self.rng.uniform(0.92, 1.08)
        return max(1, round(self.plan.checks_per_day * factor))

    def _order_sizes(self, check_count: int) -> list[int]:
        sizes: list[int] = []
        remaining = check_count
        while remaining > 0:
            size = 2 if remaining >= 2 and self.rng.random() < SPLIT_ORDER_SHARE else 1
            sizes.append(size)
            remaining -= size
        return sizes

    def _opening_seconds(self) -> int:
        roll = self.rng.random() * 100
        for low, high, weight in OPENING_SEGMENTS:
            if roll < weight:
                return self.rng.randrange(low, high)
            roll -= weight
        return self.rng.randrange(OPENING_SEGMENTS[-1][0], OPENING_SEGMENTS[-1][1])

    # -- building an order ------------------------------------------------------------------

    def _order(self, number: int, opened: datetime, size: int,
               check_number: Iterator[int]) -> _Order:
        rng = self.rng
        service = _service(opened.hour)
        dining_option, source = self._dining_option()
        table = dining_area = revenue_center = ""
        if dining_option == "Dine In":
            dining_area, revenue_center = rng.choice(DINING_AREAS)
            table = str(rng.randint(1, 60))
        voided = rng.random() < VOIDED_ORDER_SHARE
        sent = opened + timedelta(seconds=rng.randint(20, 240))
        checks = [self._check(next(check_number), service) for _ in range(size)]
        has_payment = any(check.payments for check in checks)
        paid = opened + timedelta(seconds=rng.randint(720, 5700)) if has_payment else None
        closed = (paid or opened) + timedelta(seconds=rng.randint(5, 400))
        return _Order(self._new_id(), number, opened, rng.choice(self.servers), table,
                      dining_area, revenue_center, service, dining_option, source, voided,
                      checks, sent, paid, closed)

    def _dining_option(self) -> tuple[str, str]:
        roll = self.rng.random()
        for option, source, share in DINING_OPTIONS:
            if roll < share:
                return option, source
            roll -= share
        return DINING_OPTIONS[0][0], DINING_OPTIONS[0][1]

    def _check(self, number: int, service: str) -> _Check:
        party = self.rng.choices(PARTY_SIZES, cum_weights=PARTY_WEIGHTS)[0]
        lines = self._lines(service, party)
        reason = self._apply_discount(lines)
        self._apply_tax(lines)
        kept = [line for line in lines if not line.voided]
        amount = sum((line.net for line in kept), ZERO)
        tax = sum((line.tax for line in kept), ZERO)
        discount = sum((line.discount for line in kept), ZERO)
        food_amount = sum((line.net for line in kept if line.item is not None), ZERO)
        gratuity = (food_amount * Decimal("0.18")).quantize(CENT) if party >= 6 else ZERO
        identity = self._identity()
        payments = self._payments(amount + tax, gratuity, identity)
        return _Check(self._new_id(), number, party, lines, identity, reason, payments, amount,
                      tax, discount, gratuity)

    def _lines(self, service: str, party: int) -> list[_Line]:
        rng = self.rng
        if rng.random() < GIFT_CARD_ONLY_SHARE:
            return [self._gift_card_line()]
        count = min(12, party + rng.randint(0, party))
        items = rng.choices(self.menu, cum_weights=self._menu_weights[service], k=count)
        lines = [self._item_line(item) for item in items]
        if rng.random() < GIFT_CARD_LINE_SHARE:
            lines.append(self._gift_card_line())
        return lines

    def _item_line(self, item: _MenuItem) -> _Line:
        rng = self.rng
        qty = ONE
        if item.halvable and rng.random() < 0.08:
            qty = Decimal("0.5")
        elif item.category != "Food" and rng.random() < 0.15:
            qty = Decimal("2.0")
        modifiers = [(self._new_id(), option) for option in self._pick_options(item)]
        unit = item.price + sum((option.price for _, option in modifiers), ZERO)
        voided = rng.random() < VOIDED_LINE_SHARE
        reason = rng.randrange(len(VOID_REASONS)) if voided else -1
        return _Line(self._new_id(), item, qty, (unit * qty).quantize(CENT, ROUND_HALF_UP),
                     voided, reason, modifiers)

    def _pick_options(self, item: _MenuItem) -> list[_Option]:
        picked = []
        for group in item.option_groups:
            if group.required or self.rng.random() < 0.3:
                picked.append(self.rng.choice(group.options))
        return picked

    def _gift_card_line(self) -> _Line:
        amount = Decimal(self.rng.choice(("25.00", "50.00", "65.00", "100.00")))
        return _Line(self._new_id(), None, ONE, amount, False, -1, [])

    def _apply_discount(self, lines: list[_Line]) -> str:
        rng = self.rng
        if rng.random() >= DISCOUNT_SHARE:
            return ""
        reason = rng.choice(DISCOUNT_REASONS)
        eligible = [line for line in lines if line.item is not None and not line.voided]
        if reason == "10% Off":
            targets, share = eligible, Decimal("0.10")
        elif reason == "Happy Hour":
            targets = [line for line in eligible if line.item and line.item.category == "Alcohol"]
            share = Decimal("0.50")
        elif reason == "Birthday Dessert":
            targets = [line for line in eligible if line.item and line.item.group == "Desserts"]
            targets, share = targets[:1], Decimal("1")
        else:  # a manager comps one line
            targets, share = ([rng.choice(eligible)] if eligible else []), Decimal("1")
        for line in targets:
            line.discount = (line.gross * share).quantize(CENT, ROUND_HALF_UP)
        return reason if targets else ""

    def _apply_tax(self, lines: list[_Line]) -> None:
        rate = self.plan.tax_rate
        for line in lines:
            if line.item is not None and line.item.taxable:
                line.tax = (line.net * rate).quantize(CENT, ROUND_HALF_UP)

    # -- guests and payments ----------------------------------------------------------------

    def _identity(self) -> _Identity:
        rng = self.rng
        if rng.random() < NO_IDENTITY_SHARE:
            # Nobody gave a contact; sometimes the server typed a first name on the tab.
            tab = rng.choice(FORENAMES) if rng.random() < 0.15 else ""
            return _Identity(tab_name=tab)
        pool = self.shared if rng.random() < SHARED_GUEST_SHARE else self.local
        guest = pool.pick(rng)
        self.result.guests_seen.add(guest.index)
        if rng.random() < RECEIPT_ONLY_SHARE:
            return self._receipt_identity(guest)
        return self._check_identity(guest)

    def _receipt_identity(self, guest: _Guest) -> _Identity:
        rng = self.rng
        email = _email_variant(rng, guest.email) if guest.email else ""
        phone = ""
        if guest.phone and (not email or rng.random() < 0.5):
            phone = _phone_variant(rng, guest.phone)
        return _Identity(guest=guest, receipt_email=email, receipt_phone=phone)

    def _check_identity(self, guest: _Guest) -> _Identity:
        rng = self.rng
        identity = _Identity(guest=guest, customer=guest.name)
        identity.customer_id = guest.customer_id if rng.random() < 0.85 else ""
        if guest.email and rng.random() < 0.92:
            identity.email = _email_variant(rng, guest.email)
        if guest.phone and rng.random() < 0.85:
            identity.phone = _phone_variant(rng, guest.phone)
        if not (identity.email or identity.phone or identity.customer_id):
            identity.customer_id = guest.customer_id
        if rng.random() < 0.30:  # the guest also asked for a digital receipt
            identity.receipt_email = _email_variant(rng, guest.email) if guest.email else ""
            if not identity.receipt_email and guest.phone:
                identity.receipt_phone = _phone_variant(rng, guest.phone)
        if rng.random() < 0.5:
            identity.tab_name = guest.name
        return identity

    def _payments(self, due: Decimal, gratuity: Decimal, identity: _Identity) -> list[_Payment]:
        rng = self.rng
        if due <= 0:
            return []
        parts = [due]
        if due > 10 and rng.random() < SPLIT_PAYMENT_SHARE:
            first = (due * Decimal(rng.randint(30, 70)) / 100).quantize(CENT)
            parts = [first, due - first]
        tip_rate = ZERO if gratuity else rng.choice(TIP_RATES)
        payments = []
        for position, part in enumerate(parts):
            kind = rng.choices(PAYMENT_TYPES, cum_weights=PAYMENT_WEIGHTS)[0]
            tip = (part * tip_rate).quantize(CENT) if kind == "Credit" else ZERO
            payment = _Payment(self._new_id(), kind, part, tip,
                               gratuity if position == 0 else ZERO)
            if kind == "Credit":
                payment.card_type = rng.choice(CARD_TYPES)
                payment.last4 = f"{rng.randrange(10_000):04d}"
            elif kind == GIFT_CARD:
                payment.gift_card = f"{rng.randrange(10**9):09d}"
            payments.append(payment)
        payments[0].email = identity.receipt_email
        payments[0].phone = identity.receipt_phone
        return payments

    # -- writing ----------------------------------------------------------------------------

    def _write_order(self, files: _DayFiles, order: _Order, business_date: date,
                     day_index: int) -> None:
        fmt = self._format_datetime
        opened, sent = fmt(order.opened), fmt(order.sent)
        files.writers[ORDER_DETAILS].writerow(self._order_row(order, opened))
        self.result.orders += 1
        for check in order.checks:
            files.writers[CHECK_DETAILS].writerow(self._check_row(order, check))
            self.result.checks += 1
            self._write_lines(files, order, check, opened, sent)
            rows = self._write_payments(files, order, check, opened)
            if rows and not order.voided and self.rng.random() < REFUND_SHARE:
                self._schedule_refund(check, rows, business_date, day_index)

    def _order_row(self, order: _Order, opened: str) -> list[str]:
        checks = order.checks
        paid = self._format_datetime(order.paid) if order.paid else ""
        duration = _duration(order.paid - order.opened) if order.paid else ""
        return [
            self.plan.location_name, order.order_id, str(order.number),
            ", ".join(str(check.number) for check in checks), opened,
            str(sum(check.party for check in checks)),
            ", ".join(check.identity.tab_name for check in checks if check.identity.tab_name),
            order.server, order.table, order.revenue_center, order.dining_area, order.service,
            order.dining_option,
            _money(sum((check.discount for check in checks), ZERO)),
            _money(sum((check.amount for check in checks), ZERO)),
            _money(sum((check.tax for check in checks), ZERO)),
            _money(sum((check.tip for check in checks), ZERO)),
            _money(sum((check.gratuity for check in checks), ZERO)),
            _money(sum((check.total for check in checks), ZERO)),
            _flag(order.voided), paid, self._format_datetime(order.closed), duration,
            order.source,
        ]

    def _check_row(self, order: _Order, check: _Check) -> list[str]:
        identity = check.identity
        items = ", ".join(line.item.name if line.item else GIFT_CARD
                          for line in check.lines if not line.voided)
        tender = ", ".join(dict.fromkeys(payment.kind for payment in check.payments))
        return [
            self.plan.location_code, _check_date(order.opened), _check_time(order.opened),
            items, order.server, _money(check.tax), tender, check.check_id, str(check.number),
            _money(check.total), "", str(check.party), _money(check.discount),
            check.discount_reason, f"https://toast.example.com/checks/{check.check_id}",
            identity.customer_id, identity.customer, identity.phone, identity.email,
        ]

    def _write_lines(self, files: _DayFiles, order: _Order, check: _Check, opened: str,
                     sent: str) -> None:
        prefix = [self.plan.location_name, order.order_id, str(order.number), sent, opened,
                  check.check_id, order.server, order.table, order.dining_area, order.service,
                  order.dining_option]
        items = files.writers[ITEM_SELECTION_DETAILS]
        modifiers = files.writers[MODIFIERS_SELECTION_DETAILS]
        for line in check.lines:
            items.writerow(prefix + self._item_fields(line, check.identity.tab_name))
            self.result.item_lines += 1
            for selection_id, option in line.modifiers:
                modifiers.writerow(prefix + self._modifier_fields(line, selection_id, option))
                self.result.modifier_lines += 1

    def _item_fields(self, line: _Line, tab_name: str) -> list[str]:
        money = [_money(line.gross), _money(line.discount), _money(line.net), str(line.qty),
                 _item_tax(line.tax), _flag(line.voided)]
        if line.item is None:
            return [line.selection_id, "", "", "", "", GIFT_CARD, "", "", "", "", *money,
                    "true", "false", "Tax Not Included", "", tab_name]
        item = line.item
        return [line.selection_id, self._item_id(item), str(ITEM_MASTER_BASE + item.index), "",
                item.plu, item.name, "", item.group, item.menu, item.category, *money,
                "false", "false", "Tax Not Included", "No Effect", tab_name]

    def _item_id(self, item: _MenuItem) -> str:
        return str(ITEM_ID_BASE + self.plan.index * 1000 + item.index)

    def _modifier_fields(self, line: _Line, selection_id: str, option: _Option) -> list[str]:
        assert line.item is not None  # gift cards carry no modifiers
        gross = (option.price * line.qty).quantize(CENT, ROUND_HALF_UP)
        reason_id = str(VOID_REASON_BASE + line.void_reason) if line.voided else ""
        reason = VOID_REASONS[line.void_reason] if line.voided else ""
        return [
            selection_id, str(MODIFIER_ID_BASE + self.plan.index * 1000 + option.index),
            str(MODIFIER_MASTER_BASE + option.index), "", "", option.name,
            str(OPTION_GROUP_BASE + option.group_index), option.group, self._item_id(line.item),
            line.item.name, line.item.category, _money(gross), _money(ZERO), _money(gross),
            str(line.qty), _flag(line.voided), reason_id, reason,
        ]

    def _write_payments(self, files: _DayFiles, order: _Order, check: _Check,
                        opened: str) -> list[list[str]]:
        writer = files.writers[PAYMENT_DETAILS]
        rows = [self._payment_row(order, check, payment, opened) for payment in check.payments]
        for row in rows:
            writer.writerow(row)
            self.result.payments += 1
        return rows

    def _payment_row(self, order: _Order, check: _Check, payment: _Payment,
                     opened: str) -> list[str]:
        fmt = self._format_datetime
        assert order.paid is not None  # a check with payments makes its order paid
        card = payment.kind == "Credit"
        online = order.source != "In Store"
        total = payment.total
        tendered = total
        if payment.kind == "Cash":  # guests hand over notes: round up to the next five
            tendered = (total / 5).to_integral_value(ROUND_CEILING) * 5
        void_user = void_approver = void_date = ""
        if order.voided:
            void_user, void_approver = order.server, self.rng.choice(self.managers)
            void_date = fmt(order.paid + timedelta(minutes=self.rng.randint(1, 30)))
        receipt = "Email" if payment.email else ("SMS" if payment.phone else "")
        fees = (total * Decimal("0.029") + Decimal("0.30")).quantize(CENT) if card else ZERO
        return [
            self.plan.location_name, payment.payment_id, order.order_id, str(order.number),
            fmt(order.paid), opened, check.check_id, str(check.number), check.identity.tab_name,
            order.server, order.table, order.dining_area, order.service, order.dining_option,
            "", _money(payment.amount), _money(payment.tip), _money(payment.gratuity),
            _money(total), _money(total if card and not online else ZERO),
            _money(total if card and online else ZERO), _money(tendered), "false", "",
            _money(ZERO), _money(ZERO), void_user, void_approver, void_date,
            "VOIDED" if order.voided else "CAPTURED", payment.kind,
            "Front Drawer" if payment.kind == "Cash" else "", payment.card_type,
            "Venmo" if payment.kind == "Other" else "", payment.email, payment.phone,
            payment.last4, receipt, _money(fees), "", order.source,
            payment.gift_card[-4:], payment.gift_card[:5],
        ]

    def _schedule_refund(self, check: _Check, rows: list[list[str]], business_date: date,
                         day_index: int) -> None:
        """The refunded payment re-appears, same Payment Id, in a later day's export."""
        rng = self.rng
        position = max(range(len(rows)), key=lambda i: check.payments[i].amount)
        payment = check.payments[position]
        delay = rng.randint(1, 5)
        if rng.random() < 0.35:
            refund, refund_tip = payment.amount, payment.tip
        else:
            refund = (payment.amount * Decimal(rng.randint(10, 80)) / 100).quantize(CENT)
            refund_tip = ZERO
        moment = datetime.combine(business_date + timedelta(days=delay), datetime.min.time())
        moment += timedelta(seconds=rng.randrange(11 * 3600, 21 * 3600))
        row = list(rows[position])
        row[PAYMENT_COLUMN["Refunded"]] = "true"
        row[PAYMENT_COLUMN["Refund Date"]] = self._format_datetime(moment)
        row[PAYMENT_COLUMN["Refund Amount"]] = _money(refund)
        row[PAYMENT_COLUMN["Refund Tip Amount"]] = _money(refund_tip)
        if day_index + delay < self.plan.days:
            self._pending_refunds.setdefault(day_index + delay, []).append(row)


def _run_location(plan: _LocationPlan) -> _LocationResult:
    shared = _shared_pool(plan.seed, plan.shared_guests)
    return _LocationGenerator(plan, _build_menu(), shared).run()


# ---------------------------------------------------------------------------------------------
# Public API


def generate_exports(
    root: Path,
    *,
    locations: int = 3,
    days: int = 7,
    start: date = date(2026, 11, 1),
    seed: int = 42,
    checks_per_day: int = 40,
    guests_per_location: int | None = None,
    documented_date_location: int | None = 3,
    workers: int = 1,
) -> GenerationSummary:
    """Write `<root>/<export_id>/<YYYYMMDD>/<File>.csv` for every location and business date.

    `documented_date_location` is the 1-based location whose order, payment, item and
    modifier dates use the documented `MM/DD/YYYY HH:MM:SS` format instead of what real files
    carry (`None`: no such location). `workers` > 1 generates locations in parallel processes;
    the bytes written are the same either way.
    """
    if not 1 <= locations <= MAX_LOCATIONS:
        raise ValueError(f"locations must be between 1 and {MAX_LOCATIONS}, got {locations}")
    if days < 1 or checks_per_day < 1 or workers < 1:
        raise ValueError("days, checks_per_day and workers must be at least 1")
    pool_size = guests_per_location if guests_per_location is not None else max(
        50, checks_per_day * 25)
    if pool_size < 1:
        raise ValueError(f"guests_per_location must be at least 1, got {pool_size}")
    plans = [
        _LocationPlan(Path(root), index, seed, start, days, checks_per_day, pool_size,
                      max(10, pool_size // 20), documented_date_location == index + 1)
        for index in range(locations)
    ]
    if workers > 1 and locations > 1:
        with ProcessPoolExecutor(max_workers=min(workers, locations)) as executor:
            results = list(executor.map(_run_location, plans))
    else:
        results = [_run_location(plan) for plan in plans]
    return _summarise(results, locations, days)


def _summarise(results: Sequence[_LocationResult], locations: int,
               days: int) -> GenerationSummary:
    guests: set[int] = set()
    for result in results:
        guests |= result.guests_seen
    return GenerationSummary(
        locations=locations,
        days=days,
        files=locations * days * len(EXPORT_FILES),
        orders=sum(result.orders for result in results),
        checks=sum(result.checks for result in results),
        payments=sum(result.payments for result in results),
        item_lines=sum(result.item_lines for result in results),
        modifier_lines=sum(result.modifier_lines for result in results),
        refunds=sum(result.refunds for result in results),
        guests=len(guests),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate a tree and print its counts (never any guest data)."""
    parser = argparse.ArgumentParser(
        prog="python -m toast_passkit.toast.sample_data",
        description="Write a seeded sample tree of Toast nightly exports.")
    parser.add_argument("--root", type=Path, required=True, help="folder to write into")
    parser.add_argument("--locations", type=int, default=3)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 1),
                        help="first business date, YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--checks-per-day", type=int, default=40)
    parser.add_argument("--guests-per-location", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1,
                        help="processes generating locations in parallel (same output)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    summary = generate_exports(
        args.root, locations=args.locations, days=args.days, start=args.start, seed=args.seed,
        checks_per_day=args.checks_per_day, guests_per_location=args.guests_per_location,
        workers=args.workers)
    elapsed = time.perf_counter() - began
    print(f"Toast sample exports written to {args.root}")
    print(summary)
    print(f"elapsed_seconds={elapsed:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
