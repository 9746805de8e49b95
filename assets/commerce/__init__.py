"""The commerce domain: users, orders and order items of the shop, landing -> raw -> processed -> curated.

The day's `users` file is a full snapshot, so every partition checks its orders
against its own users and its items against its own orders (see transforms/commerce.py
for why the user check reads the raw users: processed user ids are tokens).
`user_id` is tokenized with one declaration wherever it is personal data, so the
tokens of users and orders match and curated tables join on them.
"""

from lakehouse.datasets import Classification as C
from lakehouse.datasets import Dataset
from lakehouse.datasets import Protection as P
from quality.rules import (
    CONSISTENCY_TARGET,
    CURRENCY_CODE,
    between,
    holds,
    matches,
    one_of,
    references,
    required,
    typed,
)
from transforms import commerce as t

DOMAIN = "commerce"
OWNER = "team:commerce"
REGIONS = t.ALLOWED_REGIONS
USER_ID = P.TOKENIZE  # one protection for user_id everywhere: the factory's one key makes the tokens match
TOKEN = "tokenized user id (the same token as processed/commerce/users.user_id)"
LINE_COLUMNS = {"line": "the landing line exactly as received", "line_number": "1-based line in source_file"}


def _raw(source: str, what: str, subject_paths: dict[str, tuple[str, ...]] | None = None) -> Dataset:
    return Dataset(
        name=source,
        domain=DOMAIN,
        layer="raw",
        owner=OWNER,
        landing=source,
        retention_days=90,
        description=f"Every landing line of {what}, unparsed, with its source file, line number, ingestion "
        "time "
        "and run.",
        columns=LINE_COLUMNS,
        classification={"line": C.RESTRICTED},
        subject_paths=subject_paths or {},
    )


RAW_USERS = _raw("users", "the day's users snapshot", {"user_id": ("$.user_id",)})
RAW_ORDERS = _raw("orders", "the day's orders", {"user_id": ("$.user_id",)})
RAW_ORDER_ITEMS = _raw("order_items", "the day's order items")

