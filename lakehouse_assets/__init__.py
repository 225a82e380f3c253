"""lakehouse_assets: AWS DMS change data capture to a bronze / silver / gold lakehouse."""
