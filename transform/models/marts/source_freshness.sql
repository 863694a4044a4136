{#-
    One row per source: when its tables were last loaded, the latest date of its facts, and how many fact
    rows the marts read from it (tombstones excluded). Stripe and Magento dates are in the reporting time
    zone, the others in the account's or property's time zone. A source not loaded yet still gets its row,
    with 0 rows and NULL dates.
-#}
{%- set sources = [
    {'name': 'google_ads', 'tables': ['campaign_daily_metrics', 'campaigns'],
     'facts': [('stg_google_ads__campaign_daily', 'date')]},
    {'name': 'facebook', 'tables': ['ads_insights', 'campaigns'],
     'facts': [('stg_meta__ads_insights', 'date')]},
    {'name': 'google_analytics', 'tables': ['traffic_daily', 'properties'],
     'facts': [('stg_ga4__traffic_daily', 'date')]},
    {'name': 'stripe', 'tables': ['charges', 'refunds'],
     'facts': [('stg_stripe__charges', 'created_date'), ('stg_stripe__refunds', 'created_date')]},
    {'name': 'magento', 'tables': ['orders', 'creditmemos'],
     'facts': [('stg_magento__orders', 'created_date'), ('stg_magento__creditmemos', 'created_date')]},
] -%}

-- A table not loaded yet reads as empty here, and its staging model, which runs first, logs it.
with loads as (
    {%- for source_entry in sources %}
    {%- for table in source_entry.tables %}
    select '{{ source_entry.name }}' as source, max(_loaded_at) as loaded_at
    from {{ source_or_empty(source_entry.name, table, log_missing=false) }}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

facts as (
    {%- for source_entry in sources %}
    {%- for model, date_column in source_entry.facts %}
    select '{{ source_entry.name }}' as source, max({{ date_column }}) as data_date, count(*) as fact_rows
    from {{ ref(model) }}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

loads_per_source as (
    select source, max(loaded_at) as last_loaded_at
    from loads
    group by source
),

facts_per_source as (
    select source, max(data_date) as last_data_date, sum(fact_rows) as fact_rows
    from facts
    group by source
)

select
    loads_per_source.source,
    loads_per_source.last_loaded_at,
    facts_per_source.last_data_date,
    cast(facts_per_source.fact_rows as bigint) as rows
from loads_per_source
inner join facts_per_source using (source)
