"""The loyalty program file: load the YAML, validate every key (pydantic v2), or stop the run.

A program is read and validated before any data moves: an unknown key, a wrong type, tiers not
ascending or a first tier not at 0 raise `ProgramError` naming the file and the key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)


class ProgramError(ValueError):
    """The program file is missing, unreadable or invalid; the message names the key."""


def _to_decimal(value: Any) -> Decimal:
    """Amounts: YAML ints, floats or numeric strings, read exactly (never through binary)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"expected a number, got {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return amount


Amount = Annotated[Decimal, BeforeValidator(_to_decimal)]
Days = Annotated[StrictInt, Field(ge=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProgramSection(_Section):
    passkit_program_id: StrictStr = "REPLACE_ME"
    timezone: StrictStr = "America/New_York"
    default_phone_region: StrictStr = "US"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r} (ISO 3166 code such as US, GB)")
        return value.upper()


class EarnSection(_Section):
    points_per_currency_unit: Amount = Decimal(1)
    exclude_menu_items: list[StrictStr] = ["Gift Card"]
    exclude_sales_categories: list[StrictStr] = []

    @field_validator("points_per_currency_unit")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value


class EnrolmentSection(_Section):
    min_qualifying_visits: Annotated[StrictInt, Field(ge=1)] = 1
    welcome_bonus_points: Annotated[StrictInt, Field(ge=0)] = 0


class TierLevel(_Section):
    id: Annotated[StrictStr, Field(min_length=1)]
    min_spend: Amount

    @field_validator("min_spend")
    @classmethod
    def _not_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("must be 0 or more")
        return value


class TiersSection(_Section):
    window_days: Days = 365
    levels: Annotated[list[TierLevel], Field(min_length=1)] = [
        TierLevel(id="base", min_spend=Decimal(0))
    ]

    @field_validator("levels")
    @classmethod
    def _ascending_from_zero(cls, levels: list[TierLevel]) -> list[TierLevel]:
        if levels[0].min_spend != 0:
            raise ValueError(f"the first tier ({levels[0].id!r}) must have min_spend 0")
        for previous, level in itertools.pairwise(levels):
            if level.min_spend <= previous.min_spend:
                raise ValueError(
                    f"tiers must ascend: {level.id!r} (min_spend {level.min_spend}) does not "
                    f"exceed {previous.id!r} (min_spend {previous.min_spend})"
                )
        ids = [level.id for level in levels]
        if len(set(ids)) != len(ids):
            raise ValueError(f"tier ids must be unique, got {ids}")
        return levels


class Reward(_Section):
    id: Annotated[StrictStr, Field(min_length=1)]
    menu_items: Annotated[list[StrictStr], Field(min_length=1)]
    passkit_campaign_id: StrictStr
    passkit_offer_id: StrictStr


class InactivitySection(_Section):
    reengage_after_days: Days | None = 60
    expire_points_after_days: Days | None = None
    revoke_pass_after_days: Days | None = None


class RevokeSection(_Section):
    when_all_spend_refunded: StrictBool = False
    mode: Literal["expire", "delete"] = "expire"


class Program(_Section):
    """A validated loyalty program (the YAML file, every default filled in)."""

    program: ProgramSection = ProgramSection()
    earn: EarnSection = EarnSection()
    enrolment: EnrolmentSection = EnrolmentSection()
    tiers: TiersSection = TiersSection()
    rewards: list[Reward] = []
    inactivity: InactivitySection = InactivitySection()
    revoke: RevokeSection = RevokeSection()

    @model_validator(mode="after")
    def _unique_rewards(self) -> Program:
        ids = [reward.id for reward in self.rewards]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rewards: reward ids must be unique, got {ids}")
        return self

    def fingerprint(self) -> str:
        """Hash of the whole program: a changed program makes the next run recompute all."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (YAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise ProgramError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def parse_program(text: str, source: str = "<program>") -> Program:
    """Validate program YAML text; `source` names the file in error messages."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except ProgramError as exc:
        raise ProgramError(f"{source}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ProgramError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProgramError(f"{source}: the program file must be a mapping of sections")
    try:
        return Program.model_validate(data)
    except ValidationError as exc:
        raise ProgramError(f"{source}: {_describe(exc)}") from exc


def load_program(path: Path) -> Program:
    """Read and validate the program file at `path` (raises ProgramError naming the key)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProgramError(f"{path}: cannot read the program file: {exc}") from exc
    return parse_program(text, str(path))


def _describe(exc: ValidationError) -> str:
    """One line per problem: the dotted key, what is wrong, the value given."""
    problems = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "<top>"
        if error["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown key")
            continue
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {message} (got {error.get('input')!r})")
    return "; ".join(problems)
