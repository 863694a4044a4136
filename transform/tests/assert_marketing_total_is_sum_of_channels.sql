-- Each day's 'total' row in marketing_performance_daily sums that day's channel rows, and store revenue sums revenue_daily.
with channel_sums as (
    select date, sum(spend_rc) as spend_rc, sum(conversions) as conversions, sum(revenue_rc) as revenue_rc
    from {{ ref('marketing_performance_daily') }}
    where channel <> 'total'
    group by date
),

totals as (
    select date, spend_rc, conversions, revenue_rc, store_revenue_rc
    from {{ ref('marketing_performance_daily') }}
    where channel = 'total'
),

store_revenue as (
    select date, sum(net_rc) as store_revenue_rc
    from {{ ref('revenue_daily') }}
    group by date
)

select totals.date, totals.spend_rc, channel_sums.spend_rc as channel_spend_rc
from totals
left join channel_sums on channel_sums.date = totals.date
left join store_revenue on store_revenue.date = totals.date
where totals.spend_rc is distinct from coalesce(channel_sums.spend_rc, 0)
    or totals.revenue_rc is distinct from coalesce(channel_sums.revenue_rc, 0)
    or abs(totals.conversions - coalesce(channel_sums.conversions, 0)) > 1e-6
    or totals.store_revenue_rc is distinct from coalesce(store_revenue.store_revenue_rc, 0)

union all

-- A day with channel rows or store revenue but no 'total' row.
select days.date, null, null
from (
    select date from channel_sums
    union
    select date from store_revenue
) as days
anti join totals on totals.date = days.date
