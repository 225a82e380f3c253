"""Jobs that are not materializations: deleting data on purpose."""
