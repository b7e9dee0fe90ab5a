"""DuckDB set up the way the Iceberg smoke scripts read tables (iceberg.py,
iceberg_partitions.py, appends.py): the httpfs, avro and iceberg extensions from their PyPI
packages, and catalogd's Iceberg REST catalog (docs/contract.md section 8) attached as `ice`,
with an S3 secret when the table lives in the S3 backend.

Run from smoke/ on sys.path like lakehouse_http; needs the .venv-iceberg packages.
"""

import os


def duckdb_connection():
    """A DuckDB connection with httpfs, avro and iceberg loaded (no network: the extensions
    come from the duckdb-extension-* packages)."""
    import duckdb
    from duckdb_extensions import import_extension

    con = duckdb.connect()
    for extension in ("httpfs", "avro", "iceberg"):
        import_extension(extension, con=con)
    return con


def attach_catalog(con, catalogd, table=None):
    """ATTACHes catalogd's REST catalog as `ice` (tables are `ice.lakehouse."<name>"`). When
    `table` (a pyiceberg table) says its files are on an S3 endpoint, first makes the S3
    secret DuckDB reads them with, from the AWS_* variables the S3 test server uses."""
    s3 = table.io.properties if table is not None else {}
    if "s3.endpoint" in s3:
        endpoint = s3["s3.endpoint"].split("://", 1)[-1]
        con.execute(
            "CREATE SECRET (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, URL_STYLE 'path', USE_SSL false)",
            [os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
             s3.get("s3.region", "us-east-1"), endpoint],
        )
    con.execute(
        f"ATTACH 'lakehouse' AS ice (TYPE iceberg, ENDPOINT '{catalogd}/iceberg', AUTHORIZATION_TYPE 'none')"
    )
    return con


def polars_storage_options(table):
    """The storage options Polars' scan_iceberg reads `table`'s files with: None on local
    files; on the S3 backend, the endpoint and region the catalog handed pyiceberg in its
    LoadTableResult config, with the AWS_* credentials (Polars has its own object store
    client)."""
    s3 = table.io.properties
    if "s3.endpoint" not in s3:
        return None
    return {
        "aws_endpoint_url": s3["s3.endpoint"],
        "aws_region": s3.get("s3.region", "us-east-1"),
        "aws_allow_http": "true",
        "aws_virtual_hosted_style_request": "false",
        "aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
    }
