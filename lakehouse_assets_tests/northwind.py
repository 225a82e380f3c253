"""Declarations matching the real DMS output in ../shared/dms-samples/pg_northwind."""

from lakehouse_assets.sources import Column, PgType, SourceTable

T, I, D, R = PgType.TEXT, PgType.INTEGER, PgType.DATE, PgType.DOUBLE


def _cols(*spec):
    return tuple(Column(n, t) for n, t in spec)


ORDERS = SourceTable(
    name="orders",
    entity="orders",
    primary_key=("order_id",),
    partition_column="order_date",
    columns=_cols(
        ("order_id", I), ("customer_id", T), ("employee_id", I), ("order_date", D),
        ("required_date", D), ("shipped_date", D), ("ship_via", I), ("freight", R),
        ("ship_name", T), ("ship_address", T), ("ship_city", T), ("ship_region", T),
        ("ship_postal_code", T), ("ship_country", T),
    ),
    # July 2024 task settings add the before-image of the key after the sequence.
    trailing_columns=("before_order_id",),
)
ORDER_DETAILS = SourceTable(
    name="order_details",
    entity="order_details",
    primary_key=("order_id", "product_id"),
    partition_column="order_id",
    columns=_cols(
        ("order_id", I), ("product_id", I), ("unit_price", R), ("quantity", I), ("discount", R)
    ),
    trailing_columns=("before_order_id", "before_product_id"),
)
CATEGORIES = SourceTable(
    name="categories",
    entity="categories",
    primary_key=("category_id",),
    partition_column="category_id",
    columns=_cols(("category_id", I), ("category_name", T), ("description", T), ("picture", T)),
)
REGION = SourceTable(
    name="region",
    entity="region",
    primary_key=("region_id",),
    partition_column="region_id",
    columns=_cols(("region_id", I), ("region_description", T)),
)
TABLES = (ORDERS, ORDER_DETAILS, CATEGORIES, REGION)
