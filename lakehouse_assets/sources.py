"""The source tables, declared once (CONTRACT section 1).

Bronze and silver assets, their table specs and Pandera models, their checks, the landing
layout and the sample-data generator are all derived from these declarations: adding a table
is adding a `SourceTable` to `SOURCE_TABLES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse_assets.schemas.types import PgType


@dataclass(frozen=True)
class Column:
    name: str
    type: PgType
    nullable: bool = True
    allowed: tuple[str, ...] | None = None  # enum values (NULL is not a violation)
    non_negative: bool = False  # a negative value quarantines the row
    positive: bool = False  # a value <= 0 quarantines the row
    # Added to the source table after files were landed: those files lack it (it reads as
    # NULL there). Such columns come last, in the order they were added.
    added_later: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """A reference that should point somewhere; a dangling one is a WARN, not quarantine."""

    column: str
    table: str  # the referenced source table
    column_in_table: str = "id"


@dataclass(frozen=True)
class SourceTable:
    name: str  # the source table, e.g. core_order; also the bronze table name
    entity: str  # the silver table name, e.g. orders
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ("id",)
    partition_column: str = "created_at"  # the business date of a row
    schema: str = "public"  # the source schema: the landing folder is <root>/<schema>/<name>
    # Columns DMS appends after _dms_seq in some records (e.g. before-image columns);
    # kept in bronze as text. None of the contract's tables has them.
    trailing_columns: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    unique_within: tuple[tuple[str, ...], ...] = ()  # WARN: (scope..., column) duplicates
    description: str = ""

    def __post_init__(self) -> None:
        flags = [c.added_later for c in self.columns]
        if flags != sorted(flags):
            raise ValueError(f"{self.name}: columns added later must come after all the others")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def column_counts(self) -> list[int]:
        """How many of the columns a landed record may carry: all of them, or (in files
        landed before columns were added) fewer; the most first."""
        n = len(self.columns)
        return [n - k for k in range(sum(c.added_later for c in self.columns) + 1)]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def required_columns(self) -> list[str]:
        """Columns whose NULL quarantines a row: the key, the business date and tenant_id."""
        names = [*self.primary_key, self.partition_column]
        if "tenant_id" in self.column_names and "tenant_id" not in names:
            names.append("tenant_id")
        return list(dict.fromkeys(names))

    @property
    def landing_folder(self) -> str:
        return f"{self.schema}/{self.name}"


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, PgType.TIMESTAMPTZ, nullable=nullable)


def _id(name: str = "id", nullable: bool = False) -> Column:
    return Column(name, PgType.BIGINT, nullable=nullable)


def _money(name: str) -> Column:
    return Column(name, PgType.NUMERIC, non_negative=True)


def _text(name: str, allowed: tuple[str, ...] | None = None) -> Column:
    return Column(name, PgType.TEXT, allowed=allowed)


TENANT_PLANS = ("free", "starter", "pro", "enterprise")
ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded")
EVENT_TYPES = (
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout_started",
    "purchase",
    "signup",
    "error",
)
SUBSCRIPTION_PLANS = ("basic", "pro", "enterprise")
SUBSCRIPTION_STATUSES = ("trialing", "active", "past_due", "canceled")
INVOICE_STATUSES = ("draft", "open", "paid", "void", "uncollectible")


SOURCE_TABLES: tuple[SourceTable, ...] = (
    SourceTable(
        name="core_tenant",
        entity="tenants",
        description="Tenants (accounts) of the SaaS product.",
        columns=(
            _id(),
            _text("name"),
            _text("slug"),
            _text("plan", TENANT_PLANS),
            Column("settings", PgType.JSONB),
            Column("is_active", PgType.BOOLEAN),
            _ts("created_at"),
            _ts("updated_at"),
        ),
    ),
    SourceTable(
        name="core_customer",
        entity="customers",
        description="End customers of each tenant.",
        columns=(
            _id(),
            _id("tenant_id"),
            _text("email"),
            _text("full_name"),
            _text("country"),
            Column("attributes", PgType.JSONB),
            _ts("created_at"),
            _ts("updated_at"),
        ),
        unique_within=(("tenant_id", "email"),),
    ),
    SourceTable(
        name="core_product",
        entity="products",
        description="Products each tenant sells.",
        columns=(
            _id(),
            _id("tenant_id"),
            _text("sku"),
            _text("name"),
            _text("category"),
            _money("unit_price"),
            Column("is_active", PgType.BOOLEAN),
            _ts("created_at"),
            _ts("updated_at"),
        ),
    ),
    SourceTable(
        name="core_order",
        entity="orders",
        description="Orders placed by customers.",
        columns=(
            _id(),
            _id("tenant_id"),
            _id("customer_id"),
            _text("status", ORDER_STATUSES),
            _text("currency"),
            _money("total_amount"),
            _ts("created_at"),
            _ts("updated_at"),
        ),
        foreign_keys=(ForeignKey("customer_id", "core_customer"),),
    ),
    SourceTable(
        name="core_orderitem",
        entity="order_items",
        description="Line items of orders.",
        columns=(
            _id(),
            _id("tenant_id"),
            _id("order_id"),
            _id("product_id"),
            Column("quantity", PgType.INTEGER, positive=True),
            _money("unit_price"),
            _ts("created_at"),
            _ts("updated_at"),
        ),
        foreign_keys=(
            ForeignKey("order_id", "core_order"),
            ForeignKey("product_id", "core_product"),
        ),
    ),
    SourceTable(
        name="core_event",
        entity="events",
        description="Product analytics events (page views, carts, purchases, errors).",
        partition_column="occurred_at",
        columns=(
            _id(),
            _id("tenant_id"),
            _id("customer_id", nullable=True),
            _text("session_id"),
            _text("event_type", EVENT_TYPES),
            Column("properties", PgType.JSONB),
            _ts("occurred_at"),
        ),
    ),
    SourceTable(
        name="core_subscription",
        entity="subscriptions",
        description="Recurring subscriptions of customers.",
        columns=(
            _id(),
            _id("tenant_id"),
            _id("customer_id"),
            _text("plan", SUBSCRIPTION_PLANS),
            _text("status", SUBSCRIPTION_STATUSES),
            _money("mrr"),
            _ts("started_at"),
            _ts("canceled_at"),
            _ts("created_at"),
            _ts("updated_at"),
        ),
    ),
    SourceTable(
        name="core_invoice",
        entity="invoices",
        description="Invoices of subscriptions.",
        columns=(
            _id(),
            _id("tenant_id"),
            _id("customer_id"),
            _id("subscription_id"),
            _money("amount"),
            _text("status", INVOICE_STATUSES),
            _ts("issued_at"),
            _ts("due_at"),
            _ts("paid_at"),
            _ts("created_at"),
            _ts("updated_at"),
        ),
    ),
)

TABLES_BY_NAME: dict[str, SourceTable] = {t.name: t for t in SOURCE_TABLES}
TABLES_BY_ENTITY: dict[str, SourceTable] = {t.entity: t for t in SOURCE_TABLES}
