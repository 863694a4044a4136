-- Sessions per property, day, session source, medium and campaign, with revenue in major units.
select
    cast(traffic.property_id as varchar) as property_id,
    traffic.date,
    traffic.session_source as source,
    traffic.session_medium as medium,
    traffic.session_campaign_name as campaign,
    traffic.sessions,
    traffic.engaged_sessions,
    traffic.total_users as users,
    traffic.new_users,
    traffic.key_events,
    cast(coalesce(traffic.purchase_revenue, 0) as decimal(38, 9)) as purchase_revenue,
    -- Rows carry the property's currency, and the property record fills it in when a row has none.
    upper(coalesce(traffic.currency_code, properties.currency)) as currency,
    traffic._loaded_at as loaded_at
from {{ source_or_empty('google_analytics', 'traffic_daily') }} as traffic
left join {{ ref('stg_ga4__properties') }} as properties
    on properties.property_id = cast(traffic.property_id as varchar)
