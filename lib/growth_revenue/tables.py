"""The names of every table this job reads or writes: the one place they are spelled."""

RAW_ORDERS = "raw_orders"
RAW_CUSTOMERS = "raw_customers"

MART = "mart_orders_enriched"
REPORT = "rpt_30day_revenue_by_segment"
DQ_RESULTS = "dq_check_results"
QUARANTINE = "quarantine_orders"

OUTPUTS = (MART, REPORT, QUARANTINE, DQ_RESULTS)

# The job's own state, beside the outputs: the customer profiles the mart's rows were built with,
# so the next incremental run can tell which customers changed (see incremental.py).
CUSTOMER_STATE = "state_customer_profiles"

# Not a table: the Deequ metrics repository file kept beside the outputs (see metrics.py).
METRICS_REPOSITORY = "dq_metrics.json"
