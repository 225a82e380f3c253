import os

# Tests pick partitions from 2024-01-01 on, whatever the developer's shell says; set before
# lakehouse_assets.partitions is imported.
os.environ["LAKEHOUSE_PARTITIONS_START"] = "2024-01-01"
