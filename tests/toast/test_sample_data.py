"""The sample Toast export generator writes deterministic trees with every real-file quirk."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import phonenumbers
import pytest

from toast_passkit.toast.sample_data import GenerationSummary, generate_exports, main

FILES = (
    "OrderDetails.csv",
    "CheckDetails.csv",
    "PaymentDetails.csv",
    "ItemSelectionDetails.csv",
    "ModifiersSelectionDetails.csv",
)
# Written out from specs/toast.md §1, not imported from the generator.
EXPECTED_HEADERS = {
    "OrderDetails.csv": [
        "Location", "Order Id", "Order #", "Checks", "Opened", "# of Guests", "Tab Names",
        "Server", "Table", "Revenue Center", "Dining Area", "Service", "Dining Options",
        "Discount Amount", "Amount", "Tax", "Tip", "Gratuity", "Total", "Voided", "Paid",
        "Closed", "Duration (Opened to Paid)", "Order Source",
    ],
    "CheckDetails.csv": [
        "Location Code", "Opened Date", "Opened Time", "Item Description", "Server", "Tax",
        "Tender", "Check Id", "Check #", "Total", "Customer Family", "Table Size", "Discount",
        "Reason of Discount", "Link", "Customer Id", "Customer", "Customer Phone",
        "Customer Email",
    ],
    "PaymentDetails.csv": [
        "Location", "Payment Id", "Order Id", "Order #", "Paid Date", "Order Date", "Check Id",
        "Check #", "Tab Name", "Server", "Table", "Dining Area", "Service", "Dining Option",
        "House Acct #", "Amount", "Tip", "Gratuity", "Total", "Swiped Card Amount",
        "Keyed Card Amount", "Amount Tendered", "Refunded", "Refund Date", "Refund Amount",
        "Refund Tip Amount", "Void User", "Void Approver", "Void Date", "Status", "Type",
        "Cash Drawer", "Card Type", "Other Type", "Email", "Phone", "Last 4 Card Digits",
        "Receipt", "V/MC/D Fees", "Room Info", "Source", "Last 4 Gift Card Digits",
        "First 5 Gift Card Digits",
    ],
    "ItemSelectionDetails.csv": [
        "Location", "Order Id", "Order #", "Sent Date", "Order Date", "Check Id", "Server",
        "Table", "Dining Area", "Service", "Dining Option", "Item Selection Id", "Item Id",
        "Master Id", "SKU", "PLU", "Menu Item", "Menu Subgroup(s)", "Menu Group", "Menu",
        "Sales Category", "Gross Price", "Discount", "Net Price", "Qty", "Tax", "Void?",
        "Deferred", "Tax Exempt", "Tax Inclusion Option", "Dining Option Tax", "Tab Name",
    ],
    "ModifiersSelectionDetails.csv": [
        "Location", "Order Id", "Order #", "Sent Date", "Order Date", "Check Id", "Server",
        "Table", "Dining Area", "Service", "Dining Option", "Item Selection Id", "Modifier Id",
        "Master Id", "Modifier SKU", "Modifier PLU", "Modifier", "Option Group ID",
        "Option Group Name", "Parent Menu Selection Item ID", "Parent Menu Selection",
        "Sales Category", "Gross Price", "Discount", "Net Price", "Qty", "Void?",
        "Void Reason ID", "Void Reason",
    ],
}
REAL_DATETIME = re.compile(r"^[1-9]\d?/[1-9]\d?/\d{2} [1-9]\d?:\d{2} (AM|PM)$")
DOCUMENTED_DATETIME = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")
MONEY = re.compile(r"^-?\d+\.\d{2}$")
TOAST_ID = re.compile(r"^\d{19}$")


@dataclass
class Row:
    export_id: str
    business_date: date
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values[column]


class Tree:
    """A generated export tree, read back the way a user of the files would read it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.headers: dict[Path, list[str]] = {}
        self.rows: dict[str, list[Row]] = defaultdict(list)
        for path in sorted(root.glob("*/*/*.csv")):
            export_id, folder = path.parent.parent.name, path.parent.name
            business_date = datetime.strptime(folder, "%Y%m%d").date()
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                self.headers[path] = header
                for values in reader:
                    self.rows[path.name].append(
                        Row(export_id, business_date, dict(zip(header, values, strict=True))))

    def __getitem__(self, file_name: str) -> list[Row]:
        return self.rows[file_name]

    def original_payments(self) -> list[Row]:
        return [row for row in self["PaymentDetails.csv"] if row["Refunded"] == "false"]

    def refund_rows(self) -> list[Row]:
        return [row for row in self["PaymentDetails.csv"] if row["Refunded"] == "true"]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*.csv"))}


