{#-
    Daily totals per paid channel, and a 'total' row per day that sums the channel rows and adds the
    store's net revenue (revenue_daily) for MER. Days with store revenue but no campaign rows get a
    'total' row with zero spend.
-#}
with channels as (
    select
        date,
        channel,
        sum(spend_rc) as spend_rc,
        sum(conversions) as conversions,
        sum(revenue_rc) as revenue_rc
    from {{ ref('campaign_performance_daily') }}
    group by date, channel
),

store_revenue as (
    select date, sum(net_rc) as store_revenue_rc
    from {{ ref('revenue_daily') }}
    group by date
),

days as (
    select date from channels
    union
    select date from store_revenue
),

totals as (
    select
        days.date,
        'total' as channel,
        coalesce(sum(channels.spend_rc), 0) as spend_rc,
        coalesce(sum(channels.conversions), 0) as conversions,
        coalesce(sum(channels.revenue_rc), 0) as revenue_rc
    from days
    left join channels on channels.date = days.date
    group by days.date
),

rows_with_store_revenue as (
    select *, cast(null as decimal(38, 9)) as store_revenue_rc
    from channels

    union all by name

    select totals.*, coalesce(store_revenue.store_revenue_rc, 0) as store_revenue_rc
    from totals
    left join store_revenue on store_revenue.date = totals.date
)

select
    date,
    channel,
    spend_rc,
    conversions,
    revenue_rc,
    store_revenue_rc,
    spend_rc / nullif(conversions, 0) as cpa,
    revenue_rc / nullif(spend_rc, 0) as roas,
    case when channel = 'total' then store_revenue_rc / nullif(spend_rc, 0) end as mer,
    '{{ reporting_currency() }}' as reporting_currency
from rows_with_store_revenue
