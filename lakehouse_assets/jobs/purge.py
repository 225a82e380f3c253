"""The purge job: deleting data on purpose, as an explicit, audited operation.

Launched from the UI's Launchpad or the command line, with what to delete and why:

    dagster job execute -m lakehouse_assets.definitions -j purge -c purge.yaml

    ops:
      purge_rows:
        config: {column: tenant_id, value: "42", reason: "GDPR erasure #1234", requested_by: "jane@ops"}

It deletes the matching bronze rows (ingest/purge.py), writes the audit rows to
`bronze.purge_log`, and leaves silver and gold to the landing sensor: the keys whose winning
change was purged are merged again from what bronze still holds, and the run that does it
says why in its tags.
"""

from datetime import datetime, timezone

from dagster import AssetKey, AssetObservation, Config, MetadataValue, OpExecutionContext, in_process_executor, job, op
from pydantic import Field

from lakehouse_assets.ingest.purge import ALL_TABLES, purge
from lakehouse_assets.storage.warehouse import Warehouse


class PurgeConfig(Config):
    column: str = Field(description="tenant_id (or any column the tables have), or _source_file for a bad load")
    value: str = Field(description="the value whose rows are deleted, e.g. 42, or public/core_order/<file>")
    reason: str = Field(description="why: a ticket, a request; kept in bronze.purge_log")
    requested_by: str = Field(description="who asked for it; kept in bronze.purge_log")
    table: str = Field(default=ALL_TABLES, description="one source table (e.g. core_order), or * for every table")


@op(description="Deletes the matching bronze rows, and records who, when, why, what and how many")
def purge_rows(context: OpExecutionContext, config: PurgeConfig, warehouse: Warehouse) -> None:
    audit = purge(warehouse.session(), column=config.column, value=config.value, reason=config.reason,
                  requested_by=config.requested_by, run_id=context.run_id, at=datetime.now(timezone.utc),
                  table_name=config.table)
    for row in audit.iter_rows(named=True):
        context.log.info(f"purged {row['bronze_rows']} bronze rows and {row['rejects']} rejects of "
                         f"{row['table_name']} where {row['column_name']} = {row['value']} ({row['reason']})")
        context.log_event(AssetObservation(
            asset_key=AssetKey(["bronze", row["table_name"]]),
            metadata={"purged_rows": row["bronze_rows"], "purged_rejects": row["rejects"],
                      "purge_id": row["purge_id"], "reason": row["reason"], "requested_by": row["requested_by"],
                      "what": MetadataValue.text(f"{row['column_name']} = {row['value']}")},
        ))
    warehouse.release()


@job(name="purge", executor_def=in_process_executor,
     description="Delete data on purpose (a tenant under GDPR, a bad load), audited in bronze.purge_log")
def purge_job():
    purge_rows()