def e164(raw: str) -> str:
    return phonenumbers.format_number(
        phonenumbers.parse(raw, "US"), phonenumbers.PhoneNumberFormat.E164)


@pytest.fixture(scope="module")
def default_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tree, GenerationSummary]:
    root = tmp_path_factory.mktemp("exports")
    summary = generate_exports(root)
    return Tree(root), summary


@pytest.fixture(scope="module")
def tree(default_tree: tuple[Tree, GenerationSummary]) -> Tree:
    return default_tree[0]


# -- determinism and layout -------------------------------------------------------------------


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    options = {"locations": 2, "days": 3, "checks_per_day": 15}
    generate_exports(tmp_path / "a", seed=7, **options)
    generate_exports(tmp_path / "b", seed=7, **options)
    generate_exports(tmp_path / "c", seed=8, **options)

    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert tree_bytes(tmp_path / "a") != tree_bytes(tmp_path / "c")


def test_parallel_generation_writes_the_same_bytes(tmp_path: Path) -> None:
    options = {"locations": 3, "days": 2, "checks_per_day": 10}
    serial = generate_exports(tmp_path / "serial", **options)
    parallel = generate_exports(tmp_path / "parallel", workers=2, **options)

    assert serial == parallel
    assert tree_bytes(tmp_path / "serial") == tree_bytes(tmp_path / "parallel")


def test_a_longer_run_extends_a_shorter_one_byte_for_byte(tmp_path: Path) -> None:
    generate_exports(tmp_path / "short", locations=2, days=3, checks_per_day=20)
    generate_exports(tmp_path / "long", locations=2, days=6, checks_per_day=20)

    short, long = tree_bytes(tmp_path / "short"), tree_bytes(tmp_path / "long")
    assert short == {name: long[name] for name in short}


def test_tree_has_one_folder_per_location_and_business_date_with_five_files(
    default_tree: tuple[Tree, GenerationSummary],
) -> None:
    tree, summary = default_tree
    folders = sorted(p.relative_to(tree.root).as_posix() for p in tree.root.glob("*/*"))

    assert folders == [f"{location}/202611{day:02d}"
                       for location in ("100001", "100002", "100003") for day in range(1, 8)]
    for folder in tree.root.glob("*/*"):
        assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert summary.files == 105


def test_summary_counts_what_the_files_hold(default_tree: tuple[Tree, GenerationSummary]) -> None:
    tree, summary = default_tree

    assert summary.orders == len(tree["OrderDetails.csv"])
    assert summary.checks == len(tree["CheckDetails.csv"])
    assert summary.payments == len(tree.original_payments())
    assert summary.refunds == len(tree.refund_rows()) > 0
    assert summary.item_lines == len(tree["ItemSelectionDetails.csv"])
    assert summary.modifier_lines == len(tree["ModifiersSelectionDetails.csv"])
    assert 0 < summary.guests < summary.checks
    # about 40 checks a day per location, on average
    assert 3 * 7 * 30 < summary.checks < 3 * 7 * 50


def test_headers_are_exactly_the_specified_ones_in_order(tree: Tree) -> None:
    assert len(tree.headers) == 105
    for path, header in tree.headers.items():
        assert header == EXPECTED_HEADERS[path.name], path


# -- ids and joins ----------------------------------------------------------------------------


def test_ids_are_19_digit_strings_unique_across_locations_and_days(tree: Tree) -> None:
    id_columns = {
        "OrderDetails.csv": ["Order Id"],
        "CheckDetails.csv": ["Check Id"],
        "PaymentDetails.csv": ["Payment Id", "Order Id", "Check Id"],
        "ItemSelectionDetails.csv": ["Order Id", "Check Id", "Item Selection Id"],
        "ModifiersSelectionDetails.csv": ["Order Id", "Check Id", "Item Selection Id"],
    }
    for file_name, columns in id_columns.items():
        for row in tree[file_name]:
            for column in columns:
                assert TOAST_ID.match(row[column]), (file_name, column, row[column])

    order_ids = [row["Order Id"] for row in tree["OrderDetails.csv"]]
    check_ids = [row["Check Id"] for row in tree["CheckDetails.csv"]]
    payment_ids = [row["Payment Id"] for row in tree.original_payments()]
    selection_ids = [row["Item Selection Id"] for row in tree["ItemSelectionDetails.csv"]]
    selection_ids += [row["Item Selection Id"] for row in tree["ModifiersSelectionDetails.csv"]]
    everything = order_ids + check_ids + payment_ids + selection_ids
    assert len(set(everything)) == len(everything)


