"""The finance domain: accounts and their transactions (AIC data model), landing -> raw -> processed ->
curated."""

from functools import partial

from lakehouse.datasets import Classification as C
from lakehouse.datasets import Dataset
from lakehouse.datasets import Protection as P
from quality.rules import (
    CURRENCY_CODE,
    UUID,
    VALIDITY_TARGET,
    between,
    matches,
    one_of,
    references,
    required,
    typed,
)
from transforms import finance as t

DOMAIN = "finance"
OWNER = "team:payments-ledger"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")
LINE = {"line": "the landing line exactly as received", "line_number": "1-based line in source_file"}

RAW_ACCOUNTS = Dataset(
    name="accounts",
    domain=DOMAIN,
    layer="raw",
    owner=OWNER,
    landing="accounts",
    retention_days=90,
    description="Every line of the day's accounts snapshot (all accounts opened up to that day), unparsed.",
    columns=LINE,
    classification={"line": C.RESTRICTED},
    subject_paths={"account_id": ("$.account_id",), "customer_id": ("$.customer_id",)},
)
RAW_TRANSACTIONS = Dataset(
    name="transactions",
    domain=DOMAIN,
    layer="raw",
    owner=OWNER,
    landing="transactions",
    retention_days=90,
    description="Every line of the day's transactions feed, unparsed, with source file, line number and run.",
    columns=LINE,
    classification={"line": C.RESTRICTED},
    subject_paths={"account_id": ("$.account_id",)},
)
ACCOUNTS = Dataset(
    name="accounts",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_ACCOUNTS.path,),
    transform=t.parse_accounts,
    quarantine=True,
    primary_key=("dt", "account_id"),
    deduplicate_on=("account_id",),
    retention_days=365,
    description="Typed accounts snapshot of the day, one row per account, with the owner's region and "
    "tenant.",
    columns={
        "account_id": "account, tokenized",
        "customer_id": "owning customer (a user_id), tokenized",
        "currency": "ISO 4217 currency of the account",
        "opened_at": "opening time (UTC)",
        "status": "active, frozen or closed",
    },
    personal_data={"account_id": P.TOKENIZE, "customer_id": P.TOKENIZE},
    subject_columns=("account_id", "customer_id"),
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("customer_id", "opened_at"),
        typed("opened_at", "TimestampType"),
    ),
)
TRANSACTIONS = Dataset(
    name="transactions",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_TRANSACTIONS.path, RAW_ACCOUNTS.path),
    transform=partial(t.processed_transactions, allowed_regions=REGIONS),
    quarantine=True,
    primary_key=("transaction_id",),
    deduplicate_on=("transaction_id",),
    retention_days=365,
    description="Typed transactions of the day, one per id, checked against the same day's accounts snapshot "
    "(raw accounts parsed by the processed-accounts rules, on clear ids before tokenization); "
    "owner, region and tenant come from the account.",
    columns={
        "transaction_id": "id (UUID) in the AIC data model",
        "amount": "signed DECIMAL(10,2), debits negative",
        "transaction_ts": "timestamp (UTC)",
        "status": "pending, settled, failed or reversed",
        "type": "card_payment, transfer, refund, fee or deposit",
        "merchant_category": "card payments and refunds only",
        "counterparty_name": "transfers, masked",
        "ip_address": "online card payments, masked",
        "account_id": "tokenized",
        "customer_id": "account owner (a user_id), tokenized",
    },
    personal_data={
        "account_id": P.TOKENIZE,
        "customer_id": P.TOKENIZE,
        "counterparty_name": P.MASK,
        "ip_address": P.MASK,
    },
    classification={"amount": C.CONFIDENTIAL},
    subject_columns=("account_id", "customer_id"),
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("account_id", "amount", "transaction_ts", "status"),
        matches("transaction_id", UUID, "uuid"),
        one_of("status", t.STATUSES),
        between("amount", -t.MAX_ABS_AMOUNT, t.MAX_ABS_AMOUNT, name="amount_within_limits"),
        matches("currency", CURRENCY_CODE, "currency_code", mostly=VALIDITY_TARGET),
        typed("transaction_ts", "TimestampType"),
        references("account_id", "processed/finance/accounts"),
    ),
)
SETTLED_TRANSACTIONS = Dataset(
    name="settled_transactions",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(TRANSACTIONS.path,),
    transform=t.settled_transactions,
    primary_key=("transaction_id",),
    retention_days=1095,
    description="Settled transactions only, amount DECIMAL(10,2); ids already tokenized upstream.",
    classification={"account_id": C.CONFIDENTIAL, "customer_id": C.CONFIDENTIAL, "amount": C.CONFIDENTIAL},
    subject_columns=("account_id", "customer_id"),
    tenant_column="tenant_id",
    region_column="region",
    checks=(
        matches("transaction_id", UUID, "uuid"),
        between("amount", -t.MAX_ABS_AMOUNT, t.MAX_ABS_AMOUNT, name="amount_within_limits"),
        references("account_id", "processed/finance/accounts"),
    ),
)
ACCOUNT_DAILY_BALANCES = Dataset(
    name="account_daily_balances",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(TRANSACTIONS.path,),
    transform=t.account_daily_balances,
    primary_key=("dt", "account_id"),
    retention_days=1095,
    description="Day-relative balances per account from settled movements: a partition-exact job cannot see "
    "earlier days, so opening_balance is 0 by definition and closing_balance is the end-of-day "
    "running sum of the day's movements (= net).",
    columns={
        "transaction_count": "settled transactions of the account that day",
        "opening_balance": "0: balances are relative to the start of the day",
        "debits": "sum of outgoing amounts, positive",
        "credits": "sum of incoming amounts",
        "net": "credits - debits",
        "closing_balance": "opening_balance + net (end-of-day running sum)",
        "min_running_balance": "lowest running sum during the day, by transaction time (at most 0)",
    },
    classification={
        "account_id": C.CONFIDENTIAL,
        "debits": C.CONFIDENTIAL,
        "credits": C.CONFIDENTIAL,
        "net": C.CONFIDENTIAL,
        "closing_balance": C.CONFIDENTIAL,
        "min_running_balance": C.CONFIDENTIAL,
    },
    subject_columns=("account_id",),
    tenant_column="tenant_id",
    region_column="region",
    checks=(
        between("debits", 0, name="debits_not_negative"),
        between("credits", 0, name="credits_not_negative"),
        between("transaction_count", 1, name="transaction_count_positive"),
        references("account_id", "processed/finance/accounts"),
    ),
)
ACCOUNT_RISK_FEATURES = Dataset(
    name="account_risk_features",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(TRANSACTIONS.path,),
    transform=t.account_risk_features,
    primary_key=("dt", "account_id"),
    retention_days=365,
    description="Per-account daily risk-style aggregates over all transactions (any status), as feature "
    "inputs.",
    columns={
        "txn_count": "transactions of the account that day (every status)",
        "distinct_merchant_categories": "distinct merchant categories of its transactions that day",
        "failed_ratio": "failed / all transactions",
        "max_amount": "largest absolute amount",
        "night_txn_share": "share of transactions between 00:00 and 05:59 UTC",
    },
    classification={"account_id": C.CONFIDENTIAL, "max_amount": C.CONFIDENTIAL},
    subject_columns=("account_id",),
    tenant_column="tenant_id",
    region_column="region",
    checks=(
        between("failed_ratio", 0, 1, name="failed_ratio_is_a_share"),
        between("night_txn_share", 0, 1, name="night_share_is_a_share"),
    ),
)

DATASETS = (
    RAW_ACCOUNTS,
    RAW_TRANSACTIONS,
    ACCOUNTS,
    TRANSACTIONS,
    SETTLED_TRANSACTIONS,
    ACCOUNT_DAILY_BALANCES,
    ACCOUNT_RISK_FEATURES,
)
