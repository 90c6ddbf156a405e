"""Security and privacy: no secret in the repository, no e-mail in any output or log line, no name in SQL."""

import re
import subprocess
from pathlib import Path

import pytest
from demo import AS_OF, ROOT
from lakehouse import Lakehouse
from pyspark.sql import functions as F

from growth_revenue import cli, tables
from growth_revenue.locations import Location

# What a leaked credential or workspace looks like.
SECRETS = {
    "AWS access key": r"AKIA[0-9A-Z]{16}",
    "Databricks token": r"dapi[0-9a-f]{32}",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "Databricks workspace host": r"[a-z0-9-]+\.(cloud\.databricks\.com|azuredatabricks\.net|gcp\.databricks\.com)",
    "password or secret value": r"(?i)\b(password|secret|token)\s*[:=]\s*['\"][^'\"\s]{6,}['\"]",
    "credentials in a URI": r"://[^/@:\s]+:[^/@\s]+@",
}


def tracked_files():
    """Every file git tracks, except this one: it spells the patterns and a fake credential on purpose."""
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [
        ROOT / name
        for name in names.splitlines()
        if (ROOT / name).is_file() and (ROOT / name).resolve() != Path(__file__).resolve()
    ]


@pytest.mark.parametrize("kind", SECRETS)
def test_no_credential_or_workspace_host_is_in_the_repository(kind):
    pattern = re.compile(SECRETS[kind])
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in tracked_files()
        for match in pattern.finditer(path.read_text(errors="ignore"))
    ]
    assert found == []


@pytest.fixture(scope="module")
def published(spark, tmp_path_factory):
    """A lakehouse with sample e-mails, one revenue order of which cannot be published."""
    lakehouse = Lakehouse(spark, tmp_path_factory.mktemp("privacy"), as_of=AS_OF, run_at=f"{AS_OF}T07:00:00Z")
    lakehouse.write_sample(AS_OF, orders=600, customers=60)
    # One quarantined order, so the quarantine table and its messages are in the search too.
    lakehouse.raw(tables.RAW_ORDERS).limit(1).select(
        F.lit("Q1").alias("order_id"),
        F.lit(None).cast("string").alias("customer_id"),
        "order_ts",
        F.lit("completed").alias("status"),
        F.lit(None).cast("decimal(18,2)").alias("amount"),
        "updated_at",
        "_ingested_at",
    ).write.format("delta").mode("append").save(str(lakehouse.raw_path(tables.RAW_ORDERS)))
    return lakehouse


def test_no_email_reaches_an_output_table_the_metrics_file_or_the_log(spark, published, capsys):
    lakehouse = published
    emails = sorted(
        {row[0] for row in lakehouse.raw(tables.RAW_CUSTOMERS).where("email IS NOT NULL").select("email").collect()}
    )
    assert len(emails) > 10 and any("example.com" in email for email in emails)  # test users' too

    capsys.readouterr()
    code = lakehouse.cli("--as-of", str(AS_OF))
    log = capsys.readouterr()
    assert code == 0
    assert lakehouse.output(tables.QUARANTINE).count() == 1

    texts = {"log": log.out + log.err}
    for table in tables.OUTPUTS:
        frame = lakehouse.output(table)
        texts[table] = "\n".join(str(row) for row in frame.collect())
        texts[f"{table} columns"] = " ".join(frame.columns)
        # The Delta log holds column statistics (min/max values): they must not hold an e-mail either.
        texts[f"{table} Delta log"] = "\n".join(
            p.read_text() for p in (lakehouse.out / table / "_delta_log").glob("*.json")
        )
    texts["metrics file"] = (lakehouse.out / tables.METRICS_REPOSITORY).read_text()
    leaks = [(where, email) for where, text in texts.items() for email in emails if email in text]
    assert leaks == []
    assert "@" not in texts["log"]  # not even a domain


@pytest.mark.parametrize(
    "text",
    [
        "growth.raw_orders; DROP TABLE growth.raw_orders",
        "growth.`raw_orders`",
        "a.b.c.d",
        "raw orders",
        "growth.raw\norders",
        "data/raw\x00orders",
    ],
)
def test_a_table_name_that_is_not_an_identifier_is_refused(text):
    with pytest.raises(ValueError):
        Location.parse(text)


def test_a_path_with_credentials_is_refused_without_echoing_them():
    with pytest.raises(ValueError) as refused:
        Location.parse("s3a://AKIAEXAMPLE:s3cr3t@bucket/raw_orders")
    assert "s3cr3t" not in str(refused.value) and "AKIAEXAMPLE" not in str(refused.value)
    assert Location.parse("abfss://raw@account.dfs.core.windows.net/raw_orders").path  # container@account is fine


def test_catalog_names_are_quoted_part_by_part():
    assert Location.parse("main.growth.raw_orders").quoted_name == "`main`.`growth`.`raw_orders`"


def test_a_bad_table_name_on_the_command_line_is_a_usage_error(spark, tmp_path, capsys):
    code = cli.main_in_session(spark, ["--raw-orders", "x;DROP TABLE y", "--output-dir", str(tmp_path / "out")])
    assert code == 2
    assert "not a table path or catalog.schema.table name" in capsys.readouterr().err