def test_check_and_order_ids_join_across_the_five_files(tree: Tree) -> None:
    orders = {row["Order Id"] for row in tree["OrderDetails.csv"]}
    checks = {row["Check Id"] for row in tree["CheckDetails.csv"]}
    order_of_check: dict[str, str] = {}
    for file_name in ("PaymentDetails.csv", "ItemSelectionDetails.csv",
                      "ModifiersSelectionDetails.csv"):
        for row in tree[file_name]:
            assert row["Check Id"] in checks
            assert row["Order Id"] in orders
            assert order_of_check.setdefault(row["Check Id"], row["Order Id"]) == row["Order Id"]
    checks_with_lines = {row["Check Id"] for row in tree["ItemSelectionDetails.csv"]}
    assert checks_with_lines == checks
    # an order can be split into several checks
    assert len(set(order_of_check.values())) < len(order_of_check)


def test_modifiers_point_at_their_parent_items_menu_item_id(tree: Tree) -> None:
    items_by_check: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in tree["ItemSelectionDetails.csv"]:
        items_by_check[row["Check Id"]].add((row["Item Id"], row["Menu Item"]))
    modifiers = tree["ModifiersSelectionDetails.csv"]

    assert modifiers
    for row in modifiers:
        parent = (row["Parent Menu Selection Item ID"], row["Parent Menu Selection"])
        assert parent in items_by_check[row["Check Id"]]


# -- amounts ----------------------------------------------------------------------------------


def test_money_is_plain_decimals_and_lines_add_up(tree: Tree) -> None:
    for row in tree["ItemSelectionDetails.csv"]:
        gross, discount, net = (Decimal(row[c]) for c in ("Gross Price", "Discount", "Net Price"))
        assert all(MONEY.match(row[c]) for c in ("Gross Price", "Discount", "Net Price"))
        assert net == gross - discount
        assert row["Qty"] in {"1.0", "0.5", "2.0"}
    for row in tree["OrderDetails.csv"]:
        for column in ("Discount Amount", "Amount", "Tax", "Tip", "Gratuity", "Total"):
            assert MONEY.match(row[column]), (column, row[column])


def test_order_totals_match_their_lines_and_payments(tree: Tree) -> None:
    net_by_order: dict[str, Decimal] = defaultdict(Decimal)
    for row in tree["ItemSelectionDetails.csv"]:
        if row["Void?"] == "false":
            net_by_order[row["Order Id"]] += Decimal(row["Net Price"])
    paid_by_order: dict[str, Decimal] = defaultdict(Decimal)
    for row in tree.original_payments():
        paid_by_order[row["Order Id"]] += Decimal(row["Total"])
        assert Decimal(row["Total"]) == sum(Decimal(row[c]) for c in ("Amount", "Tip", "Gratuity"))

    for row in tree["OrderDetails.csv"]:
        amount, total = Decimal(row["Amount"]), Decimal(row["Total"])
        assert amount == net_by_order[row["Order Id"]]
        assert total == amount + sum(Decimal(row[c]) for c in ("Tax", "Tip", "Gratuity"))
        if row["Order Id"] in paid_by_order:
            assert paid_by_order[row["Order Id"]] == total


# -- value formats ----------------------------------------------------------------------------


def test_dates_use_the_real_formats_and_the_third_location_the_documented_one(tree: Tree) -> None:
    for file_name in ("ItemSelectionDetails.csv", "ModifiersSelectionDetails.csv",
                      "OrderDetails.csv", "PaymentDetails.csv"):
        for row in tree[file_name]:
            column = "Opened" if file_name == "OrderDetails.csv" else "Order Date"
            expected = DOCUMENTED_DATETIME if row.export_id == "100003" else REAL_DATETIME
            assert expected.match(row[column]), (file_name, row.export_id, row[column])
    sent = {row["Sent Date"] for row in tree["ItemSelectionDetails.csv"]}
    # no leading zeros, two-digit year, 12-hour clock
    assert any(re.match(r"^11/[1-7]/26 [1-9]:\d{2} PM$", moment) for moment in sent)
    for row in tree["CheckDetails.csv"]:
        assert re.match(r"^\d{2}/\d{2}/\d{2}$", row["Opened Date"])
        assert re.match(r"^\d{2}:\d{2} (AM|PM)$", row["Opened Time"])


