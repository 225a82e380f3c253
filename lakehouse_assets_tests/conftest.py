import os

# Tests pick partitions from 2024-01-01 on, whatever the developer's shell says, and read files
# the moment they are written (no settling time); set before lakehouse_assets reads settings.
os.environ["LAKEHOUSE_PARTITIONS_START"] = "2024-01-01"
os.environ["LAKEHOUSE_SETTLE_SECONDS"] = "0"
