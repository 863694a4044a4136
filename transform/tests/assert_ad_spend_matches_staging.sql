-- Spend, impressions, clicks and conversions per platform and currency in ad_performance_daily equal the staging totals.
with staged as (
    select 'google_ads' as platform, currency, sum(spend) as spend, sum(impressions) as impressions,
        sum(clicks) as clicks, sum(conversions) as conversions
    from {{ ref('stg_google_ads__campaign_daily') }}
    group by currency

    union all

    select 'meta' as platform, currency, sum(spend), sum(impressions), sum(clicks), sum(purchases)
    from {{ ref('stg_meta__ads_insights') }}
    group by currency
),

mart as (
    select platform, currency, sum(spend) as spend, sum(impressions) as impressions,
        sum(clicks) as clicks, sum(conversions) as conversions
    from {{ ref('ad_performance_daily') }}
    group by platform, currency
)

select platform, currency, staged.spend as staged_spend, mart.spend as mart_spend
from staged
full outer join mart using (platform, currency)
where staged.spend is distinct from mart.spend
    or staged.impressions is distinct from mart.impressions
    or staged.clicks is distinct from mart.clicks
    or abs(staged.conversions - mart.conversions) > 1e-6
    or staged.conversions is null
    or mart.conversions is null
