"""Gold: business tables (CONTRACT section 5), one module per table."""

from lakehouse_assets.assets.gold.common import build_gold
from lakehouse_assets.assets.gold.customer_segments import CUSTOMER_SEGMENTS
from lakehouse_assets.assets.gold.daily_funnel import DAILY_FUNNEL
from lakehouse_assets.assets.gold.daily_revenue import DAILY_REVENUE
from lakehouse_assets.assets.gold.daily_summary import DAILY_SUMMARY
from lakehouse_assets.assets.gold.hourly_activity import HOURLY_ACTIVITY
from lakehouse_assets.assets.gold.subscription_mrr import SUBSCRIPTION_MRR

GOLD_TABLES = (
    DAILY_REVENUE,
    DAILY_FUNNEL,
    HOURLY_ACTIVITY,
    SUBSCRIPTION_MRR,
    CUSTOMER_SEGMENTS,
    DAILY_SUMMARY,
)

gold_assets = [build_gold(t) for t in GOLD_TABLES]
