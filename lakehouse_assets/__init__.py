"""lakehouse_assets: AWS DMS change data capture to a bronze / silver / gold lakehouse."""

import warnings

from dagster._utils.warnings import BetaWarning, PreviewWarning

# Single-run backfill policies and open-ended partition mappings are the point of this project;
# Dagster still labels them beta/preview. Say it once here instead of on every import.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

from lakehouse_assets import process_exit

process_exit.install()
