"""The PromQL of the fleet view: the instant queries one row is folded from, the problem-state
timeline of the picked range, and how a text becomes a PromQL string literal. Series names and
label values are those of ``dashboard.metrics``."""

from __future__ import annotations

from dashboard.prometheus_api import PrometheusClient, RangeSeries

LOOKBACK_S = 86400.0  # how long a system stays on the list after its last scrape


def _d(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


def fleet_queries(range_s: float, lookback_s: float = LOOKBACK_S) -> dict[str, str]:
    """name → PromQL. ``range_s`` is the picked time range (calls, failed calls, worst MOS)."""
    r, lb = _d(range_s), _d(max(lookback_s, range_s))
    known = f"last_over_time(upscope_build_info[{lb}])"
    return {
        "systems": f"group by (system, job, instance) ({known})",
        "up": f"up and on (job) group by (job) ({known})",
        "age": "time() - timestamp(upscope_build_info)",
        "last_data": f"time() - max by (system) (last_over_time(upscope_snapshot_timestamp_seconds[{lb}]))",
        "itsp": "upscope_itsp_status == 1",
        "since": "upscope_itsp_status_since_timestamp_seconds",
        "findings": "upscope_finding_active > 0",
        "titles": "upscope_finding_info",
        "jwt": "upscope_jwt_status == 1",
        "jwt_left": "upscope_jwt_expiry_timestamp_seconds - time()",
        "support_left": "upscope_software_support_expiry_timestamp_seconds - time()",
        "licences": 'upscope_licenses{state="total"} - ignoring (state) upscope_licenses{state="used"}',
        "calls": f"sum by (system) (increase(upscope_calls_total[{r}]))",
        "failed": f'sum by (system) (increase(upscope_calls_total{{result="failed"}}[{r}]))',
        # The lower bound of the lowest MOS bucket that got a stream in the range: a tiny quantile
        # lands in the first non-empty bucket (histogram_quantile(0, …) is NaN for an empty first one).
        "mos": f"histogram_quantile(1e-12, sum by (system, le) (increase(upscope_rtp_mos_bucket[{r}])))",
        "collectors": "count by (system) (upscope_collector_up)",
        "collectors_up": "sum by (system) (upscope_collector_up)",
        "collectors_down": "upscope_collector_up == 0",
    }


#: The chart of the picked range: how many systems were not registered, had a critical finding, or
#: could not be scraped (targets of the jobs that have upscope systems).
TIMELINE: dict[str, str] = {
    "not registered": 'count(upscope_itsp_status{upscope_itsp_status="not-registered"} == 1)',
    "critical finding": 'count(max by (system) (upscope_finding_active{severity="critical"}) > 0)',
    "scrape failing": "count(up == 0 and on (job) group by (job) (upscope_build_info))",
}


def timeline(client: PrometheusClient, end: float, range_s: float, points: int = 120) -> dict[str, RangeSeries]:
    """The picked range as a chart: how many systems were in each problem state over time."""
    step = max(15.0, range_s / points)
    out: dict[str, RangeSeries] = {}
    for name, expr in TIMELINE.items():
        series = client.query_range(expr, end - range_s, end, step)
        out[name] = series[0] if series else RangeSeries((), ())
    return out


def promql_string(text: str) -> str:
    """``text`` as a PromQL double-quoted string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