USERS = Dataset(
    name="users",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_USERS.path,),
    transform=t.parse_users,
    quarantine=True,
    primary_key=("user_id",),
    deduplicate_on=("user_id",),
    retention_days=365,
    description="The shop's users as of the day (a full daily snapshot), typed, one row per user; "
    "ids and emails tokenized, names masked; with their GDPR and analytics consent (the consent source of "
    "the usage release and of training sets).",
    columns={
        "user_id": TOKEN,
        "email": "email, tokenized",
        "first_name": "first name, masked",
        "last_name": "last name, masked",
        "status": "active, suspended or closed",
        "created_at": "registration time (UTC)",
        "gdpr_consent_at": "when the user gave GDPR consent (UTC); null: no consent on record",
        "consent_analytics": "the user allows analytics use (usage release, training sets); false when "
        "absent",
    },
    personal_data={"user_id": USER_ID, "email": P.TOKENIZE, "first_name": P.MASK, "last_name": P.MASK},
    classification={"gdpr_consent_at": C.CONFIDENTIAL, "consent_analytics": C.CONFIDENTIAL},
    subject_columns=("user_id",),
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("status", "created_at"),
        one_of("status", t.USER_STATUSES),
        typed("created_at", "TimestampType"),
    ),
)
ORDERS = Dataset(
    name="orders",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_ORDERS.path, RAW_USERS.path),
    transform=t.parse_orders,
    quarantine=True,
    primary_key=("order_id",),
    deduplicate_on=("order_id",),
    retention_days=365,
    description="Orders of the day, typed, one row per order_id; each one's user is in the same day's users "
    "snapshot (checked against the raw snapshot with the users rules, since processed ids are tokens).",
    columns={
        "order_id": "order UUID",
        "user_id": TOKEN,
        "total_amount": "order total, DECIMAL(10,2)",
        "currency": "USD, EUR or GBP",
        "status": "created, paid, shipped or cancelled",
        "created_at": "order time (UTC)",
    },
    personal_data={"user_id": USER_ID},
    classification={"total_amount": C.CONFIDENTIAL},
    subject_columns=("user_id",),
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("user_id", "total_amount", "currency", "status", "created_at"),
        between("total_amount", 0, t.MAX_ORDER_AMOUNT, strict_min=True, name="total_amount_positive"),
        one_of("currency", t.CURRENCIES),
        matches("currency", CURRENCY_CODE, "currency_code"),
        typed("created_at", "TimestampType"),
        references("user_id", "processed/commerce/users"),
    ),
)
ORDER_ITEMS = Dataset(
    name="order_items",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_ORDER_ITEMS.path, ORDERS.path),
    transform=t.parse_order_items,
    quarantine=True,
    primary_key=("item_id",),
    deduplicate_on=("item_id",),
    retention_days=365,
    description="Order lines of the day, typed, one row per item_id; each belongs to an accepted order of "
    "the "
    "same day, whose tenant and region it takes.",
    columns={
        "quantity": "units, an integer >= 1",
        "price": "unit price, DECIMAL(10,2), >= 0",
        "tenant_id": "the order's tenant",
        "region": "the order's region",
    },
    classification={"price": C.CONFIDENTIAL},
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("order_id", "product_id", "quantity", "price"),
        between("quantity", 1, name="quantity_at_least_one"),
        between("price", 0, name="price_not_negative"),
        references("order_id", "processed/commerce/orders"),
    ),
)
ORDERS_CONFORMED = Dataset(
    name="orders_conformed",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(ORDERS.path, ORDER_ITEMS.path),
    transform=t.orders_conformed,
    primary_key=("dt", "order_id"),
    retention_days=1095,
    description="Each order with its items summed: item lines, units, items amount, and whether the order "
    "total "
    "equals the items (false when an item was refused or is missing).",
    columns={
        "user_id": TOKEN,
        "item_count": "accepted item lines",
        "units": "sum of quantities",
        "items_amount": "sum of quantity x price",
        "amount_matches_items": "total_amount = items_amount",
    },
    classification={
        "user_id": C.CONFIDENTIAL,
        "total_amount": C.CONFIDENTIAL,
        "items_amount": C.CONFIDENTIAL,
    },
    subject_columns=("user_id",),
    tenant_column="tenant_id",
    region_column="region",
    checks=(
        between("item_count", 0, name="item_count_not_negative"),
        references("order_id", "processed/commerce/orders"),
        holds("amount_matches_items", mostly=CONSISTENCY_TARGET),
    ),
)
DAILY_REVENUE_BY_CURRENCY = Dataset(
    name="daily_revenue_by_currency",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(ORDERS.path,),
    transform=t.daily_revenue_by_currency,
    primary_key=("dt", "currency"),
    retention_days=1095,
    description="Orders, revenue and average order value per day and currency; revenue and average count "
    "orders "
    "not cancelled.",
    columns={
        "orders": "all orders",
        "revenue": "sum of total_amount of orders not cancelled",
        "avg_order_value": "revenue / orders not cancelled",
        "cancelled_orders": "orders cancelled",
    },
    checks=(
        between("revenue", 0, name="revenue_not_negative"),
        between("orders", 1, name="orders_positive"),
        one_of("currency", t.CURRENCIES),
    ),
)
CUSTOMER_ORDER_STATS = Dataset(
    name="customer_order_stats",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(ORDERS.path,),
    transform=t.customer_order_stats,
    primary_key=("dt", "user_id"),
    retention_days=365,
    description="Per customer and day: orders placed, spend on orders not cancelled and the last order time; "
    "inputs of customer features.",
    columns={
        "user_id": TOKEN,
        "order_count": "orders of the day",
        "total_spend": "sum of orders not cancelled",
        "last_order_at": "latest order time of the day",
    },
    classification={"user_id": C.CONFIDENTIAL, "total_spend": C.CONFIDENTIAL},
    subject_columns=("user_id",),
    tenant_column="tenant_id",
    region_column="region",
    checks=(
        between("order_count", 1, name="order_count_positive"),
        between("total_spend", 0, name="spend_not_negative"),
        references("user_id", "processed/commerce/users"),
    ),
)

DATASETS = (
    RAW_USERS,
    RAW_ORDERS,
    RAW_ORDER_ITEMS,
    USERS,
    ORDERS,
    ORDER_ITEMS,
    ORDERS_CONFORMED,
    DAILY_REVENUE_BY_CURRENCY,
    CUSTOMER_ORDER_STATS,
)
