"""The demo: sandbox up, the `daily` Meltano job for tenant `demo`, summary and KPIs printed, sandbox down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEMO_TENANT = "demo"
SOURCES = ("tap-stripe", "tap-google-ads", "tap-facebook", "tap-google-analytics", "tap-magento")
#: The Meltano job of meltano.yml: every source through mapper-pii into the warehouse, then dbt, then the dashboard.
DAILY_JOB = "daily"

#: Meltano must send nothing anywhere: no usage statistics, no version check.
MELTANO_QUIET_ENV = {
    "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    "MELTANO_DISABLE_TRACKING": "true",
    "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
}


class DemoError(RuntimeError):
    """Raised when a demo step fails; the message names the step."""


@dataclass(frozen=True)
class StreamSummary:
    """Rows one run loaded into a table, and the table's total afterwards."""

    table: str
    loaded: int
    total: int


def run_demo(home: Path, *, project_root: Path, force: bool = False, out: t.TextIO = sys.stdout) -> list[StreamSummary]:
    """Run the whole demo and print what it loaded."""
    from sandbox.ga4_api import demo_service_account_key
    from sandbox.server import load_or_create_state, start_server
    from sandbox.stripe_api import DEMO_API_KEY
    from sandbox.stripe_data import StripeWorld

    # The demo is the one case where a generated local master key is allowed.
    os.environ["SPENDLAKE_ALLOW_LOCAL_MASTER_KEY"] = "true"
    state = load_or_create_state(home / "sandbox")
    world = StripeWorld(state.seed, state.anchor, state.ticks)
    started = datetime.now(UTC)

    with start_server(world) as server:
        print(f"Sandbox serving the Stripe, Google Ads, Meta, GA4 and Magento APIs on {server.url}", file=out, flush=True)
        env = pipeline_env(home, api_url=server.url, api_key=DEMO_API_KEY, ga4_key=json.dumps(demo_service_account_key()))
        run_meltano(project_root, env, force=force)

    summary = load_summary(home, started)
    print_summary(summary, home, out)
    print_kpis(home, out)
    return summary


def pipeline_env(home: Path, *, api_url: str, api_key: str, ga4_key: str) -> dict[str, str]:
    """Build the environment of the `meltano run` child process. `ga4_key` is the sandbox's service-account key."""
    env = dict(os.environ)
    env.update(MELTANO_QUIET_ENV)
    env.update(
        {
            "SPENDLAKE_HOME": str(home),
            "SPENDLAKE_ALLOW_LOCAL_MASTER_KEY": "true",
            "TAP_STRIPE_API_URL": api_url,
            "TAP_STRIPE_API_KEY": api_key,
            "TAP_GOOGLE_ADS_API_URL": api_url,
            "TAP_GOOGLE_ADS_TOKEN_URL": f"{api_url}/google/oauth2/token",
            "TAP_FACEBOOK_API_URL": api_url,
            "TAP_GOOGLE_ANALYTICS_API_URL": api_url,
            "TAP_GOOGLE_ANALYTICS_ADMIN_API_URL": api_url,
            "TAP_GOOGLE_ANALYTICS_TOKEN_URL": f"{api_url}/ga4/oauth2/token",
            "TAP_GOOGLE_ANALYTICS_OAUTH_TOKEN_URL": f"{api_url}/ga4/oauth2/token",
            "TAP_GOOGLE_ANALYTICS_SERVICE_ACCOUNT_KEY": ga4_key,
            "TAP_MAGENTO_API_URL": f"{api_url}/rest/default",
            # Bookmarks live beside the warehouse they describe, so removing the
            # home folder starts both afresh and never leaves a gap.
            "MELTANO_STATE_BACKEND_URI": (home / "state").as_uri(),
        }
    )
    # The plugins are console scripts installed beside this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_meltano(project_root: Path, env: dict[str, str], *, force: bool = False) -> None:
    """Run the pipeline through Meltano in the `dev` environment."""
    meltano = shutil.which("meltano", path=env["PATH"])
    if meltano is None:
        msg = "The meltano executable was not found; run `make demo`, which installs it into .venv."
        raise DemoError(msg)

    command = [meltano, "--environment", "dev", "run", *(["--force"] if force else []), DAILY_JOB]
    completed = subprocess.run(command, cwd=project_root, env=env, check=False)
    if completed.returncode != 0:
        msg = (
            f"`meltano run {DAILY_JOB}` failed with exit code {completed.returncode}; its log is above. "
            "If it reports another run of the pipeline after a killed run, wait about 5 minutes or use "
            "`.venv/bin/spendlake demo --force`."
        )
        raise DemoError(msg)


def load_summary(home: Path, since: datetime) -> list[StreamSummary]:
    """Read rows loaded per stream since `since`, and each table's total, from the warehouse."""
    from privacy.catalog import stored_tables
    from targets.warehouse.duckdb_store import connect_warehouse

    connection = connect_warehouse(home, DEMO_TENANT, read_only=True)
    try:
        loaded = dict(
            connection.execute(
                "select source || '.' || stream, sum(rows) from _spendlake.loads where loaded_at >= ? group by 1",
                [since],
            ).fetchall()
        )
        return [
            StreamSummary(
                table=f"{source}.{stream}",
                loaded=int(loaded.get(f"{source}.{stream}", 0)),
                total=connection.execute(f"select count(*) from {source}.{stream}").fetchone()[0],  # noqa: S608
            )
            for source, stream in stored_tables(connection)
        ]
    finally:
        connection.close()


def print_summary(summary: list[StreamSummary], home: Path, out: t.TextIO) -> None:
    """Print rows loaded per stream and where the warehouse is."""
    from spendlake.paths import duckdb_path, tenant_dir

    print(f"\nLoaded for tenant {DEMO_TENANT!r}:", file=out)
    width = max((len(row.table) for row in summary), default=10)
    for row in summary:
        print(f"  {row.table:<{width}}  {row.loaded:>7} rows loaded this run, {row.total:>7} in the table", file=out)
    print(f"\nEncrypted warehouse: {duckdb_path(home, DEMO_TENANT)}", file=out)
    print(f"Encrypted Parquet lake: {tenant_dir(home, DEMO_TENANT) / 'parquet'}", file=out)
    print('Query it with: .venv/bin/spendlake query "select count(*) from stripe.charges"', file=out)


def print_kpis(home: Path, out: t.TextIO) -> None:
    """Print where the job wrote the dashboard and the blended KPIs it shows, read again from the marts."""
    from spendlake.dashboard.build import build_dashboard, summary_lines
    from spendlake.paths import dashboard_path

    print(f"\nDashboard: {dashboard_path(home, DEMO_TENANT)}", file=out)
    for line in summary_lines(build_dashboard(home, DEMO_TENANT)):
        print(line, file=out)