def test_checks_open_on_their_business_date_or_after_midnight_before_four(tree: Tree) -> None:
    after_midnight = 0
    for row in tree["CheckDetails.csv"]:
        opened = datetime.strptime(f"{row['Opened Date']} {row['Opened Time']}",
                                   "%m/%d/%y %I:%M %p")
        start = datetime.combine(row.business_date, datetime.min.time())
        assert start <= opened < start + timedelta(hours=28)
        after_midnight += opened.date() > row.business_date
    assert after_midnight > 0


def test_location_keeps_a_trailing_space(tree: Tree) -> None:
    locations = {(row.export_id, row["Location"]) for row in tree["ItemSelectionDetails.csv"]}
    assert ("100001", "Covington ") in locations
    assert len({name for _, name in locations}) == 3


def test_item_tax_has_eight_decimals_and_zero_is_written_0e_8(tree: Tree) -> None:
    taxes = [row["Tax"] for row in tree["ItemSelectionDetails.csv"]]

    assert "0E-8" in taxes
    assert all(tax == "0E-8" or re.match(r"^\d+\.\d{8}$", tax) for tax in taxes)


def test_booleans_are_lower_case_true_and_false(tree: Tree) -> None:
    for row in tree["ItemSelectionDetails.csv"]:
        assert {row["Void?"], row["Deferred"], row["Tax Exempt"]} <= {"true", "false"}
    assert {row["Voided"] for row in tree["OrderDetails.csv"]} == {"true", "false"}


# -- the quirks a pipeline must survive -------------------------------------------------------


def test_voided_lines_keep_their_prices(tree: Tree) -> None:
    voided = [row for row in tree["ItemSelectionDetails.csv"] if row["Void?"] == "true"]

    assert voided
    assert any(Decimal(row["Net Price"]) > 0 for row in voided)


def test_voided_orders_are_present(tree: Tree) -> None:
    assert any(row["Voided"] == "true" for row in tree["OrderDetails.csv"])


def test_gift_card_sales_are_deferred_lines_without_item_id_or_tax(tree: Tree) -> None:
    gift_cards = [row for row in tree["ItemSelectionDetails.csv"]
                  if row["Menu Item"] == "Gift Card"]

    assert gift_cards
    for row in gift_cards:
        assert (row["Item Id"], row["Deferred"], row["Tax"]) == ("", "true", "0E-8")


def test_menu_has_about_25_items_in_several_sales_categories(tree: Tree) -> None:
    rows = tree["ItemSelectionDetails.csv"]
    items = {row["Menu Item"] for row in rows} - {"Gift Card"}

    assert 22 <= len(items) <= 30
    assert "Family Feast" in items
    assert {"Food", "NA Beverage", "Alcohol"} <= {row["Sales Category"] for row in rows}


def test_refund_reappears_later_with_the_same_payment_id(tree: Tree) -> None:
    originals = {row["Payment Id"]: row for row in tree.original_payments()}
    refunds = tree.refund_rows()

    assert refunds
    for refund in refunds:
        original = originals[refund["Payment Id"]]
        assert refund.export_id == original.export_id
        assert 1 <= (refund.business_date - original.business_date).days <= 5
        assert 0 < Decimal(refund["Refund Amount"]) <= Decimal(original["Amount"])
        assert refund["Refund Date"] and original["Refund Date"] == ""
        assert original["Refund Amount"] == "0.00"
        assert refund["Check Id"] == original["Check Id"]
    partial = [r for r in refunds
               if Decimal(r["Refund Amount"]) < Decimal(originals[r["Payment Id"]]["Amount"])]
    assert 0 < len(partial) < len(refunds)


def test_refunds_after_the_generated_range_are_not_written(tmp_path: Path) -> None:
    generate_exports(tmp_path, locations=1, days=1, checks_per_day=200)

    assert not Tree(tmp_path).refund_rows()


def identity_of_checks(tree: Tree) -> dict[str, dict[str, set[str]]]:
    """Per check: raw e-mails, phones and customer ids from CheckDetails and PaymentDetails."""
    identity: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in tree["CheckDetails.csv"]:
        found = identity[row["Check Id"]]  # every check gets an entry, even an empty one
        for kind, column in (("email", "Customer Email"), ("phone", "Customer Phone"),
                             ("id", "Customer Id")):
            if row[column]:
                found[kind].add(row[column])
    for row in tree.original_payments():
        for kind, column in (("receipt_email", "Email"), ("receipt_phone", "Phone")):
            if row[column]:
                identity[row["Check Id"]][kind].add(row[column])
    return identity


def test_about_a_fifth_of_checks_have_no_identity_at_all(tree: Tree) -> None:
    identity = identity_of_checks(tree)
    anonymous = [check for check, found in identity.items() if not found]

    assert 0.12 < len(anonymous) / len(identity) < 0.28


