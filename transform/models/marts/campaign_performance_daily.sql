{#-
    Ad spend joined to the GA4 sessions it brought, per channel, campaign key and day. GA4 rows match on
    channel and campaign key. The full outer join keeps campaigns with spend but no sessions and GA4 paid
    traffic of campaigns with no spend. Ad dates are in each account's time zone, GA4 dates in each
    property's: the join assumes the two agree.
-#}
with ads as (
    select
        date,
        platform as channel,
        campaign_key,
        min(campaign_name) as campaign_name,
        sum(spend_rc) as spend_rc,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(conversions) as platform_conversions,
        sum(conversion_value_rc) as platform_conversion_value_rc
    from {{ ref('ad_performance_daily') }}
    group by date, platform, campaign_key
),

paid_traffic as (
    select
        date,
        channel,
        campaign_key,
        min(campaign) as campaign_name,
        sum(sessions) as sessions,
        sum(conversions) as conversions,
        sum(revenue_rc) as revenue_rc
    from {{ ref('traffic_daily') }}
    where channel in ('google_ads', 'meta')
    group by date, channel, campaign_key
),

joined as (
    select
        date,
        channel,
        campaign_key,
        coalesce(ads.campaign_name, paid_traffic.campaign_name) as campaign_name,
        coalesce(ads.spend_rc, 0) as spend_rc,
        coalesce(ads.impressions, 0) as impressions,
        coalesce(ads.clicks, 0) as clicks,
        coalesce(ads.platform_conversions, 0) as platform_conversions,
        coalesce(ads.platform_conversion_value_rc, 0) as platform_conversion_value_rc,
        coalesce(paid_traffic.sessions, 0) as sessions,
        coalesce(paid_traffic.conversions, 0) as conversions,
        coalesce(paid_traffic.revenue_rc, 0) as revenue_rc
    from ads
    full outer join paid_traffic using (date, channel, campaign_key)
)

select
    date,
    channel,
    campaign_key,
    campaign_name,
    spend_rc,
    impressions,
    clicks,
    platform_conversions,
    platform_conversion_value_rc,
    sessions,
    conversions,
    revenue_rc,
    spend_rc / nullif(conversions, 0) as cpa,
    revenue_rc / nullif(spend_rc, 0) as roas,
    '{{ reporting_currency() }}' as reporting_currency
from joined
