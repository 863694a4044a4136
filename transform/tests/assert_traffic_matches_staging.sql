-- Sessions, key events and revenue per property and currency in traffic_daily equal the staging totals.
with staged as (
    select property_id, currency, sum(sessions) as sessions, sum(key_events) as conversions,
        sum(purchase_revenue) as revenue
    from {{ ref('stg_ga4__traffic_daily') }}
    group by property_id, currency
),

mart as (
    select property_id, currency, sum(sessions) as sessions, sum(conversions) as conversions,
        sum(revenue) as revenue
    from {{ ref('traffic_daily') }}
    group by property_id, currency
)

select property_id, currency, staged.sessions as staged_sessions, mart.sessions as mart_sessions
from staged
full outer join mart using (property_id, currency)
where staged.sessions is distinct from mart.sessions
    or staged.revenue is distinct from mart.revenue
    or abs(staged.conversions - mart.conversions) > 1e-6
    or staged.conversions is null
    or mart.conversions is null
