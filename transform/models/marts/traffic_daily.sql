-- GA4 sessions per property, day (in the property's time zone), source, medium and campaign, with their paid channel.
select
    date,
    property_id,
    source,
    medium,
    campaign,
    {{ campaign_key('campaign') }} as campaign_key,
    {{ traffic_channel('source', 'medium') }} as channel,
    sessions,
    engaged_sessions,
    users,
    new_users,
    key_events as conversions,
    purchase_revenue as revenue,
    currency,
    {{ to_reporting_currency('purchase_revenue', 'currency', 'date') }} as revenue_rc,
    '{{ reporting_currency() }}' as reporting_currency
from {{ ref('stg_ga4__traffic_daily') }}
