-- Per channel, campaign_performance_daily keeps all ad spend and all GA4 paid sessions, conversions and revenue.
with ads as (
    select platform as channel, sum(spend_rc) as spend_rc, sum(clicks) as clicks
    from {{ ref('ad_performance_daily') }}
    group by platform
),

paid_traffic as (
    select channel, sum(sessions) as sessions, sum(conversions) as conversions, sum(revenue_rc) as revenue_rc
    from {{ ref('traffic_daily') }}
    where channel in ('google_ads', 'meta')
    group by channel
),

expected as (
    select
        channel,
        coalesce(ads.spend_rc, 0) as spend_rc,
        coalesce(ads.clicks, 0) as clicks,
        coalesce(paid_traffic.sessions, 0) as sessions,
        coalesce(paid_traffic.conversions, 0) as conversions,
        coalesce(paid_traffic.revenue_rc, 0) as revenue_rc
    from ads
    full outer join paid_traffic using (channel)
),

mart as (
    select channel, sum(spend_rc) as spend_rc, sum(clicks) as clicks, sum(sessions) as sessions,
        sum(conversions) as conversions, sum(revenue_rc) as revenue_rc
    from {{ ref('campaign_performance_daily') }}
    group by channel
)

select channel, expected.spend_rc as expected_spend_rc, mart.spend_rc as mart_spend_rc
from expected
full outer join mart using (channel)
where expected.spend_rc is distinct from mart.spend_rc
    or expected.clicks is distinct from mart.clicks
    or expected.sessions is distinct from mart.sessions
    or expected.revenue_rc is distinct from mart.revenue_rc
    or abs(expected.conversions - mart.conversions) > 1e-6
    or expected.conversions is null
    or mart.conversions is null
