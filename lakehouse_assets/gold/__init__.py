"""Gold: business tables (CONTRACT section 5), declared one module per table."""

from lakehouse_assets.gold.customer_segments import CUSTOMER_SEGMENTS
from lakehouse_assets.gold.daily_funnel import DAILY_FUNNEL
from lakehouse_assets.gold.daily_revenue import DAILY_REVENUE
from lakehouse_assets.gold.daily_summary import DAILY_SUMMARY
from lakehouse_assets.gold.hourly_activity import HOURLY_ACTIVITY
from lakehouse_assets.gold.subscription_mrr import SUBSCRIPTION_MRR
from lakehouse_assets.gold.table import GoldTable

GOLD_TABLES: tuple[GoldTable, ...] = (
    DAILY_REVENUE,
    DAILY_FUNNEL,
    HOURLY_ACTIVITY,
    SUBSCRIPTION_MRR,
    CUSTOMER_SEGMENTS,
    DAILY_SUMMARY,
)
GOLD_BY_NAME = {t.name: t for t in GOLD_TABLES}
