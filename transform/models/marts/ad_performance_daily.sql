-- Spend and platform-reported results per ad platform, account, campaign and day (in the account's time zone).
with google_ads as (
    select
        daily.date,
        'google_ads' as platform,
        daily.account_id,
        daily.campaign_id,
        campaigns.campaign_name,
        daily.currency,
        sum(daily.spend) as spend,
        sum(daily.impressions) as impressions,
        sum(daily.clicks) as clicks,
        sum(daily.conversions) as conversions,
        sum(daily.conversion_value) as conversion_value
    from {{ ref('stg_google_ads__campaign_daily') }} as daily
    left join {{ ref('stg_google_ads__campaigns') }} as campaigns
        on campaigns.account_id = daily.account_id
        and campaigns.campaign_id = daily.campaign_id
    group by all
),

meta_by_campaign as (
    select
        date,
        account_id,
        campaign_id,
        currency,
        -- Name at the time of the most recently loaded row, for campaigns missing from the campaign list.
        arg_max(campaign_name, loaded_at) as reported_campaign_name,
        sum(spend) as spend,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(purchases) as conversions,
        sum(purchase_value) as conversion_value
    from {{ ref('stg_meta__ads_insights') }}
    group by date, account_id, campaign_id, currency
),

meta as (
    select
        insights.date,
        'meta' as platform,
        insights.account_id,
        insights.campaign_id,
        coalesce(campaigns.campaign_name, insights.reported_campaign_name) as campaign_name,
        insights.currency,
        insights.spend,
        insights.impressions,
        insights.clicks,
        insights.conversions,
        insights.conversion_value
    from meta_by_campaign as insights
    left join {{ ref('stg_meta__campaigns') }} as campaigns
        on campaigns.campaign_id = insights.campaign_id
),

platforms as (
    select * from google_ads
    union all by name
    select * from meta
)

select
    date,
    platform,
    account_id,
    campaign_id,
    campaign_name,
    {{ campaign_key('campaign_name') }} as campaign_key,
    currency,
    spend,
    impressions,
    clicks,
    conversions,
    conversion_value,
    {{ to_reporting_currency('spend', 'currency', 'date') }} as spend_rc,
    {{ to_reporting_currency('conversion_value', 'currency', 'date') }} as conversion_value_rc,
    '{{ reporting_currency() }}' as reporting_currency
from platforms