def test_some_checks_are_identified_only_by_their_digital_receipt(tree: Tree) -> None:
    identity = identity_of_checks(tree)
    receipt_only = [found for found in identity.values()
                    if found and set(found) <= {"receipt_email", "receipt_phone"}]

    assert receipt_only


def test_the_same_guest_is_written_differently_across_checks(tree: Tree) -> None:
    raw_emails: dict[str, set[str]] = defaultdict(set)
    raw_phones: dict[str, set[str]] = defaultdict(set)
    for found in identity_of_checks(tree).values():
        for email in found["email"] | found["receipt_email"]:
            raw_emails[email.strip().lower()].add(email)
        for phone in found["phone"] | found["receipt_phone"]:
            raw_phones[e164(phone)].add(phone)

    assert any(len(spellings) > 1 for spellings in raw_emails.values())
    spelled = set().union(*raw_emails.values())
    assert any(email != email.strip() for email in spelled)
    assert any(email.strip() != email.strip().lower() for email in spelled)
    assert any(len(spellings) > 1 for spellings in raw_phones.values())
    phones = set().union(*raw_phones.values())
    assert any(re.match(r"^\(\d{3}\) \d{3}-\d{4}$", phone) for phone in phones)
    assert any(re.match(r"^\+1\d{10}$", phone) for phone in phones)
    assert any(re.match(r"^\d{3}\.\d{3}\.\d{4}$", phone) for phone in phones)


def test_some_guests_visit_several_locations(tree: Tree) -> None:
    locations_of_email: dict[str, set[str]] = defaultdict(set)
    for row in tree["CheckDetails.csv"]:
        if row["Customer Email"]:
            locations_of_email[row["Customer Email"].strip().lower()].add(row.export_id)

    assert any(len(locations) > 1 for locations in locations_of_email.values())


def test_regulars_come_back_many_times(tree: Tree) -> None:
    visits: dict[str, int] = defaultdict(int)
    for row in tree["CheckDetails.csv"]:
        if row["Customer Id"]:
            visits[row["Customer Id"]] += 1

    assert max(visits.values()) >= 10
    assert sum(1 for count in visits.values() if count == 1) > len(visits) / 3


def test_distinct_guests_never_share_an_email_or_a_phone(tree: Tree) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for row in tree["CheckDetails.csv"]:
        if row["Customer Id"]:
            if row["Customer Email"]:
                owners[row["Customer Email"].strip().lower()].add(row["Customer Id"])
            if row["Customer Phone"]:
                owners[e164(row["Customer Phone"])].add(row["Customer Id"])

    assert owners
    assert all(len(customers) == 1 for customers in owners.values())


def test_every_phone_is_a_valid_us_number(tree: Tree) -> None:
    phones = [row["Customer Phone"] for row in tree["CheckDetails.csv"] if row["Customer Phone"]]
    phones += [row["Phone"] for row in tree["PaymentDetails.csv"] if row["Phone"]]

    assert phones
    for phone in phones:
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, "US")), phone


def test_guest_data_is_fake_on_reserved_domains(tree: Tree) -> None:
    emails = [row["Customer Email"] for row in tree["CheckDetails.csv"] if row["Customer Email"]]
    emails += [row["Email"] for row in tree["PaymentDetails.csv"] if row["Email"]]

    assert emails
    for email in emails:
        domain = email.strip().lower().rsplit("@", 1)[1]
        assert domain in {"example.com", "example.org"} or domain.endswith(".test"), email


# -- command line -----------------------------------------------------------------------------


def test_cli_prints_counts_and_no_guest_data(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--root", str(tmp_path), "--locations", "2", "--days", "2",
                 "--start", "2026-03-01", "--seed", "3", "--checks-per-day", "12"])
    output = capsys.readouterr().out

    assert code == 0
    assert "checks=" in output and "refunds=" in output
    assert "@" not in output
    assert not re.search(r"\d{3}[).\- ]+\d{3}[.\-]\d{4}|\+1\d{10}", output)
    assert sorted(p.name for p in (tmp_path / "100002").iterdir()) == ["20260301", "20260302"]


def test_module_runs_as_a_script(tmp_path: Path) -> None:
    plugins = Path(__file__).resolve().parents[2] / "plugins"
    completed = subprocess.run(
        [sys.executable, "-m", "toast_passkit.toast.sample_data", "--root", str(tmp_path),
         "--locations", "1", "--days", "1", "--checks-per-day", "5"],
        capture_output=True, text=True, check=True, cwd=plugins,
    )

    assert "files=5" in completed.stdout
