"""What the pipeline reads from each Toast export file: fields, accepted headers, types, rules.

A restaurant group can rename and reorder export columns, so each field lists the header
names it accepts (documented and real-file spellings). A deployment can add its own names
through a column mapping (Airflow Variable `toast_column_mapping`, JSON
`{"ItemSelectionDetails.csv": {"net_price": ["Net Amount"]}}`) without touching code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Kind(StrEnum):
    """How a raw CSV value becomes a typed staging value."""

    ID = "id"              # 19-digit Toast id, kept as a string
    TEXT = "text"
    MONEY = "money"        # DECIMAL(12,2)
    TAX = "tax"            # DECIMAL(18,8): item tax is written with 8 decimals, `0E-8`
    QTY = "qty"            # DECIMAL(12,4)
    INT = "int"
    BOOL = "bool"
    TIMESTAMP = "timestamp"  # restaurant-local, no offset in the files
    DATE = "date"


@dataclass(frozen=True)
class Field:
    """One staging column and the export headers it is read from."""

    name: str
    headers: tuple[str, ...]
    kind: Kind = Kind.TEXT
    required: bool = False      # a missing header fails the file
    key: bool = False           # unparseable or empty value fails the partition
    not_null: bool = False      # an empty value quarantines the row
    non_negative: bool = False  # a negative value quarantines the row
    partition_date: bool = False  # must fall in the business day's window


@dataclass(frozen=True)
class ExportFile:
    """One Toast export file and the staging table it lands in."""

    file_name: str
    table: str
    fields: tuple[Field, ...]
    key: tuple[str, ...] = ()   # must be unique within a partition
    required_file: bool = True

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def suite_name(self) -> str:
        return f"{self.table}_suite"


def _f(name: str, *headers: str, **kwargs: object) -> Field:
    return Field(name=name, headers=headers, **kwargs)  # type: ignore[arg-type]


K = Kind
ORDERS = ExportFile(
    "OrderDetails.csv", "stg_orders",
    (
        _f("order_id", "Order Id", kind=K.ID, required=True, key=True),
        _f("order_number", "Order #"),
        _f("location_name", "Location"),
        _f("opened_local", "Opened", kind=K.TIMESTAMP, required=True, key=True,
           partition_date=True),
        _f("paid_local", "Paid", kind=K.TIMESTAMP),
        _f("closed_local", "Closed", kind=K.TIMESTAMP),
        _f("guest_count", "# of Guests", kind=K.INT),
        _f("revenue_center", "Revenue Center"),
        _f("dining_option", "Dining Options"),
        _f("order_source", "Order Source"),
        _f("discount_amount", "Discount Amount", kind=K.MONEY),
        _f("amount", "Amount", kind=K.MONEY, non_negative=True),
        _f("tax", "Tax", kind=K.MONEY),
        _f("tip", "Tip", kind=K.MONEY, non_negative=True),
        _f("gratuity", "Gratuity", kind=K.MONEY, non_negative=True),
        _f("total", "Total", kind=K.MONEY),
        _f("voided", "Voided", kind=K.BOOL, required=True, not_null=True),
    ),
    key=("order_id",),
)

CHECKS = ExportFile(
    "CheckDetails.csv", "stg_checks",
    (
        _f("check_id", "Check Id", kind=K.ID, required=True, key=True),
        _f("check_number", "Check #"),
        _f("location_name", "Location Code", "Location"),
        _f("opened_date", "Opened Date", kind=K.DATE, required=True, key=True,
           partition_date=True),
        _f("opened_time", "Opened Time"),
        _f("tax", "Tax", kind=K.MONEY),
        _f("total", "Total", kind=K.MONEY),
        _f("discount", "Discount", kind=K.MONEY),
        _f("customer_id", "Customer Id", required=True),
        _f("customer_name", "Customer", required=True),
        _f("customer_phone", "Customer Phone", required=True),
        _f("customer_email", "Customer Email", required=True),
    ),
    key=("check_id",),
)

PAYMENTS = ExportFile(
    "PaymentDetails.csv", "stg_payments",
    (
        _f("payment_id", "Payment Id", kind=K.ID, required=True, key=True),
        _f("order_id", "Order Id", kind=K.ID),
        _f("check_id", "Check Id", kind=K.ID, required=True, key=True),
        _f("paid_local", "Paid Date", kind=K.TIMESTAMP),
        _f("order_local", "Order Date", kind=K.TIMESTAMP),
        _f("payment_type", "Type"),
        _f("card_type", "Card Type"),
        _f("status", "Status"),
        _f("amount", "Amount", kind=K.MONEY, required=True, non_negative=True),
        _f("tip", "Tip", kind=K.MONEY, non_negative=True),
        _f("gratuity", "Gratuity", kind=K.MONEY, non_negative=True),
        _f("total", "Total", kind=K.MONEY),
        _f("refunded", "Refunded"),
        _f("refund_local", "Refund Date", kind=K.TIMESTAMP, required=True),
        _f("refund_amount", "Refund Amount", kind=K.MONEY, required=True, non_negative=True),
        _f("refund_tip_amount", "Refund Tip Amount", kind=K.MONEY, non_negative=True),
        _f("email", "Email", required=True),
        _f("phone", "Phone", required=True),
    ),
    key=("payment_id",),
)

ITEM_LINES = ExportFile(
    "ItemSelectionDetails.csv", "stg_item_lines",
    (
        _f("item_selection_id", "Item Selection Id", kind=K.ID, required=True, key=True),
        _f("order_id", "Order Id", kind=K.ID, required=True),
        _f("check_id", "Check Id", kind=K.ID, required=True, key=True),
        _f("item_id", "Item Id"),
        _f("master_id", "Master Id"),
        _f("menu_item", "Menu Item", required=True),
        _f("menu_group", "Menu Group"),
        _f("menu", "Menu"),
        _f("sales_category", "Sales Category", required=True),
        _f("gross_price", "Gross Price", kind=K.MONEY, non_negative=True),
        _f("discount", "Discount", "Discnt", kind=K.MONEY),
        _f("net_price", "Net Price", kind=K.MONEY, required=True, not_null=True,
           non_negative=True),
        _f("qty", "Qty", kind=K.QTY),
        _f("tax", "Tax", kind=K.TAX),
        _f("voided", "Void?", kind=K.BOOL, required=True, not_null=True),
        _f("deferred", "Deferred", kind=K.BOOL, required=True, not_null=True),
        _f("sent_local", "Sent Date", kind=K.TIMESTAMP),
        _f("order_local", "Order Date", kind=K.TIMESTAMP, required=True, key=True,
           partition_date=True),
    ),
    key=("item_selection_id",),
)

MODIFIER_LINES = ExportFile(
    "ModifiersSelectionDetails.csv", "stg_modifier_lines",
    (
        _f("item_selection_id", "Item Selection Id", kind=K.ID, required=True, key=True),
        _f("order_id", "Order Id", kind=K.ID),
        _f("check_id", "Check Id", kind=K.ID, required=True, key=True),
        _f("modifier_id", "Modifier Id"),
        _f("modifier", "Modifier"),
        _f("option_group_name", "Option Group Name"),
        _f("parent_item_id", "Parent Menu Selection Item ID"),
        _f("sales_category", "Sales Category"),
        _f("gross_price", "Gross Price", kind=K.MONEY, non_negative=True),
        _f("discount", "Discount", "Discnt", kind=K.MONEY),
        _f("net_price", "Net Price", kind=K.MONEY, required=True),
        _f("qty", "Qty", kind=K.QTY),
        _f("voided", "Void?", kind=K.BOOL),
        _f("order_local", "Order Date", kind=K.TIMESTAMP, partition_date=True),
    ),
    # A modifier row has no id of its own: the whole row is the identity, duplicates of a
    # whole row are dropped (and quarantined as such) instead.
    key=(),
)

EXPORT_FILES: tuple[ExportFile, ...] = (ORDERS, CHECKS, PAYMENTS, ITEM_LINES, MODIFIER_LINES)
STAGING_TABLES: tuple[str, ...] = tuple(f.table for f in EXPORT_FILES)


class ColumnMappingError(ValueError):
    """The configured column mapping names an unknown file or field."""


def with_column_mapping(mapping: Mapping[str, Mapping[str, list[str]]] | str | None,
                        files: tuple[ExportFile, ...] = EXPORT_FILES,
                        ) -> tuple[ExportFile, ...]:
    """Export specs with extra accepted header names from a deployment's column mapping.

    Extra names are tried before the built-in ones, so a group that renamed a column wins.
    """
    if not mapping:
        return files
    if isinstance(mapping, str):
        mapping = json.loads(mapping)
    assert isinstance(mapping, Mapping)
    by_name = {f.file_name: f for f in files}
    unknown_files = set(mapping) - set(by_name)
    if unknown_files:
        raise ColumnMappingError(f"column mapping names unknown export files: "
                                 f"{sorted(unknown_files)}; known: {sorted(by_name)}")
    out = []
    for spec in files:
        extra = mapping.get(spec.file_name, {})
        names = {f.name for f in spec.fields}
        unknown = set(extra) - names
        if unknown:
            raise ColumnMappingError(f"column mapping for {spec.file_name} names unknown fields "
                                     f"{sorted(unknown)}; known: {sorted(names)}")
        fields = tuple(
            replace(f, headers=tuple(extra[f.name]) + f.headers) if f.name in extra else f
            for f in spec.fields
        )
        out.append(replace(spec, fields=fields))
    return tuple(out)


@dataclass
class HeaderMatch:
    """How a file's header row maps onto an export spec."""

    positions: dict[str, int] = field(default_factory=dict)   # field name -> column index
    missing_required: list[str] = field(default_factory=list)  # header names
    unmapped: list[str] = field(default_factory=list)


def match_header(spec: ExportFile, header: list[str]) -> HeaderMatch:
    """Map header names (trimmed, case-insensitive) to fields; extra columns are ignored."""
    index = {}
    for i, name in enumerate(header):
        index.setdefault(name.strip().lstrip("\ufeff").casefold(), i)
    match = HeaderMatch()
    used: set[int] = set()
    for f in spec.fields:
        pos = next((index[h.casefold()] for h in f.headers if h.casefold() in index), None)
        if pos is None:
            if f.required:
                match.missing_required.append(f.headers[0])
            continue
        match.positions[f.name] = pos
        used.add(pos)
    match.unmapped = [h for i, h in enumerate(header) if i not in used]
    return match
